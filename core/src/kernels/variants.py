"""Build variant names: parsing them, and deciding which ones an interpreter can load.

A kernel repository holds one folder per build variant under ``build/``. This module accepts or
rejects each name for a :class:`~kernels.platform.Platform`, with the reason, and orders the accepted
ones best first, as ``kernels`` 0.17.2 does:

1. stable-ABI builds (``torch-stable-abi<M><m>-...``), the newest ABI not above the installed torch
   first, then the highest CUDA minor not above the installed one;
2. exact torch builds (``torch<M><m>[-cxx11]-...``), untagged before ABI-tagged, then by CUDA minor;
3. tvm-ffi builds (``tvm-ffi<M><m>-...``), for the installed ``apache-tvm-ffi`` major.minor;
4. the arch-free ``torch-<backend>`` build (``torch-cuda``, ``torch-neuron``, ``torch-tpu`` ...);
5. ``torch-universal`` (pure Python).

Compiled (arch) builds are refused on a free-threaded CPython before 3.15, which cannot load ABI3
extensions, and Metal builds on macOS before 26 (they are built with ``-std=metal4.0``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from packaging.version import Version

from kernels.platform import Platform, detect_platform

_NOARCH = re.compile(r"^torch-(?P<backend>[a-z][a-z0-9]*)$")
_TAIL = r"-(?P<backend>[a-z]+\d*)-(?P<arch>[a-z0-9_]+)-(?P<os>linux|darwin|windows)$"
_TORCH = re.compile(r"^torch(?P<major>\d)(?P<minor>\d+)(?:-(?P<abi>cxx11|cxx98))?" + _TAIL)
_STABLE = re.compile(r"^torch-stable-abi(?P<major>\d)(?P<minor>\d+)" + _TAIL)
_TVM_FFI = re.compile(r"^tvm-ffi(?P<major>\d)(?P<minor>\d+)" + _TAIL)
_BACKEND = re.compile(r"^(?P<kind>cu|rocm|xpu|cpu|metal|npu|cann|neuron|tpu)(?P<digits>\d*)$")
_KIND_TO_BACKEND = {
    "cu": "cuda",
    "rocm": "rocm",
    "xpu": "xpu",
    "cpu": "cpu",
    "metal": "metal",
    "npu": "npu",
    "cann": "npu",
    "neuron": "neuron",
    "tpu": "tpu",
}
METAL_MIN_MACOS = Version("26.0")


@dataclass(frozen=True)
class Variant:
    """A build variant, as 0.17.2's ``VariantAccepted.variant`` gives it: ``variant_str`` is its name."""

    variant_str: str

    def __str__(self) -> str:
        return self.variant_str


@dataclass(frozen=True)
class VariantVerdict:
    """Whether one build variant fits the platform, and why."""

    name: str
    accepted: bool
    reason: str
    rank: tuple[int, ...] = ()
    """Sort key among accepted variants: smaller is better."""

    @property
    def variant(self) -> Variant:
        """The variant (``.variant_str`` is :attr:`name`), as in 0.17.2."""
        return Variant(self.name)


@dataclass(frozen=True)
class VariantAccepted(VariantVerdict):
    """A variant this interpreter can load (``reason`` says what it is)."""


@dataclass(frozen=True)
class VariantRejected(VariantVerdict):
    """A variant this interpreter cannot load; ``reason`` says why."""


def accept(name: str, reason: str, rank: tuple[int, ...]) -> VariantAccepted:
    """An accepted verdict."""
    return VariantAccepted(name, True, reason, rank)


def reject(name: str, reason: str) -> VariantRejected:
    """A rejected verdict."""
    return VariantRejected(name, False, reason)


def _backend_version(kind: str, digits: str) -> Version | None:
    if not digits:
        return None
    if kind == "xpu":
        return Version(f"{digits[:4]}.{digits[4:] or 0}")
    return Version(f"{digits[:-1] or 0}.{digits[-1]}")


def _check_backend(token: str, plat: Platform) -> tuple[bool, str, int]:
    """Return (accepted, reason, penalty) for a backend token such as ``cu128``."""
    m = _BACKEND.match(token)
    if m is None:
        return False, f"unknown backend {token!r}", 0
    backend = _KIND_TO_BACKEND[m["kind"]]
    if backend != plat.backend:
        return False, f"built for {backend}, this interpreter uses {plat.backend}", 0
    if backend == "metal" and (plat.macos_version is None or plat.macos_version < METAL_MIN_MACOS):
        mac = plat.macos_version or "unknown"
        return False, f"Metal builds need macOS {METAL_MIN_MACOS} or later, this is {mac}", 0
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
        return False, f"built for {backend} {want}, this interpreter has {backend} {have}", 0
    return True, f"{backend} {want} build", 0


