#!/usr/bin/env bash
# The main job: serve the example kernels from a local Hub, load one with get_kernel, run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
export KERNELS_BUILD_CACHE=${KERNELS_BUILD_CACHE:-$PWD/.cache/example-builds}
exec .venv/bin/python scripts/demo.py "$@"
