#!/usr/bin/env bash
# The test command: lint, type-check, then the whole test suite. Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export KERNELS_BUILD_CACHE=${KERNELS_BUILD_CACHE:-$PWD/.cache/example-builds}
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
code=$?
set -e
if [ "$code" = 5 ]; then
  echo "error: no tests ran" >&2
  exit 1
fi
exit "$code"
