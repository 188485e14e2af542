"""Hub layers: stateless ``torch.nn.Module`` classes that ``kernels.kernelize`` swaps in.

``RMSNorm.forward`` runs on the state of the module it replaces, which must have ``weight`` (shape
``[hidden]``) and ``variance_epsilon``, as transformers' ``LlamaRMSNorm`` and its many copies do. The
maths are those of ``LlamaRMSNorm``: statistics in float32, the scale applied in the input's dtype.
"""

from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    """RMS normalisation over the last dimension, scaled by the replaced module's ``weight``."""

    weight: torch.Tensor
    variance_epsilon: float

    # Plain PyTorch: autograd and torch.compile see through it.
    can_torch_compile: bool = True
    has_backward: bool = True

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
        return self.weight * hidden_states.to(input_dtype)


__all__ = ["RMSNorm"]