def _judge_framework(name: str, m: re.Match[str], kind: str, plat: Platform) -> VariantVerdict:
    """Accept or reject an arch build once its framework (torch, stable ABI, tvm-ffi) is parsed."""
    if plat.free_threaded:
        return reject(name, "compiled builds cannot load on free-threaded Python before 3.15")
    if m["os"] != plat.os:
        return reject(name, f"built for {m['os']}, this is {plat.os}")
    if m["arch"] != plat.arch:
        return reject(name, f"built for {m['arch']}, this machine is {plat.arch}")
    fv = Version(f"{m['major']}.{m['minor']}")
    torch = Version(f"{plat.torch_version.major}.{plat.torch_version.minor}")
    if kind == "stable" and fv > torch:
        return reject(name, f"needs torch >= {fv} (stable ABI), have {torch}")
    if kind == "torch":
        if fv != torch:
            return reject(name, f"built for torch {fv}, have torch {torch}")
        abi = m["abi"]
        if plat.os == "linux" and abi is not None and (abi == "cxx11") != plat.cxx11_abi:
            theirs = "C++11" if abi == "cxx11" else "pre-C++11"
            return reject(name, f"built with the {theirs} ABI, torch uses the other")
    if kind == "tvm-ffi" and fv != plat.tvm_ffi_version:
        have = plat.tvm_ffi_version or "not installed"
        return reject(name, f"built for apache-tvm-ffi {fv}, installed: {have}")
    ok, reason, penalty = _check_backend(m["backend"], plat)
    if not ok:
        return reject(name, reason)
    if kind == "stable":
        return accept(name, f"stable ABI {fv}; {reason}", (0, -fv.major, -fv.minor, penalty))
    if kind == "torch":
        tagged = 1 if m["abi"] is not None else 0
        return accept(name, f"exact torch {fv}; {reason}", (1, 0, tagged, penalty))
    return accept(name, f"tvm-ffi {fv}; {reason}", (2, 0, 0, penalty))


def judge_variant(name: str, plat: Platform) -> VariantVerdict:
    """Accept or reject the build variant ``name`` for ``plat``, saying why."""
    if name == "torch-universal":
        return accept(name, "universal (pure Python) build", (4,))
    for kind, pattern in (("stable", _STABLE), ("torch", _TORCH), ("tvm-ffi", _TVM_FFI)):
        m = pattern.match(name)
        if m is not None:
            return _judge_framework(name, m, kind, plat)
    noarch = _NOARCH.match(name)
    if noarch is not None:
        backend = noarch["backend"]
        if backend != plat.backend:
            return reject(name, f"arch-free {backend} build, this interpreter uses {plat.backend}")
        return accept(name, f"arch-free {backend} build", (3,))
    return reject(name, "not a build variant name this library understands")


def variant_backend(name: str) -> str | None:
    """The backend a variant name is built for (``cuda``, ``npu``, ``universal`` ...), or ``None``."""
    if name == "torch-universal":
        return "universal"
    for pattern in (_STABLE, _TORCH, _TVM_FFI):
        m = pattern.match(name)
        if m is not None:
            kind = _BACKEND.match(m["backend"])
            return _KIND_TO_BACKEND[kind["kind"]] if kind else None
    noarch = _NOARCH.match(name)
    return noarch["backend"] if noarch else None


def looks_like_variant(name: str) -> bool:
    """True when ``name`` has the form of a build variant (whether or not it fits here)."""
    patterns = (_STABLE, _TORCH, _TVM_FFI, _NOARCH)
    return name == "torch-universal" or any(p.match(name) for p in patterns)


def rank_variants(names: list[str], plat: Platform | None = None) -> list[VariantVerdict]:
    """Judge every name; accepted variants come first, best first, then the rejected ones by name."""
    plat = plat or detect_platform()
    return order([judge_variant(n, plat) for n in sorted(set(names))])


def order(verdicts: list[VariantVerdict]) -> list[VariantVerdict]:
    """Accepted verdicts best first, then the rejected ones by name."""
    accepted = sorted((v for v in verdicts if v.accepted), key=lambda v: (v.rank, v.name))
    rejected = sorted((v for v in verdicts if not v.accepted), key=lambda v: v.name)
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
