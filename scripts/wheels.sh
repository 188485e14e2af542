#!/usr/bin/env bash
# Build the wheel of every distribution in this repository into DEST (default: dist/): `kernels`
# (core/) and everything under plugins/ (kernels-lockembed, hatch-kernels, pdm-kernels, poetry-plugin-kernels,
# poetry-kernels-backend). They are not on PyPI, where `kernels` is an older upstream release:
# point each tool at DEST as its guide in docs/integrations/ says. Prints DEST's absolute path last.
#
#   bash scripts/wheels.sh [DEST]      # KERNELS_PYTHON picks the interpreter (any with pip)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:-$repo/dist}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
PY=${KERNELS_PYTHON:-$(command -v python3.11 || command -v python3)}
cd "$repo"
mapfile -t plugins < <(find ./plugins -name pyproject.toml -not -path '*/.*' -printf '%h\n' | sort)
# Each one builds in an isolated environment (hatchling from the index), with no dependencies.
if ! out=$("$PY" -m pip wheel -q --no-deps -w "$dest" ./core "${plugins[@]}" 2>&1); then
  echo "$out" >&2
  echo "error: building the wheels failed" >&2
  exit 1
fi
echo "$out" | grep -v '^WARNING: Location' >&2 || true
ls -1 "$dest"/*.whl >&2
echo "$dest"
