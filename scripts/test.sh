#!/usr/bin/env bash
# The whole test command: system packages the tests need, Python dependencies, lint, format,
# types, then every test against a real PostgreSQL (started, or a throw-away cluster made,
# by the test fixtures when needed).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=scripts/uv.sh

# System packages: PostgreSQL for the database tests, Chromium for the dashboard's browser
# test. Installed from Debian's packages when missing and we may (root with apt-get).
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "== installing ${need[*]} (Debian packages)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: ${need[*]} missing and not installable here; the tests that need them say so" >&2
  fi
fi

$UV sync --frozen --quiet --compile-bytecode
echo "== ruff check"; $UV run --frozen ruff check .
echo "== ruff format --check"; $UV run --frozen ruff format --check .
echo "== mypy"; $UV run --frozen mypy
echo "== mypy (tests)"; $UV run --frozen mypy shared/tests services/*/tests tests
echo "== pytest"; $UV run --frozen pytest "$@"
