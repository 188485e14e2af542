#!/usr/bin/env bash
# Create (or refresh) .venv with everything the demo and the tests need. Idempotent and quick when
# nothing changed: a stamp records the hash of what was installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${KERNELS_PYTHON:-$(command -v python3.11 || command -v python3)}

# pip, with this machine's noise about missing local index folders filtered out; fails loudly.
pip_quiet() {
  local out
  if ! out=$(.venv/bin/python -m pip "$@" 2>&1); then
    echo "$out" >&2
    echo "error: pip $* failed" >&2
    return 1
  fi
  echo "$out" | grep -v '^WARNING: Location' || true
}

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp_src=$( (cat scripts/bootstrap.sh scripts/requirements-dev.txt scripts/requirements-docs.txt core/pyproject.toml plugins/*/pyproject.toml 2>/dev/null || true) | sha256sum | cut -c1-16)
if [ "$(cat .venv/.bootstrap-stamp 2>/dev/null)" != "$stamp_src" ]; then
  pip_quiet install -q --upgrade pip
  # torch lives in one folder shared (through a .pth file) by .venv and by the sample projects'
  # environments that the tests create, so it is installed once. pip takes the CPU build of
  # torch 2.13.0 from this machine's disk.
  if [ ! -f .cache/torch-site/.complete ]; then
    rm -rf .cache/torch-site
    pip_quiet install -q --target .cache/torch-site "torch==2.13.0"
    touch .cache/torch-site/.complete
  fi
  site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$PWD/.cache/torch-site" > "$site/_kernels_torch_site.pth"
  pip_quiet install -q -r scripts/requirements-dev.txt -r scripts/requirements-docs.txt
  # The core depends on kernels-lockembed, which lives in this repository (not on an index).
  pip_quiet install -q -e plugins/lockembed -e core
  echo "$stamp_src" > .venv/.bootstrap-stamp
fi
