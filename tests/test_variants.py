"""Variant acceptance and preference, and platform detection without importing torch."""

from __future__ import annotations

import subprocess
import sys

from kernels.platform import Platform
from kernels.variants import best_variant, judge_variant, rank_variants
from packaging.version import Version

CUDA = Platform(Version("2.11"), True, "cuda", Version("13.0"), "x86_64", "linux")
CPU = Platform(Version("2.13"), True, "cpu", None, "x86_64", "linux")
MAC = Platform(Version("2.9"), True, "metal", None, "aarch64", "darwin")

ALL = [
    "torch211-cxx11-cu126-x86_64-linux",
    "torch211-cxx11-cu128-x86_64-linux",
    "torch211-cxx11-cu130-x86_64-linux",
    "torch211-cxx11-cu132-x86_64-linux",
    "torch211-cxx11-cu118-x86_64-linux",
    "torch210-cxx11-cu130-x86_64-linux",
    "torch211-cxx98-cu130-x86_64-linux",
    "torch211-cxx11-rocm71-x86_64-linux",
    "torch211-cxx11-cu130-aarch64-linux",
    "torch213-cxx11-cpu-x86_64-linux",
    "torch29-metal-aarch64-darwin",
    "torch-stable-abi29-cu130-x86_64-linux",
    "torch-cuda",
    "torch-cpu",
    "torch-universal",
    "tvm-ffi01-cu130-x86_64-linux",
]


def test_cuda_prefers_exact_then_closest_minor_then_fallbacks() -> None:
    ranked = [v.name for v in rank_variants(ALL, CUDA) if v.accepted]
    assert ranked == [
        "torch211-cxx11-cu130-x86_64-linux",
        "torch-stable-abi29-cu130-x86_64-linux",
        "torch-cuda",
        "torch-universal",
    ]
    cu129 = Platform(Version("2.11"), True, "cuda", Version("12.9"), "x86_64", "linux")
    ranked = [v.name for v in rank_variants(ALL, cu129) if v.accepted]
    assert ranked[:2] == ["torch211-cxx11-cu128-x86_64-linux", "torch211-cxx11-cu126-x86_64-linux"]
    assert ranked[2:] == ["torch-cuda", "torch-universal"]


def test_rejections_say_why() -> None:
    reasons = {v.name: v.reason for v in rank_variants(ALL, CUDA) if not v.accepted}
    assert "newer than torch's CUDA 13.0" in reasons["torch211-cxx11-cu132-x86_64-linux"]
    assert "major differs" in reasons["torch211-cxx11-cu118-x86_64-linux"]
    assert "torch 2.10" in reasons["torch210-cxx11-cu130-x86_64-linux"]
    assert "ABI" in reasons["torch211-cxx98-cu130-x86_64-linux"]
    assert "rocm" in reasons["torch211-cxx11-rocm71-x86_64-linux"]
    assert "aarch64" in reasons["torch211-cxx11-cu130-aarch64-linux"]
    assert "darwin" in reasons["torch29-metal-aarch64-darwin"]
    assert "not supported" in reasons["tvm-ffi01-cu130-x86_64-linux"]
    assert "cpu" in reasons["torch-cpu"]


def test_cpu_and_metal() -> None:
    assert best_variant(ALL, CPU) == "torch213-cxx11-cpu-x86_64-linux"
    assert best_variant(["torch-cuda", "torch-cpu"], CPU) == "torch-cpu"
    assert best_variant(["torch-cuda"], CPU) is None
    assert best_variant(ALL, MAC) == "torch29-metal-aarch64-darwin"


def test_stable_abi_needs_older_or_equal_torch() -> None:
    assert judge_variant("torch-stable-abi212-cu130-x86_64-linux", CUDA).accepted is False
    assert judge_variant("torch-stable-abi210-cu130-x86_64-linux", CUDA).accepted is True
    assert CUDA.variant == "torch211-cxx11-cu130-x86_64-linux"
    assert MAC.variant == "torch29-metal-aarch64-darwin"


def test_detection_and_import_do_not_import_torch() -> None:
    code = (
        "import sys, kernels\n"
        "assert 'torch' not in sys.modules and 'huggingface_hub.hf_api' not in sys.modules\n"
        "from kernels.platform import detect_platform\n"
        "p = detect_platform()\n"
        "assert 'torch' not in sys.modules\n"
        "import torch\n"
        "assert p.variant.startswith('torch%d%d-' % tuple(map(int, torch.__version__.split('.')[:2])))\n"
        "print(p.variant)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("-linux")
