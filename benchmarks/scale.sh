#!/usr/bin/env bash
# The scale benchmark (see docs/scale.md): a 1,400-file kernel against upstream `kernels` 0.17.2,
# at 50 ms latency and under a 20 requests/s limit with 1 and 8 processes. Makes the environments
# first (benchmarks/envs.sh). Arguments go to benchmarks/scale.py (--files N, --upstream-cap X,
# --no-docs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash benchmarks/envs.sh
exec .venv/bin/python benchmarks/scale.py "$@"
