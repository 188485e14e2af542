"""Checks before import: GPU architectures, python-depends, kernels-minver, dirty builds."""

from __future__ import annotations

import logging

import kernels
import kernels.loader
import pytest
from kernelhub import cpu_activation, publish, unique_repo, universal_rmsnorm, with_metadata
from kernels.archs import DeviceArch, covers, cuda_arch_runs_on, mismatch
from kernels.errors import (
    KernelsVersionError,
    MissingDependencyError,
    UnknownDependencyError,
    UnsupportedDeviceError,
)
from kernels.platform import detect_platform
from kernels.pydeps import check_python_depends

HERE = detect_platform().variant
H200 = DeviceArch("cuda", "9.0", "NVIDIA H200")


@pytest.mark.parametrize(
    ("arch", "capability", "runs"),
    [
        ("8.0", (8, 0), True),
        ("8.0", (8, 6), True),  # same major, newer minor
        ("8.0", (9, 0), False),  # a newer major needs PTX
        ("8.6", (8, 0), False),
        ("9.0a", (9, 0), True),  # architecture-specific: that capability only
        ("9.0a", (9, 1), False),
        ("10.0f", (10, 3), True),  # family-specific: the same major
        ("10.0f", (11, 0), False),
        ("8.0+PTX", (9, 0), True),  # PTX compiles for newer devices
        ("9.0+PTX", (8, 9), False),
        ("sm_90", (9, 0), None),  # a form this library does not know
    ],
)
def test_cuda_arch_rules(arch, capability, runs):  # type: ignore[no-untyped-def]
    assert cuda_arch_runs_on(arch, capability) is runs


def test_covers_and_mismatch_name_the_device_and_the_build() -> None:
    assert covers(["8.0", "9.0"], H200) and not covers(["8.0", "10.0"], H200)
    assert covers(["sm_90", "compute_90"], H200)  # nothing known: not refused
    rocm = DeviceArch("rocm", "gfx942")
    assert covers(["gfx90a", "gfx942"], rocm) and not covers(["gfx90a"], rocm)
    why = mismatch("cuda", ["8.0", "10.0"], H200)
    assert why is not None and "CUDA capability 9.0 (NVIDIA H200)" in why and "8.0, 10.0" in why
    assert mismatch("cpu", ["8.0"], H200) is None  # another backend's build
    assert mismatch("cuda", None, H200) is None and mismatch("cuda", ["8.0"], None) is None


def test_arch_check_with_a_given_device(hub, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A build listing only an architecture the device lacks is passed over for the next variant,
    rejected (with the reason) by get_kernel_variants, refused when nothing is left, and loads
    with check_arch=False."""
    monkeypatch.setattr(kernels.loader, "current_device", lambda backend: H200)
    cuda_meta = {"type": "cuda", "archs": ["10.0"]}
    built = with_metadata(cpu_activation(), tmp_path, backend=cuda_meta)
    only = unique_repo("arch-only")
    publish(hub.endpoint, only, [built])
    with pytest.raises(UnsupportedDeviceError) as refused:
        kernels.get_kernel(only, version=1)
    msg = str(refused.value)
    assert isinstance(refused.value, RuntimeError)
    assert "CUDA capability 9.0 (NVIDIA H200)" in msg and "10.0" in msg and HERE in msg
    assert "check_arch=False" in msg
    assert kernels.has_kernel(only, version=1) is False
    assert kernels.has_kernel(only, version=1, check_arch=False) is True
    mod = kernels.get_kernel(only, version=1, check_arch=False)
    assert callable(mod.gelu_fast)
    fallback = unique_repo("arch-fallback")
    universal = with_metadata(universal_rmsnorm("0.1.0"), tmp_path, name="activation")
    publish(hub.endpoint, fallback, [built, universal])
    verdicts = kernels.get_kernel_variants(fallback, version=1)
    assert [(v.name, v.accepted) for v in verdicts] == [("torch-universal", True), (HERE, False)]
    assert isinstance(verdicts[1], kernels.VariantRejected) and "NVIDIA H200" in verdicts[1].reason
    assert callable(kernels.get_kernel(fallback, version=1).rms_norm)  # the universal build


def test_python_depends_checked_before_download(hub, tmp_path):  # type: ignore[no-untyped-def]
    base = universal_rmsnorm("0.1.0")
    missing, unknown = unique_repo("pydeps-missing"), unique_repo("pydeps-unknown")
    publish(hub.endpoint, missing, [with_metadata(base, tmp_path, python_depends=["einops"])])
    publish(hub.endpoint, unknown, [with_metadata(base, tmp_path, python_depends=["left-pad"])])
    hub.reset_requests()
    with pytest.raises(MissingDependencyError) as info:
        kernels.get_kernel(missing, version=1)
    assert isinstance(info.value, ImportError)
    assert "pip install einops" in str(info.value) and missing in str(info.value)
    downloads = [r.path for r in hub.requests() if "/resolve/" in r.path]
    assert downloads and all(p.endswith("/metadata.json") for p in downloads)
    with pytest.raises(UnknownDependencyError) as info2:
        kernels.get_kernel(unknown, version=1)
    assert isinstance(info2.value, ValueError) and "'left-pad'" in str(info2.value)
    check_python_depends("x", ["onednn"], "xpu")  # known on xpu, nothing to import
    with pytest.raises(UnknownDependencyError):
        check_python_depends("x", ["onednn"], "cpu")


def test_minver_and_dirty_builds(hub, tmp_path, caplog):  # type: ignore[no-untyped-def]
    base = universal_rmsnorm("0.1.0")
    newer, dirty = unique_repo("minver"), unique_repo("dirty")
    publish(hub.endpoint, newer, [with_metadata(base, tmp_path, kernels_minver="99.0.0")])
    provenance = {
        "kernel-builder": {"version": "0.9", "commit": "a" * 40, "dirty": False},
        "kernel": {"commit": "b" * 40, "dirty": True},
    }
    publish(hub.endpoint, dirty, [with_metadata(base, tmp_path, provenance=provenance)])
    with pytest.raises(KernelsVersionError) as info:
        kernels.get_kernel(newer, version=1)
    assert isinstance(info.value, RuntimeError)
    assert "kernels>=99.0.0" in str(info.value) and "pip install --upgrade kernels" in str(
        info.value
    )
    with caplog.at_level(logging.WARNING, logger="kernels.checks"):
        assert callable(kernels.get_kernel(dirty, version=1).rms_norm)
    assert any("dirty git tree" in r.getMessage() for r in caplog.records)
