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
# Test files run in parallel, each whole on one worker with its own local Hub (tests/conftest.py);
# KERNELS_TEST_WORKERS=0 runs them in this process, one after the other.
workers=${KERNELS_TEST_WORKERS:-3}
.venv/bin/python -m pytest -n "$workers" --dist loadfile --no-loadscope-reorder "$@"
code=$?
set -e
if [ "$code" = 5 ]; then
  echo "error: no tests ran" >&2
  exit 1
fi
exit "$code"
