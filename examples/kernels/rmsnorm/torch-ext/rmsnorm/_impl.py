"""The computation, kept apart from ``__init__`` so that the package imports it relatively."""

from __future__ import annotations

import torch


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Return ``x / sqrt(mean(x**2, -1) + eps) * weight`` in ``x``'s dtype.

    The statistics and the scaling are computed in float32 (or float64 for float64 input), so
    bfloat16 and float16 inputs do not lose precision in the reduction; ``weight`` has shape
    ``[x.shape[-1]]``.
    """
    if weight.shape != x.shape[-1:]:
        raise ValueError(f"weight has shape {tuple(weight.shape)}, expected ({x.shape[-1]},)")
    compute = torch.float64 if x.dtype == torch.float64 else torch.float32
    xf = x.to(compute)
    inv_rms = torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (xf * inv_rms * weight.to(compute)).to(x.dtype)
