"""Activation kernels: GELU (erf, tanh and fast forms) and SiLU-and-multiply.

Every function follows the out-parameter convention of the upstream ``activation`` kernel: the caller
allocates ``out`` (same dtype and device as ``x``, contiguous) and the op fills it; the function also
returns ``out`` for convenience. CPU supports float32, float64, bfloat16 and float16; CUDA supports
float32, float16 and bfloat16.

This package is loaded under a unique module name (its build id), so it imports its own modules
relatively.
"""

from __future__ import annotations

import torch

from . import _fake, layers  # noqa: F401  (_fake registers the ops' fake implementations)
from ._ops import add_op_namespace_prefix, ops
from ._version import __version__


def gelu_fast(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Write ``gelu(x, approximate="tanh")`` into ``out`` (the fast formulation) and return ``out``."""
    ops.gelu_fast(out, x)
    return out


def gelu(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Write the exact (erf) GELU of ``x`` into ``out`` and return ``out``."""
    ops.gelu(out, x)
    return out


def gelu_tanh(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Write ``torch.nn.functional.gelu(x, approximate="tanh")`` into ``out`` and return ``out``."""
    ops.gelu_tanh(out, x)
    return out


def silu(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Write ``torch.nn.functional.silu(x)`` into ``out`` and return ``out``."""
    ops.silu(out, x)
    return out


def silu_and_mul(out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """For ``x`` of shape ``[..., 2 * d]``, write ``silu(x[..., :d]) * x[..., d:]`` into ``out``
    (shape ``[..., d]``) and return ``out``."""
    ops.silu_and_mul(out, x)
    return out


__all__ = [
    "__version__",
    "add_op_namespace_prefix",
    "gelu",
    "gelu_fast",
    "gelu_tanh",
    "layers",
    "ops",
    "silu",
    "silu_and_mul",
]
