"""Hub layers: stateless ``torch.nn.Module`` classes that ``kernels.kernelize`` swaps in.

A layer defines ``forward`` only (no ``__init__``, no state of its own): ``kernelize`` binds that
``forward`` to the module it replaces. Outputs are allocated here; input is made contiguous first,
since the kernels index flat memory. The ops have fake implementations (``_fake.py``), so
``torch.compile`` traces them (``can_torch_compile``); they have no backward (``has_backward``),
so ``kernelize`` keeps the original forward in training mode.
"""

from __future__ import annotations

import torch
from torch import nn

from ._ops import ops


def _unary(op: object, x: torch.Tensor) -> torch.Tensor:
    # Module-level, not a method: a hub layer may have no members beyond forward and the flags.
    x = x.contiguous()
    out = torch.empty_like(x)
    op(out, x)  # type: ignore[operator]
    return out


class SiluAndMul(nn.Module):
    """``silu(x[..., :d]) * x[..., d:]`` for ``x`` of shape ``[..., 2 * d]``; returns ``[..., d]``."""

    can_torch_compile: bool = True
    has_backward: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        d = x.shape[-1] // 2
        out = torch.empty((*x.shape[:-1], d), dtype=x.dtype, device=x.device)
        ops.silu_and_mul(out, x)
        return out


class Silu(nn.Module):
    """``torch.nn.functional.silu(x)``; replaces transformers' ``SiLU`` layer."""

    can_torch_compile: bool = True
    has_backward: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _unary(ops.silu, x)


class GeluFast(nn.Module):
    """``gelu(x, approximate="tanh")`` computed by the ``gelu_fast`` kernel."""

    can_torch_compile: bool = True
    has_backward: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _unary(ops.gelu_fast, x)


class GeluTanh(nn.Module):
    """``gelu(x, approximate="tanh")`` in torch's own formulation; replaces ``GeluTanh``."""

    can_torch_compile: bool = True
    has_backward: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _unary(ops.gelu_tanh, x)


class Gelu(nn.Module):
    """The exact (erf) GELU; replaces transformers' ``GeLU`` layer."""

    can_torch_compile: bool = True
    has_backward: bool = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _unary(ops.gelu, x)


__all__ = ["Gelu", "GeluFast", "GeluTanh", "Silu", "SiluAndMul"]
