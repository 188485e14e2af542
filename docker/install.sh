#!/usr/bin/env bash
# Install this repository's kernels library into a virtual environment and pre-build the example
# kernels. docker/Dockerfile.reference runs it at image build time; tests/test_docker_reference.py
# runs the same script in a temporary virtual environment.
#
# Environment:
#   KERNELS_VENV         the virtual environment (created when missing; default /opt/kernels/venv)
#   KERNELS_PYTHON       the interpreter that creates it (default python3)
#   TORCH_VERSION        torch to install when the environment cannot import torch yet
#   TORCH_INDEX_URL      where that torch comes from (default: the CUDA 13.0 wheels)
#   KERNELS_BUILD_CACHE  where the example kernel builds are cached (see examples/kernels/build.py)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${KERNELS_VENV:-/opt/kernels/venv}
if [ ! -x "$VENV/bin/python" ]; then
  "${KERNELS_PYTHON:-python3}" -m venv "$VENV"
fi
PY="$VENV/bin/python"

pip_install() {
  "$PY" -m pip install --no-cache-dir --disable-pip-version-check --quiet "$@"
}

if "$PY" -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("torch") is None)'; then
  echo "install: torch is already importable, keeping it"
else
  pip_install "torch==${TORCH_VERSION:?TORCH_VERSION must name the torch to install}" \
    --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cu130}"
fi

# This repository's core (and the kernels-lockembed it depends on) by path: the name kernels on
# PyPI is an older release. ninja and setuptools are what torch.utils.cpp_extension needs to compile
# the example kernel.
pip_install "$ROOT/plugins/lockembed" "$ROOT/core" ninja setuptools
"$PY" -c 'import kernels; print(f"install: kernels {kernels.__version__} from {kernels.__file__}")'

# Build the example kernels now, so that the container publishes them without compiling: the
# activation kernel for the CPU, and for CUDA when torch is a CUDA build (nvcc needed, no GPU).
backend=$("$PY" -c 'from kernels.platform import detect_platform; print(detect_platform().backend)')
backends=(cpu)
if [ "$backend" = cuda ]; then
  backends+=(cuda)
fi
for b in "${backends[@]}"; do
  echo "install: building the example activation kernel for $b"
  "$PY" "$ROOT/examples/kernels/build.py" build activation --backend "$b"
done
"$PY" "$ROOT/examples/kernels/build.py" build rmsnorm --backend universal
echo "install: done ($VENV)"
