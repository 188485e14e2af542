"""The GPU examples (examples/cuda_e2e.py, cuda_arch_check.py, cuda_layers.py); skipped without CUDA."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from kernelhub import ROOT

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs an NVIDIA GPU")


def run_example(name: str) -> None:
    """Run ``examples/<name>`` and require every one of its checks to pass."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "all checks passed" in out.stdout


@pytest.mark.cuda
@gpu
def test_cuda_end_to_end() -> None:
    """CUDA build, publish, basic.py, all ops and dtypes, locked offline load, timings."""
    run_example("cuda_e2e.py")


@pytest.mark.cuda
@gpu
def test_cuda_arch_check() -> None:
    """A CUDA build declaring only an arch the device lacks is refused; check_arch=False loads."""
    run_example("cuda_arch_check.py")


@pytest.mark.cuda
@gpu
def test_cuda_layers() -> None:
    """transformers with a KernelConfig on cuda, SiluAndMul, capability ranges, torch.compile."""
    run_example("cuda_layers.py")
