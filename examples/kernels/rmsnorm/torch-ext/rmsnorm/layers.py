"""``torch.nn.Module`` wrapper of :func:`rms_norm`."""

from __future__ import annotations

import torch
from torch import nn

from ._impl import rms_norm


class RMSNorm(nn.Module):
    """RMS normalisation over the last dimension with a learned scale (initialised to ones)."""

    def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x, self.weight, self.eps)
