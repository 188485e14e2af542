#!/usr/bin/env bash
# Benchmark this project against upstream `kernels` 0.17.2 on one local Hub (see docs/benchmarks.md).
# Makes both environments first (benchmarks/envs.sh). Arguments go to benchmarks/run.py
# (--repeat N, --slow-repeat N, --no-docs, --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
bash benchmarks/envs.sh
exec .venv/bin/python benchmarks/run.py "$@"
