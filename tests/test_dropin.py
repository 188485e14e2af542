"""Code written for kernels 0.17.2 runs unchanged: its public names and keyword arguments."""

from __future__ import annotations

import inspect

import kernels
import pytest

# kernels 0.17.2's `__all__`, verbatim (the wheel is not needed to run this test).
UPSTREAM_ALL = [
    "__version__",
    "Benchmark",
    "CUDAProperties",
    "Device",
    "KernelizeFallback",
    "ROCMProperties",
    "FuncRepository",
    "LayerRepository",
    "LoadedKernel",
    "LocalFuncRepository",
    "LocalLayerRepository",
    "LockedFuncRepository",
    "LockedLayerRepository",
    "Metadata",
    "Mode",
    "RepoInfo",
    "VariantAccepted",
    "VariantRejected",
    "get_kernel",
    "get_kernel_dep",
    "get_kernel_variants",
    "get_loaded_kernels",
    "get_local_kernel",
    "get_locked_kernel",
    "has_kernel",
    "install_kernel",
    "kernelize",
    "load_kernel",
    "register_kernel_mapping",
    "replace_kernel_forward_from_hub",
    "use_kernel_forward_from_hub",
    "use_kernel_func_from_hub",
    "use_kernel_mapping",
    "use_kernelized_func",
]

# The keyword arguments of 0.17.2's loaders (ours may take more).
UPSTREAM_KEYWORDS = {
    "get_kernel": {"revision", "version", "backend", "user_agent", "trust_remote_code", "check_arch"},
    "has_kernel": {"revision", "version", "backend", "trust_remote_code", "check_arch"},
    "install_kernel": {
        "revision", "version", "backend", "local_files_only", "user_agent", "trust_remote_code",
    },
    "get_local_kernel": {"backend", "trust_remote_code", "user_agent"},
    "get_locked_kernel": {"lockfile", "trust_remote_code", "user_agent"},
    "load_kernel": {"lockfile", "backend"},
    "get_kernel_variants": {"revision", "version", "backend"},
}  # fmt: skip


@pytest.mark.parametrize("name", UPSTREAM_ALL)
def test_every_upstream_name_imports(name: str) -> None:
    exec(f"from kernels import {name}", {})
    assert name in kernels.__all__


@pytest.mark.parametrize("name", sorted(UPSTREAM_KEYWORDS))
def test_loaders_take_the_upstream_keywords(name: str) -> None:
    params = inspect.signature(getattr(kernels, name)).parameters
    assert UPSTREAM_KEYWORDS[name] <= set(params), name
    first = next(iter(params.values()))
    assert first.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD  # repo_id / repo_path


def test_types_have_the_upstream_attributes() -> None:
    from kernels import LoadedKernel, Metadata, RepoInfo

    meta = Metadata.from_bytes(
        b'{"name": "act-x", "id": "_act_x_1", "version": 1, "license": "mit",'
        b' "python-depends": ["einops"], "kernels-minver": "0.17.0",'
        b' "kernel-depends": [{"repo-id": "org/dep", "revision": "main"}],'
        b' "backend": {"type": "cuda", "archs": ["8.0", "9.0a"]}}'
    )
    assert (meta.id, str(meta.name), meta.name.python_name, meta.version) == (
        "_act_x_1",
        "act-x",
        "act_x",
        1,
    )
    assert str(meta.kernels_minver) == "0.17.0" and meta.license == "mit"
    assert meta.upstream is None and meta.source is None and meta.python_depends == ["einops"]
    assert meta.backend.backend_type == "cuda" and meta.backend.archs == ["8.0", "9.0a"]
    [dep] = meta.kernel_depends
    assert (dep.repo_id, dep.revision) == ("org/dep", "main")
    assert meta.digest is None and meta.provenance is None
    info = RepoInfo(repo_id="org/x", revision="0" * 40)
    loaded = LoadedKernel(metadata=meta, module=kernels, repo_info=info)
    assert loaded.repo_info is info and loaded.repo_id == "org/x"
