# The two commands for a fresh machine: `make up` and `make test`. Both bootstrap uv and
# the locked dependencies themselves.
UV := scripts/uv.sh

.PHONY: up test lint format demo bench bench-floor bench-single bench-machine bench-replay-stages settings

up:            ## start the whole hub on the embedded default (SQLite, mock DUO)
	$(UV) sync --frozen --no-dev --quiet --compile-bytecode
	$(UV) run --frozen --no-dev verzuimhub up

test:          ## lint, types and every test (real PostgreSQL, real migrations)
	scripts/test.sh

lint:
	$(UV) run ruff check . && $(UV) run ruff format --check . && $(UV) run mypy

format:
	$(UV) run ruff format . && $(UV) run ruff check --fix .

bench:         ## performance figures against PostgreSQL (ARGS=--quick for a small run)
	$(UV) sync --frozen --quiet --compile-bytecode
	$(UV) run --frozen verzuimhub bench $(ARGS)

bench-floor:   ## the floor under the batch and replay figures (docs/benchmarks.md)
	$(UV) sync --frozen --quiet --compile-bytecode
	$(UV) run --frozen python bench/floor_bench.py

bench-single:  ## a single registration's own work in ingest (ARGS=--callgrind: instructions)
	$(UV) sync --frozen --quiet --compile-bytecode
	$(UV) run --frozen python bench/single_bench.py $(ARGS)

bench-machine: ## how steady this machine's speed is, and what it costs per fault and round trip
	$(UV) sync --frozen --quiet --compile-bytecode
	$(UV) run --frozen python bench/machine_bench.py $(ARGS)

bench-replay-stages: ## melding's replay stage by stage: CPU per event of decode, plan, write, PostgreSQL (ARGS=--callgrind: instructions)
	$(UV) sync --frozen --quiet --compile-bytecode
	$(UV) run --frozen python bench/replay_stages.py $(ARGS)

settings:      ## the settings table, as in the README
	$(UV) run verzuimhub settings --markdown
