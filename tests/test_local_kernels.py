"""Local kernels: get_local_kernel picks the variant for this interpreter; LOCAL_KERNELS overrides
Hub repos with folders; install_kernel(local_files_only=True) uses the cache only."""

from __future__ import annotations

import shutil
from pathlib import Path

import kernels
import pytest
import torch
from kernelhub import (
    cpu_activation,
    publish,
    renamed,
    scaled_rmsnorm,
    unique_repo,
    universal_rmsnorm,
)
from kernels.errors import InvalidArgumentError, NoCompatibleVariantError, NotInCacheError
from kernels.platform import detect_platform

HERE = detect_platform().variant


def _local_repo(tmp: Path) -> Path:
    """A kernel checkout: build/ holds decoys for other machines, and this machine's variant."""
    root = tmp / "activation-checkout"
    build = root / "build"
    build.mkdir(parents=True)
    for decoy in renamed(
        cpu_activation(), ["torch-cuda", "torch211-cxx11-cu130-x86_64-linux"], tmp
    ):
        shutil.copytree(decoy, build / decoy.name)
    shutil.copytree(cpu_activation(), build / HERE)
    return root


def test_get_local_kernel_picks_the_compatible_variant(tmp_path):  # type: ignore[no-untyped-def]
    root = _local_repo(tmp_path)
    mods = [
        kernels.get_local_kernel(p, backend=None, trust_remote_code=False, user_agent=None)
        for p in (root, root / "build", root / "build" / HERE)
    ]
    assert mods[0] is mods[1] is mods[2]
    assert Path(mods[0].__file__).parent == root / "build" / HERE
    x = torch.randn(4, 6)
    out = torch.empty(4, 3)
    mods[0].silu_and_mul(out, x)
    torch.testing.assert_close(out, torch.nn.functional.silu(x[:, :3]) * x[:, 3:])
    loaded = next(k for k in kernels.get_loaded_kernels() if k.module is mods[0])
    assert loaded.repo_info is None and loaded.metadata.name == "activation"
    only_gpu = tmp_path / "gpu-only" / "build"
    shutil.copytree(root / "build" / "torch-cuda", only_gpu / "torch-cuda")
    with pytest.raises(NoCompatibleVariantError, match="torch-cuda: arch-free cuda build"):
        kernels.get_local_kernel(only_gpu.parent)


def test_local_kernels_override_and_local_dependencies(hub, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """LOCAL_KERNELS loads a repo from a folder with no request; a Hub kernel's dependency can
    be one of them too."""
    root = _local_repo(tmp_path)
    norm_dir = tmp_path / "rmsnorm-src"
    shutil.copytree(universal_rmsnorm("0.1.0"), norm_dir / "build" / "torch-universal")
    norm, scaled = unique_repo("local-norm"), unique_repo("local-scaled")
    publish(hub.endpoint, scaled, [scaled_rmsnorm(norm)])  # its dependency is not on the Hub
    monkeypatch.setenv("LOCAL_KERNELS", f"kernels-test/not-on-the-hub={root}:{norm}={norm_dir}")
    hub.reset_requests()
    mod = kernels.get_kernel("kernels-test/not-on-the-hub", version=1)
    assert hub.requests() == [] and Path(mod.__file__).parent == root / "build" / HERE
    with_dep = kernels.get_kernel(scaled, version=1)
    assert Path(with_dep.rmsnorm.__file__).parent == norm_dir / "build" / "torch-universal"
    monkeypatch.setenv("LOCAL_KERNELS", "no-equals-sign")
    with pytest.raises(InvalidArgumentError, match="LOCAL_KERNELS"):
        kernels.get_kernel("kernels-test/x", version=1)


def test_install_kernel_local_files_only(hub):  # type: ignore[no-untyped-def]
    repo = unique_repo("local-only")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")])
    with pytest.raises(NotInCacheError):
        kernels.install_kernel(repo, version=1, local_files_only=True)
    path = kernels.install_kernel(repo, version=1)
    hub.reset_requests()
    assert kernels.install_kernel(repo, version=1, local_files_only=True) == path
    assert hub.requests() == []
