#!/usr/bin/env bash
# The whole test command: dependencies, lint, format, types, then every test against a real
# PostgreSQL (started, or a throw-away cluster made, by the test fixtures when needed).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=scripts/uv.sh
$UV sync --frozen --quiet
echo "== ruff check"; $UV run --frozen ruff check .
echo "== ruff format --check"; $UV run --frozen ruff format --check .
echo "== mypy"; $UV run --frozen mypy
echo "== pytest"; $UV run --frozen pytest "$@"
