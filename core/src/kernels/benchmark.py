"""``Benchmark``: the base class of a kernel repository's ``benchmarks/benchmark*.py`` scripts.

``kernels benchmark REPO`` (see :mod:`kernels.benchrun`) imports each script, finds the
``Benchmark`` subclasses it defines, and for every ``benchmark_<workload>`` method: makes a fresh
instance, sets ``kernel`` (the loaded kernel module) and ``device``, seeds the random generators when
``seed`` is set, runs ``setup_<workload>`` (else ``setup``), then, when ``verify_<workload>``
exists, runs the workload once and compares ``self.out`` with the tensor ``verify_<workload>``
returns (a mismatch fails the run; the reference is timed too), and times the workload after the
warm-up. The class is the same as 0.17.2's, so benchmark scripts written for it run unchanged.

Example::

    class Activation(Benchmark):
        seed = 0

        def setup(self):
            self.x = torch.randn(128, 1024, device=self.device)
            self.out = torch.empty(128, 512, device=self.device)

        def benchmark_silu_and_mul(self):
            self.kernel.silu_and_mul(self.out, self.x)

        def verify_silu_and_mul(self):
            return torch.nn.functional.silu(self.x[:, :512]) * self.x[:, 512:]
"""

from __future__ import annotations

from typing import Any


class Benchmark:
    """Subclass it in ``benchmarks/benchmark*.py``; see the module docstring for the protocol."""

    seed: int | None = None
    """When set, ``torch`` and ``random`` are seeded with it before each workload's setup."""
    device: str = "cpu"
    """The torch device the kernel runs on; set by the runner (``cuda``, ``mps``, ``cpu`` ...)."""

    def __init__(self) -> None:
        self.kernel: Any = None
        self.out: Any = None

    def setup(self) -> None:
        """Create the inputs (and ``self.out``) of every workload without its own ``setup_<name>``."""
