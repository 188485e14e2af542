"""Fake (meta) implementations of the ops, so that ``torch.compile`` can trace them.

Every op writes into its ``out`` argument and returns nothing, so a fake implementation only has to
accept the arguments: the shapes of the outputs are those of the ``out`` tensors the caller made.
"""

from __future__ import annotations

import torch

from ._ops import add_op_namespace_prefix

_OPS = ("gelu_fast", "gelu", "gelu_tanh", "silu", "silu_and_mul")


def _no_output(out: torch.Tensor, input: torch.Tensor) -> None:
    return None


def register() -> None:
    """Register a fake implementation of each op once per namespace (idempotent)."""
    for name in _OPS:
        try:
            torch.library.register_fake(add_op_namespace_prefix(name))(_no_output)
        except RuntimeError:
            # Another copy of this very build (same namespace) registered it already.
            pass


register()
