"""RMS normalisation in plain PyTorch, published as the arch-free ``torch-universal`` variant.

The package is loaded under a unique module name (its build id) from a folder that is not on
``sys.path``; the relative imports below are what make that work.
"""

from __future__ import annotations

from . import layers
from ._impl import rms_norm
from ._version import __version__
from .layers import RMSNorm

__all__ = ["RMSNorm", "__version__", "layers", "rms_norm"]
