"""The architecture check on a real GPU: a CUDA build that declares only an architecture this
device lacks is refused before import, with the reason; ``check_arch=False`` loads it.

Builds the ``activation`` example's CUDA variant for this device (``TORCH_CUDA_ARCH_LIST``, default
the device's own capability, so its code really runs here), publishes it to a local Hub twice:

- ``v1``: its ``metadata.json`` says ``backend.archs = ["<major+1>.0"]`` (a newer generation than
  this device: a base build of it never runs here), as a kernel built only for newer GPUs would;
- ``v2``: the same build declaring the device's own capability,

then shows what ``get_kernel_variants``, ``has_kernel`` and ``get_kernel`` say about each, and that
``get_kernel(..., check_arch=False)`` loads ``v1`` and computes correctly (the declared list was
incomplete: the code does run). Every line under "RESULT" is meant for ``docs/gpu.md``.

    python examples/cuda_arch_check.py      # exit 0 when every check passes
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "kernels"))

from gpu_checks import check, scratch, summary  # noqa: E402  (beside this script)

REPO = "kernels-community/activation-archcheck"


def declaring(variant: Path, dest: Path, archs: list[str]) -> Path:
    """A copy of the built variant whose metadata declares ``archs``."""
    out = dest / variant.name
    shutil.copytree(variant, out, ignore=shutil.ignore_patterns("__pycache__"))
    meta = json.loads((out / "metadata.json").read_text())
    meta["backend"] = {"type": "cuda", "archs": archs}
    (out / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def main() -> int:
    import build as example_build
    import kernels
    from kernels.errors import UnsupportedDeviceError
    from kernels.server import HubServer

    if not torch.cuda.is_available():
        print("this script needs a CUDA GPU (torch.cuda.is_available() is False)")
        return 2
    major, minor = torch.cuda.get_device_capability(0)
    name = torch.cuda.get_device_name(0)
    own, lacking = f"{major}.{minor}", f"{major + 1}.0"
    os.environ.setdefault("TORCH_CUDA_ARCH_LIST", own)
    print(f"device: {name} (capability {own})")
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"kernels {kernels.__version__}; compiled for {os.environ['TORCH_CUDA_ARCH_LIST']}"
    )
    tmp = scratch("kernels-archcheck-")
    with HubServer(tmp / "hub", trusted_orgs=["kernels-community"]) as hub:
        os.environ["HF_ENDPOINT"] = hub.endpoint
        built = example_build.build_variant(
            example_build.EXAMPLES_DIR / "activation", backend="cuda"
        )
        v1 = declaring(built, tmp / "v1", [lacking])
        v2 = declaring(built, tmp / "v2", [own])
        example_build.publish_kernel(hub.endpoint, REPO, [v1], branch="v1", tags=["v0.1.0"])
        example_build.publish_kernel(
            hub.endpoint, REPO, [v2], branch="v2", tags=["v0.2.0"], also_main=False
        )
        print(f"\npublished {built.name} to {REPO}: v1 declares {[lacking]}, v2 declares {[own]}")

        print("\nRESULT 1: get_kernel_variants (v1), this device's verdict on each variant")
        for v in kernels.get_kernel_variants(REPO, version=1):
            kind = type(v).__name__
            print(f"  {v.name}: {kind}: {v.reason}")
        verdicts = kernels.get_kernel_variants(REPO, version=1)
        check(
            bool(verdicts)
            and not verdicts[0].accepted
            and f"capability {own}" in verdicts[0].reason,
            "v1's variant is rejected, naming the device's capability",
        )

        print("\nRESULT 2: has_kernel")
        print(f"  has_kernel(v1) = {kernels.has_kernel(REPO, version=1)}")
        print(
            f"  has_kernel(v1, check_arch=False) = {kernels.has_kernel(REPO, version=1, check_arch=False)}"
        )
        print(f"  has_kernel(v2) = {kernels.has_kernel(REPO, version=2)}")
        check(not kernels.has_kernel(REPO, version=1), "has_kernel(v1) is False")
        check(kernels.has_kernel(REPO, version=2), "has_kernel(v2) is True")

        print("\nRESULT 3: get_kernel(v1) with check_arch=True (the default): the refusal")
        try:
            kernels.get_kernel(REPO, version=1)
        except UnsupportedDeviceError as err:
            print(f"  {type(err).__name__} (a RuntimeError: {isinstance(err, RuntimeError)}):")
            for line in str(err).splitlines():
                print(f"    {line}")
            msg = str(err)
            check(f"capability {own}" in msg and lacking in msg, "the error names both archs")
            kid = json.loads((v1 / "metadata.json").read_text())["id"]
            check(kid not in sys.modules, f"nothing was imported (no module {kid})")
        else:
            check(False, "get_kernel(v1) was not refused")

        print("\nRESULT 4: get_kernel(v1, check_arch=False) loads it, and it computes")
        act = kernels.get_kernel(REPO, version=1, check_arch=False)
        x = torch.randn(1024, 1024, device="cuda", dtype=torch.float16)
        y = torch.empty_like(x)
        act.gelu_fast(y, x)
        torch.cuda.synchronize()
        err = (y.float() - torch.nn.functional.gelu(x.float(), approximate="tanh")).abs().max()
        print(f"  loaded {act.__name__} from {Path(act.__file__).parent.name}")
        print(f"  gelu_fast on cuda fp16: max abs error against torch {err.item():.2e}")
        check(err.item() < 1e-2, "gelu_fast of the v1 build matches torch")

        print("\nRESULT 5: get_kernel(v2) (declares this device) loads with the check on")
        act2 = kernels.get_kernel(REPO, version=2)
        act2.gelu_fast(y, x)
        torch.cuda.synchronize()
        print(
            f"  loaded {act2.__name__}; metadata archs {kernels.get_loaded_kernels()[-1].metadata.backend.archs}"
        )
        check(True, "v2 loaded with check_arch=True")
    return summary()


if __name__ == "__main__":
    raise SystemExit(main())
