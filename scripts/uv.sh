#!/usr/bin/env bash
# Runs uv, installing it first (into .tools/, from PyPI) on a machine that has none.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if command -v uv >/dev/null 2>&1; then
  exec uv "$@"
fi
if [ ! -x "$root/.tools/bin/uv" ]; then
  echo "bootstrap: installing uv into .tools/ …" >&2
  python3 -m venv "$root/.tools"
  "$root/.tools/bin/pip" install --quiet --disable-pip-version-check uv
fi
exec "$root/.tools/bin/uv" "$@"
