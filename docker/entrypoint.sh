#!/usr/bin/env bash
# The reference container's command: run examples/basic.py.
#
# - HF_ENDPOINT set (for instance https://huggingface.co): against that Hub, as is; HF_TOKEN, when
#   given, is sent to it.
# - HF_ENDPOINT unset: start a local Hub, publish the example kernels to it (built at image build
#   time, for CUDA too when torch is a CUDA build) and run the example against it
#   (scripts/demo.py, the same flow as scripts/demo.sh).
# - Arguments given: run them instead (docker run ... kernels-reference kernels info ORG/NAME).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY="${KERNELS_VENV:-/opt/kernels/venv}/bin/python"

if [ "$#" -gt 0 ]; then
  exec "$@"
fi
if [ -n "${HF_ENDPOINT:-}" ]; then
  echo "reference: running examples/basic.py against $HF_ENDPOINT"
  exec "$PY" "$ROOT/examples/basic.py"
fi
backend=$("$PY" -c 'from kernels.platform import detect_platform; print(detect_platform().backend)')
if [ "$backend" = cuda ] && [ -z "${KERNELS_DEMO_CUDA:-}" ]; then
  export KERNELS_DEMO_CUDA=1
fi
echo "reference: running examples/basic.py against a local Hub in this container"
exec "$PY" "$ROOT/scripts/demo.py"
