"""The GPU examples (examples/cuda_e2e.py, cuda_arch_check.py, cuda_layers.py); skipped without CUDA."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from kernelhub import ROOT


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_cuda_end_to_end() -> None:
    """CUDA build, publish, basic.py, all ops and dtypes, locked offline load, timings."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "cuda_e2e.py")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all checks passed" in out.stdout


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_cuda_arch_check() -> None:
    """A CUDA build declaring only an arch the device lacks is refused; check_arch=False loads."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "cuda_arch_check.py")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all checks passed" in out.stdout


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")
def test_cuda_layers() -> None:
    """transformers with a KernelConfig on cuda, SiluAndMul, capability ranges, torch.compile."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "cuda_layers.py")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all checks passed" in out.stdout
