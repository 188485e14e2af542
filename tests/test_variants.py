"""Variant acceptance and preference (as kernels 0.17.2), and platform detection without torch."""

from __future__ import annotations

import subprocess
import sys

from kernels.platform import Platform
from kernels.variants import best_variant, judge_variant, rank_variants
from packaging.version import Version

CUDA = Platform(Version("2.11"), True, "cuda", Version("13.0"), "x86_64", "linux")
CPU = Platform(Version("2.13"), True, "cpu", None, "x86_64", "linux")
MAC = Platform(
    Version("2.9"), True, "metal", None, "aarch64", "darwin", macos_version=Version("26.1")
)

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


def test_cuda_prefers_stable_abi_then_exact_then_closest_minor_then_fallbacks() -> None:
    ranked = [v.name for v in rank_variants(ALL, CUDA) if v.accepted]
    assert ranked == [
        "torch-stable-abi29-cu130-x86_64-linux",
        "torch211-cxx11-cu130-x86_64-linux",
        "torch-cuda",
        "torch-universal",
    ]
    cu129 = Platform(Version("2.11"), True, "cuda", Version("12.9"), "x86_64", "linux")
    ranked = [v.name for v in rank_variants(ALL, cu129) if v.accepted]
    assert ranked[:2] == ["torch211-cxx11-cu128-x86_64-linux", "torch211-cxx11-cu126-x86_64-linux"]
    assert ranked[2:] == ["torch-cuda", "torch-universal"]


def test_preference_order_of_every_framework() -> None:
    """Newest stable ABI first, then its CUDA minor; untagged exact builds before cxx11-tagged;
    tvm-ffi after torch builds; the arch-free build before torch-universal."""
    tvm = Platform(
        Version("2.11"), True, "cuda", Version("13.2"), "x86_64", "linux", Version("0.1")
    )
    names = [
        "torch-universal",
        "torch-cuda",
        "tvm-ffi01-cu130-x86_64-linux",
        "torch211-cxx11-cu130-x86_64-linux",
        "torch211-cu130-x86_64-linux",
        "torch-stable-abi29-cu130-x86_64-linux",
        "torch-stable-abi210-cu131-x86_64-linux",
        "torch-stable-abi210-cu132-x86_64-linux",
        "tvm-ffi02-cu130-x86_64-linux",
    ]
    ranked = rank_variants(names, tvm)
    assert [v.name for v in ranked if v.accepted] == [
        "torch-stable-abi210-cu132-x86_64-linux",
        "torch-stable-abi210-cu131-x86_64-linux",
        "torch-stable-abi29-cu130-x86_64-linux",
        "torch211-cu130-x86_64-linux",
        "torch211-cxx11-cu130-x86_64-linux",
        "tvm-ffi01-cu130-x86_64-linux",
        "torch-cuda",
        "torch-universal",
    ]
    assert "apache-tvm-ffi 0.2" in ranked[-1].reason and "0.1" in ranked[-1].reason


def test_free_threaded_python_takes_only_python_builds() -> None:
    ft = Platform(Version("2.13"), True, "cpu", None, "x86_64", "linux", free_threaded=True)
    ranked = rank_variants(ALL, ft)
    assert [v.name for v in ranked if v.accepted] == ["torch-cpu", "torch-universal"]
    reasons = {v.name: v.reason for v in ranked}
    assert "free-threaded" in reasons["torch213-cxx11-cpu-x86_64-linux"]


def test_neuron_tpu_npu_and_old_macos() -> None:
    for backend in ("neuron", "tpu"):
        plat = Platform(Version("2.9"), True, backend, None, "x86_64", "linux")
        names = ["torch-cuda", f"torch-{backend}", "torch-universal"]
        assert [v.name for v in rank_variants(names, plat) if v.accepted] == names[1:]
    npu = Platform(Version("2.9"), True, "npu", Version("8.1"), "aarch64", "linux")
    assert npu.backend_tag == "cann81"
    assert best_variant(["torch29-cxx11-cann81-aarch64-linux", "torch-npu"], npu) == (
        "torch29-cxx11-cann81-aarch64-linux"
    )
    assert not judge_variant("torch29-cxx11-cann80-aarch64-linux", npu).accepted
    old_mac = Platform(
        Version("2.9"), True, "metal", None, "aarch64", "darwin", macos_version=Version("15.5")
    )
    verdict = judge_variant("torch29-metal-aarch64-darwin", old_mac)
    assert not verdict.accepted and "macOS 26" in verdict.reason


def test_verdicts_are_0172_types() -> None:
    from kernels import VariantAccepted, VariantRejected

    ranked = rank_variants(["torch-cuda", "torch-universal"], CPU)
    assert isinstance(ranked[0], VariantAccepted) and isinstance(ranked[1], VariantRejected)
    assert ranked[0].variant.variant_str == "torch-universal"
    assert ranked[1].variant.variant_str == "torch-cuda" and "cuda" in ranked[1].reason


def test_rejections_say_why() -> None:
    reasons = {v.name: v.reason for v in rank_variants(ALL, CUDA) if not v.accepted}
    assert "newer than torch's CUDA 13.0" in reasons["torch211-cxx11-cu132-x86_64-linux"]
    assert "major differs" in reasons["torch211-cxx11-cu118-x86_64-linux"]
    assert "torch 2.10" in reasons["torch210-cxx11-cu130-x86_64-linux"]
    assert "ABI" in reasons["torch211-cxx98-cu130-x86_64-linux"]
    assert "rocm" in reasons["torch211-cxx11-rocm71-x86_64-linux"]
    assert "aarch64" in reasons["torch211-cxx11-cu130-aarch64-linux"]
    assert "darwin" in reasons["torch29-metal-aarch64-darwin"]
    assert "apache-tvm-ffi" in reasons["tvm-ffi01-cu130-x86_64-linux"]
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
