"""``torch.nn.Module`` wrappers that allocate their outputs, for use as drop-in layers.

The modules hold no parameters; ``forward`` accepts non-contiguous input (it is made contiguous
first, since the kernels index flat memory).
"""

from __future__ import annotations

import torch
from torch import nn

from ._ops import ops


class GeluFast(nn.Module):
    """``gelu(x, approximate="tanh")`` computed by the ``gelu_fast`` kernel."""

    # Read by the upstream kernels library when it swaps layers: these have no backward.
    can_torch_compile: bool = False
    has_backward: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        out = torch.empty_like(x)
        ops.gelu_fast(out, x)
        return out


class SiluAndMul(nn.Module):
    """``silu(x[..., :d]) * x[..., d:]`` for ``x`` of shape ``[..., 2 * d]``; returns ``[..., d]``."""

    can_torch_compile: bool = False
    has_backward: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        d = x.shape[-1] // 2
        out = torch.empty((*x.shape[:-1], d), dtype=x.dtype, device=x.device)
        ops.silu_and_mul(out, x)
        return out


__all__ = ["GeluFast", "SiluAndMul"]
