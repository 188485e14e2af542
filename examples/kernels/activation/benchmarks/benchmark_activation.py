"""Benchmarks of the activation kernel, run by ``kernels benchmark <repo>``.

Each ``benchmark_<name>`` method is one workload: ``verify_<name>`` returns the reference result
that ``self.out`` must match (and is timed as the reference implementation).
"""

from __future__ import annotations

import torch
from kernels import Benchmark


class Activation(Benchmark):
    seed = 0

    def setup(self) -> None:
        self.x = torch.randn(256, 1024, device=self.device)
        self.out = torch.empty(256, 512, device=self.device)

    def benchmark_silu_and_mul(self) -> None:
        self.kernel.silu_and_mul(self.out, self.x)

    def verify_silu_and_mul(self) -> torch.Tensor:
        return torch.nn.functional.silu(self.x[:, :512]) * self.x[:, 512:]

    def setup_gelu_fast(self) -> None:
        self.x = torch.randn(256, 1024, device=self.device)
        self.out = torch.empty_like(self.x)

    def benchmark_gelu_fast(self) -> None:
        self.kernel.gelu_fast(self.out, self.x)

    def verify_gelu_fast(self) -> torch.Tensor:
        return torch.nn.functional.gelu(self.x, approximate="tanh")
