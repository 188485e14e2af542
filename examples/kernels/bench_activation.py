#!/usr/bin/env python3
"""Time the activation example's kernels against PyTorch's own, on one GPU (or the CPU).

    python examples/kernels/bench_activation.py [--backend cuda|cpu] [--kernel-dir DIR]

Builds the variant with build.py (cached), loads it under its id, and prints the median time and
the memory throughput (bytes read plus written) of each op next to the torch equivalent.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import EXAMPLES_DIR, build_variant


def load(variant: Path) -> ModuleType:
    """Import a variant folder under its metadata id."""
    kid = json.loads((variant / "metadata.json").read_text("utf-8"))["id"]
    spec = importlib.util.spec_from_file_location(
        kid, variant / "__init__.py", submodule_search_locations=[str(variant)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[kid] = module
    spec.loader.exec_module(module)
    return module


def median_seconds(fn: Callable[[], object], device: str, repeats: int = 30) -> float:
    """Median wall time of ``fn`` after warm-up; CUDA work is synchronised around each call."""
    for _ in range(3):
        fn()
    times: list[float] = []
    for _ in range(repeats):
        if device == "cuda":
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


Case = tuple[str, Callable[[], object], Callable[[], object], int]


def cases(mod: ModuleType, dtype: torch.dtype, device: str, n: int) -> list[Case]:
    """(op, our call, torch's call, bytes moved) for ``n``-element inputs of ``dtype``."""
    x = torch.randn(n, device=device, dtype=dtype)
    y = torch.empty_like(x)
    rows, d = n // 4096, 4096
    g = torch.randn(rows, 2 * d, device=device, dtype=dtype)
    h = torch.empty(rows, d, device=device, dtype=dtype)
    return [
        (
            "gelu_fast",
            lambda: mod.gelu_fast(y, x),
            lambda: F.gelu(x, approximate="tanh"),
            2 * x.nbytes,
        ),
        ("gelu", lambda: mod.gelu(y, x), lambda: F.gelu(x), 2 * x.nbytes),
        (
            "silu_and_mul",
            lambda: mod.silu_and_mul(h, g),
            lambda: F.silu(g[:, :d]) * g[:, d:],
            g.nbytes + h.nbytes,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backend", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument(
        "--kernel-dir", type=Path, default=EXAMPLES_DIR / "activation", help="a modified copy"
    )
    args = parser.parse_args()
    device = args.backend
    mod = load(build_variant(args.kernel_dir, backend=device))
    n = (1 << 26) if device == "cuda" else (1 << 22)
    print(f"{'op':<14}{'dtype':<10}{'kernel ms':>10}{'GB/s':>8}{'torch ms':>10}{'GB/s':>8}")
    for dtype in (torch.bfloat16, torch.float16, torch.float32):
        for name, ours, theirs, nbytes in cases(mod, dtype, device, n):
            t_ours = median_seconds(ours, device)
            t_theirs = median_seconds(theirs, device)
            print(
                f"{name:<14}{str(dtype).removeprefix('torch.'):<10}"
                f"{t_ours * 1e3:>10.3f}{nbytes / t_ours / 1e9:>8.0f}"
                f"{t_theirs * 1e3:>10.3f}{nbytes / t_theirs / 1e9:>8.0f}"
            )


if __name__ == "__main__":
    main()
