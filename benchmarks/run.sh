#!/usr/bin/env bash
# Benchmark this project against upstream `kernels` 0.17.2 on one local Hub (see docs/benchmarks.md).
# Makes .venv and, once, the upstream venv (benchmarks/upstream.sh: kernels==0.17.2 and the
# newest huggingface_hub from PyPI, seeing the one shared torch through a .pth file). Arguments go to
# benchmarks/run.py (--repeat N, --slow-repeat N, --no-docs, --keep).
set -euo pipefail
cd "$(dirname "$0")/.."
bash benchmarks/upstream.sh
exec .venv/bin/python benchmarks/run.py "$@"
