#!/usr/bin/env bash
# Create (or refresh) .venv with everything the demo and the tests need. Idempotent and quick when
# nothing changed: a stamp records the hash of what was installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${KERNELS_PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp_src=$( (cat scripts/bootstrap.sh scripts/requirements-dev.txt scripts/requirements-docs.txt core/pyproject.toml plugins/*/pyproject.toml 2>/dev/null || true) | sha256sum | cut -c1-16)
if [ "$(cat .venv/.bootstrap-stamp 2>/dev/null)" != "$stamp_src" ]; then
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  # torch lives in one folder shared (through a .pth file) by .venv and by the sample projects'
  # environments that the tests create, so it is installed once.
  if [ ! -f .cache/torch-site/.complete ]; then
    rm -rf .cache/torch-site
    .venv/bin/python -m pip install -q --target .cache/torch-site "torch==2.13.0" 2>&1 | grep -v '^WARNING: Location' || true
    touch .cache/torch-site/.complete
  fi
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$PWD/.cache/torch-site" > "$site/_kernels_torch_site.pth"
  .venv/bin/python -m pip install -q -r scripts/requirements-dev.txt -r scripts/requirements-docs.txt 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -e core 2>&1 | grep -v '^WARNING: Location' || true
  echo "$stamp_src" > .venv/.bootstrap-stamp
fi
