#!/usr/bin/env bash
# Make the two environments every benchmark compares (run by run.sh, layers.sh and scale.sh): .venv
# (scripts/bootstrap.sh) and, once, .cache/bench/upstream-venv: kernels==0.17.2 and the newest
# huggingface_hub from PyPI, seeing the one shared torch through a .pth file.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
UP=.cache/bench/upstream-venv
if [ ! -f "$UP/.complete" ]; then
  echo "creating $UP (kernels==0.17.2 from PyPI) ..." >&2
  base=$(.venv/bin/python -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')
  rm -rf "$UP"
  "$base" -m venv "$UP"
  "$UP/bin/python" -m pip install -q "kernels==0.17.2" huggingface_hub 2>&1 | grep -v '^WARNING: Location' || true
  site=$("$UP/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
  echo "$PWD/.cache/torch-site" > "$site/_kernels_torch_site.pth"
  "$UP/bin/python" -c 'import kernels, torch' 2>/dev/null
  touch "$UP/.complete"
fi
