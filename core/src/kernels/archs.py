"""Does a build cover this GPU? CUDA capabilities and ROCm targets against a device.

A CUDA or ROCm build's ``metadata.json`` lists the architectures it was compiled for
(``backend.archs``). A build lacking the device's architecture imports fine and then kills the process
at its first kernel launch, so with ``check_arch=True`` (the default) the loader rejects it before
import. The rules, for a device of capability ``M.m``:

- ``X.Y`` (a base build) runs on ``X.y`` for every ``y >= Y``: same major, same or newer minor;
- ``X.Ya`` (architecture-specific) runs only on exactly ``X.Y``;
- ``X.Yf`` (family-specific) runs on ``X.y`` for ``y >= Y``;
- ``X.Y+PTX`` also runs on every newer capability (the PTX is compiled for the device at load);
- a ROCm build runs on a device whose ``gcnArchName`` (feature flags stripped) it lists.

A list in which no entry has a known form (a newer kernel-builder) is taken as covering the device.
The pure functions here take the device as an argument, so they are tested without a GPU;
:func:`current_device` is the only one that asks torch.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceArch:
    """The architecture of one GPU: ``kind`` ``cuda`` with ``arch`` ``9.0``, or ``rocm`` with ``gfx942``."""

    kind: str
    arch: str
    name: str = ""
    """The device's marketing name (``NVIDIA H200``), for messages."""

    def describe(self) -> str:
        """``CUDA capability 9.0 (NVIDIA H200)`` or ``ROCm arch gfx942``."""
        what = f"CUDA capability {self.arch}" if self.kind == "cuda" else f"ROCm arch {self.arch}"
        return f"{what} ({self.name})" if self.name else what


def parse_cuda_arch(arch: str) -> tuple[int, int, str, bool] | None:
    """``"9.0a+PTX"`` -> ``(9, 0, "a", True)``; ``None`` when ``arch`` has no known form."""
    text = arch.strip()
    ptx = text.upper().endswith("+PTX")
    if ptx:
        text = text[: -len("+PTX")]
    suffix = ""
    if text[-1:] in ("a", "f"):
        suffix, text = text[-1], text[:-1]
    major, dot, minor = text.partition(".")
    if not dot or not major.isdigit() or not minor.isdigit():
        return None
    return int(major), int(minor), suffix, ptx


def cuda_arch_runs_on(arch: str, capability: tuple[int, int]) -> bool | None:
    """Whether code built for ``arch`` runs on a device of ``capability``; ``None`` if unknown form."""
    parsed = parse_cuda_arch(arch)
    if parsed is None:
        return None
    major, minor, suffix, ptx = parsed
    if suffix == "a":
        return capability == (major, minor)
    if ptx and capability >= (major, minor):
        return True
    return capability[0] == major and capability[1] >= minor


def covers(archs: list[str], device: DeviceArch) -> bool:
    """Whether a build listing ``archs`` runs on ``device`` (see the module docstring)."""
    if device.kind == "rocm":
        return device.arch.split(":")[0] in {a.split(":")[0] for a in archs}
    major, _, minor = device.arch.partition(".")
    capability = (int(major), int(minor or 0))
    answers = [cuda_arch_runs_on(a, capability) for a in archs]
    if all(a is None for a in answers):
        return True
    return any(answers)


def mismatch(backend_type: str, archs: list[str] | None, device: DeviceArch | None) -> str | None:
    """Why a build of ``backend_type`` for ``archs`` cannot run on ``device``; ``None`` if it can.

    Builds that list no architectures, builds for another backend than the device's, and machines
    without a device are never refused here.
    """
    if not archs or device is None or backend_type != device.kind:
        return None
    if covers(archs, device):
        return None
    return f"{device.describe()} is not among the build's architectures {', '.join(archs)}"


def current_device(backend: str) -> DeviceArch | None:
    """The current GPU when ``backend`` is ``cuda`` or ``rocm`` and torch sees one, else ``None``.

    This imports torch (only for those backends: loading such a kernel imports it anyway).
    """
    if backend not in ("cuda", "rocm"):
        return None
    import torch

    try:
        if not torch.cuda.is_available():
            return None
        index = torch.cuda.current_device()
        name = str(torch.cuda.get_device_name(index))
        if backend == "rocm" or getattr(torch.version, "hip", None):
            gcn = str(torch.cuda.get_device_properties(index).gcnArchName)
            return DeviceArch("rocm", gcn.split(":")[0], name)
        major, minor = torch.cuda.get_device_capability(index)
    except (RuntimeError, AssertionError) as err:  # a broken driver: nothing to check against
        logger.warning("cannot query the GPU (%s); kernel architectures are not checked", err)
        return None
    return DeviceArch("cuda", f"{major}.{minor}", name)
