"""Load compute kernels from the Hugging Face Hub, and lock them like packages.

Importing this package is cheap: torch and ``huggingface_hub``'s API are imported only when a function
that needs them is called. Public names are resolved lazily through :func:`__getattr__`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    "get_kernel": "kernels.loader",
    "install_kernel": "kernels.loader",
    "has_kernel": "kernels.loader",
    "get_local_kernel": "kernels.loader",
    "get_kernel_variants": "kernels.loader",
    "get_loaded_kernels": "kernels.loader",
    "get_locked_kernel": "kernels.locked",
    "load_kernel": "kernels.locked",
    "get_kernel_dep": "kernels.kerneldeps",
    "LoadedKernel": "kernels.importer",
    "RepoInfo": "kernels.importer",
    "Metadata": "kernels.metadata",
    "VariantAccepted": "kernels.variants",
    "VariantRejected": "kernels.variants",
    "Benchmark": "kernels.benchmark",
    "KernelsError": "kernels.errors",
    "ConfigError": "kernels.errors",
    "LockfileError": "kernels.errors",
    "ResolutionError": "kernels.errors",
    "NoCompatibleVariantError": "kernels.errors",
    "IntegrityError": "kernels.errors",
    "NotInCacheError": "kernels.errors",
    "HubError": "kernels.errors",
    "FileSystemError": "kernels.errors",
    "InvalidArgumentError": "kernels.errors",
    "NotFoundOnHubError": "kernels.errors",
    "MissingDependencyError": "kernels.errors",
    "LayerError": "kernels.errors",
    "LayerValidationError": "kernels.errors",
    "CUDAProperties": "kernels.layers",
    "Device": "kernels.layers",
    "FuncRepository": "kernels.layers",
    "KernelizeFallback": "kernels.layers",
    "LayerRepository": "kernels.layers",
    "LocalFuncRepository": "kernels.layers",
    "LocalLayerRepository": "kernels.layers",
    "LockedFuncRepository": "kernels.layers",
    "LockedLayerRepository": "kernels.layers",
    "Mode": "kernels.layers",
    "ROCMProperties": "kernels.layers",
    "kernelize": "kernels.layers",
    "register_kernel_mapping": "kernels.layers",
    "replace_kernel_forward_from_hub": "kernels.layers",
    "use_kernel_forward_from_hub": "kernels.layers",
    "use_kernel_func_from_hub": "kernels.layers",
    "use_kernel_mapping": "kernels.layers",
    "use_kernelized_func": "kernels.layers",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:
    from kernels.benchmark import Benchmark
    from kernels.errors import (
        ConfigError,
        FileSystemError,
        HubError,
        IntegrityError,
        InvalidArgumentError,
        KernelsError,
        LayerError,
        LayerValidationError,
        LockfileError,
        MissingDependencyError,
        NoCompatibleVariantError,
        NotFoundOnHubError,
        NotInCacheError,
        ResolutionError,
    )
    from kernels.importer import LoadedKernel, RepoInfo
    from kernels.kerneldeps import get_kernel_dep
    from kernels.layers import (
        CUDAProperties,
        Device,
        FuncRepository,
        KernelizeFallback,
        LayerRepository,
        LocalFuncRepository,
        LocalLayerRepository,
        LockedFuncRepository,
        LockedLayerRepository,
        Mode,
        ROCMProperties,
        kernelize,
        register_kernel_mapping,
        replace_kernel_forward_from_hub,
        use_kernel_forward_from_hub,
        use_kernel_func_from_hub,
        use_kernel_mapping,
        use_kernelized_func,
    )
    from kernels.loader import (
        get_kernel,
        get_kernel_variants,
        get_loaded_kernels,
        get_local_kernel,
        has_kernel,
        install_kernel,
    )
    from kernels.locked import get_locked_kernel, load_kernel
    from kernels.metadata import Metadata
    from kernels.variants import VariantAccepted, VariantRejected


def _version() -> str:
    # The installed distribution's, so that it always agrees with what ``importlib.metadata`` (and
    # so transformers' version gate) sees; from a source tree on ``sys.path``, its pyproject's.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kernels")
    except PackageNotFoundError:
        import re
        from pathlib import Path

        pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
        text = pyproject.read_text(encoding="utf-8") if pyproject.is_file() else ""
        found = re.search(r'^version = "([^"]+)"', text, re.M)
        if found is None:
            raise
        return found.group(1)


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value = _version()
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kernels' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
