"""Build variant names: parsing them, and deciding which ones an interpreter can load.

A kernel repository holds one folder per build variant under ``build/``. This module accepts or
rejects each name for a :class:`~kernels.platform.Platform`, with the reason, and orders the accepted
ones best first: an exact torch build (the highest CUDA minor not above the installed one), then a
stable-ABI build, then the arch-free ``torch-<backend>`` and finally ``torch-universal``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import Version

from kernels.platform import Platform, detect_platform

_ARCH_FREE = re.compile(r"^torch-(cpu|cuda|rocm|xpu|metal|npu)$")
_TORCH = re.compile(
    r"^torch(?P<major>\d)(?P<minor>\d+)(?:-(?P<abi>cxx11|cxx98))?"
    r"-(?P<backend>[a-z]+\d*)-(?P<arch>[a-z0-9_]+)-(?P<os>linux|darwin|windows)$"
)
_STABLE = re.compile(
    r"^torch-stable-abi(?P<major>\d)(?P<minor>\d+)"
    r"-(?P<backend>[a-z]+\d*)-(?P<arch>[a-z0-9_]+)-(?P<os>linux|darwin|windows)$"
)
_BACKEND = re.compile(r"^(?P<kind>cu|rocm|xpu|cpu|metal|npu)(?P<digits>\d*)$")
_KIND_TO_BACKEND = {"cu": "cuda", "rocm": "rocm", "xpu": "xpu", "cpu": "cpu", "metal": "metal"}
_KIND_TO_BACKEND["npu"] = "npu"


@dataclass(frozen=True)
class VariantVerdict:
    """Whether one build variant fits the platform, and why."""

    name: str
    accepted: bool
    reason: str
    rank: tuple[int, ...] = ()
    """Sort key among accepted variants: smaller is better."""


def _backend_version(kind: str, digits: str) -> Version | None:
    if not digits:
        return None
    if kind == "xpu":
        return Version(f"{digits[:4]}.{digits[4:] or 0}")
    return Version(f"{digits[:-1]}.{digits[-1]}")


def _check_backend(token: str, plat: Platform) -> tuple[bool, str, int]:
    """Return (accepted, reason, penalty) for a backend token such as ``cu128``."""
    m = _BACKEND.match(token)
    if m is None:
        return False, f"unknown backend {token!r}", 0
    backend = _KIND_TO_BACKEND[m["kind"]]
    if backend != plat.backend:
        return False, f"built for {backend}, this interpreter uses {plat.backend}", 0
    want = _backend_version(m["kind"], m["digits"])
    have = plat.backend_version
    if want is None or have is None:
        return True, f"{backend} build", 0
    if backend == "cuda":
        if want.major != have.major:
            return False, f"built for CUDA {want}, torch uses CUDA {have} (major differs)", 0
        if want > have:
            return False, f"built for CUDA {want}, newer than torch's CUDA {have}", 0
        return True, f"CUDA {want} build (torch uses {have})", (have.minor - want.minor)
    if want != have:
        return False, f"built for {backend} {want}, torch uses {backend} {have}", 0
    return True, f"{backend} {want} build", 0


def judge_variant(name: str, plat: Platform) -> VariantVerdict:
    """Accept or reject the build variant ``name`` for ``plat``, saying why."""
    if name == "torch-universal":
        return VariantVerdict(name, True, "universal (pure Python) build", (3,))
    m = _ARCH_FREE.match(name)
    if m is not None:
        if m[1] != plat.backend:
            return VariantVerdict(
                name, False, f"arch-free {m[1]} build, this interpreter uses {plat.backend}"
            )
        return VariantVerdict(name, True, f"arch-free {m[1]} build", (2,))
    stable = _STABLE.match(name)
    m = stable or _TORCH.match(name)
    if m is None:
        if name.startswith("tvm-ffi"):
            return VariantVerdict(name, False, "tvm-ffi builds are not supported")
        return VariantVerdict(name, False, "not a build variant name this library understands")
    if m["os"] != plat.os:
        return VariantVerdict(name, False, f"built for {m['os']}, this is {plat.os}")
    if m["arch"] != plat.arch:
        return VariantVerdict(name, False, f"built for {m['arch']}, this machine is {plat.arch}")
    tv = Version(f"{m['major']}.{m['minor']}")
    have = Version(f"{plat.torch_version.major}.{plat.torch_version.minor}")
    if stable is not None:
        if tv > have:
            return VariantVerdict(name, False, f"needs torch >= {tv} (stable ABI), have {have}")
    else:
        if tv != have:
            return VariantVerdict(name, False, f"built for torch {tv}, have torch {have}")
        abi = m["abi"]
        if plat.os == "linux" and abi is not None and (abi == "cxx11") != plat.cxx11_abi:
            theirs = "C++11" if abi == "cxx11" else "pre-C++11"
            return VariantVerdict(name, False, f"built with the {theirs} ABI, torch uses the other")
    ok, reason, penalty = _check_backend(m["backend"], plat)
    if not ok:
        return VariantVerdict(name, False, reason)
    if stable is not None:
        # Newer stable-ABI builds first: they target the closest torch.
        return VariantVerdict(name, True, f"stable ABI {tv}; {reason}", (1, penalty, -tv.minor))
    return VariantVerdict(name, True, f"exact torch {tv}; {reason}", (0, penalty))


def rank_variants(names: list[str], plat: Platform | None = None) -> list[VariantVerdict]:
    """Judge every name; accepted variants come first, best first, then the rejected ones by name."""
    plat = plat or detect_platform()
    verdicts = [judge_variant(n, plat) for n in sorted(set(names))]
    accepted = sorted((v for v in verdicts if v.accepted), key=lambda v: (v.rank, v.name))
    rejected = [v for v in verdicts if not v.accepted]
    return accepted + rejected


def best_variant(names: list[str], plat: Platform | None = None) -> str | None:
    """The best variant among ``names`` for ``plat`` (default: this interpreter), or ``None``."""
    ranked = rank_variants(names, plat)
    return ranked[0].name if ranked and ranked[0].accepted else None


def build_variant_name(backend: str) -> str:
    """The variant name a build for ``backend`` (``cpu``, ``cuda``, ..., ``universal``) gets here."""
    if backend == "universal":
        return "torch-universal"
    return detect_platform(backend).variant
