"""Layers: mark ``nn.Module`` classes, map layer names to hub kernels, and ``kernelize`` models.

Importing this package does not import torch; ``kernelize`` and loading a layer do.
"""

from __future__ import annotations

from kernels.layers.device import CUDAProperties, Device, ROCMProperties
from kernels.layers.kernelizer import KernelizeFallback, kernelize
from kernels.layers.mapping import register_kernel_mapping, use_kernel_mapping
from kernels.layers.marking import (
    replace_kernel_forward_from_hub,
    use_kernel_forward_from_hub,
    use_kernel_func_from_hub,
    use_kernelized_func,
)
from kernels.layers.mode import Mode
from kernels.layers.repository import (
    FuncRepository,
    LayerRepository,
    LocalFuncRepository,
    LocalLayerRepository,
    LockedFuncRepository,
    LockedLayerRepository,
)

__all__ = [
    "CUDAProperties",
    "Device",
    "FuncRepository",
    "KernelizeFallback",
    "LayerRepository",
    "LocalFuncRepository",
    "LocalLayerRepository",
    "LockedFuncRepository",
    "LockedLayerRepository",
    "Mode",
    "ROCMProperties",
    "kernelize",
    "register_kernel_mapping",
    "replace_kernel_forward_from_hub",
    "use_kernel_forward_from_hub",
    "use_kernel_func_from_hub",
    "use_kernel_mapping",
    "use_kernelized_func",
]
