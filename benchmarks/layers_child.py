"""What one layer-benchmark process does; run by ``benchmarks/layers.py`` under either implementation.

Uses only the standard library, torch and the public layer API that both implementations share
(``use_kernel_forward_from_hub``, ``LayerRepository``, ``use_kernel_mapping``, ``kernelize``,
``Mode``), so the same file runs in this project's venv and in the upstream ``kernels`` venv.

The model: ``--blocks`` blocks, each with four marked modules: two ``LlamaRMSNorm`` and one
``HeadRMSNorm`` (a second class, as Qwen3's q/k norms are; a subclass, so marked ``RMSNorm`` too)
and one ``SiluAndMul``; 250 blocks make 1,000 marked modules. ``RMSNorm`` maps to the ``rmsnorm``
example kernel, ``SiluAndMul`` to the ``activation`` one, both on ``"cpu"`` with ``version=1``.

Commands (the last stdout line is JSON; times in seconds, ``time.perf_counter``):

- ``kernelize RMS ACT --blocks N --again K``: import torch, import kernels, build the model, then
  ``kernelize`` it once (``first``) and ``K`` more times in this process (``again``: the median
  call). Before and after each phase it prints ``MARK <name>`` and waits for a line on stdin, so
  that the parent can read the server's request log between the phases. It checks that every marked module got the hub layer's
  ``forward`` and that one of each computes what the module's own ``forward`` does.
- ``calls RMS ACT --calls N --repeats R``: kernelize one block, then time ``N`` calls of each
  way of running a kernelized module, ``R`` times, interleaved: ``module(x)``, ``module.forward(x)``
  (the method ``kernelize`` bound) and ``Layer.forward(module, x)`` (the hub layer's function
  called directly); prints the median seconds per call of each, the median of the per-round
  ratios to the direct call, and whether the bound function is the layer class's own ``forward``.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from typing import Any  # noqa: E402

HIDDEN = 64
HEAD_DIM = 16


def mark(name: str) -> None:
    """Tell the parent that phase ``name`` starts or ended, and wait until it has looked."""
    sys.stdout.write(f"MARK {name}\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        raise SystemExit(f"the parent did not answer MARK {name}")


def define(kernels: Any) -> dict[str, Any]:
    """The marked module classes and the model class (defined after ``import kernels``)."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    @kernels.use_kernel_forward_from_hub("RMSNorm")
    class LlamaRMSNorm(nn.Module):
        def __init__(self, hidden_size: int, eps: float = 1e-6) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.ones(hidden_size))
            self.variance_epsilon = eps

        def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
            # transformers' LlamaRMSNorm.forward
            input_dtype = hidden_states.dtype
            hidden_states = hidden_states.to(torch.float32)
            variance = hidden_states.pow(2).mean(-1, keepdim=True)
            hidden_states = hidden_states * torch.rsqrt(variance + self.variance_epsilon)
            return self.weight * hidden_states.to(input_dtype)

    class HeadRMSNorm(LlamaRMSNorm):
        """A class of its own (as Qwen3's q/k norms are), marked ``RMSNorm`` by inheritance."""

    @kernels.use_kernel_forward_from_hub("SiluAndMul")
    class SiluAndMul(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            d = x.shape[-1] // 2
            return F.silu(x[..., :d]) * x[..., d:]

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.input_layernorm = LlamaRMSNorm(HIDDEN)
            self.post_attention_layernorm = LlamaRMSNorm(HIDDEN)
            self.k_norm = HeadRMSNorm(HEAD_DIM)
            self.act = SiluAndMul()

    own = {LlamaRMSNorm.forward, SiluAndMul.forward}
    return {"Block": Block, "own": own, "nn": nn}


def mapping(kernels: Any, rms_repo: str, act_repo: str) -> dict[str, Any]:
    """``RMSNorm`` and ``SiluAndMul`` on ``"cpu"`` to the two hub kernels, ``version=1``."""
    return {
        "RMSNorm": {
            "cpu": kernels.LayerRepository(rms_repo, layer_name="RMSNorm", version=1),
        },
        "SiluAndMul": {
            "cpu": kernels.LayerRepository(act_repo, layer_name="SiluAndMul", version=1),
        },
    }


def marked(model: Any) -> list[Any]:
    """The modules of ``model`` marked for a hub layer."""
    return [m for m in model.modules() if hasattr(type(m), "kernel_layer_name")]


def check_kernelized(model: Any, own: set[Any]) -> int:
    """Raise unless every marked module runs a hub layer's forward that matches its own; return
    how many modules are marked."""
    import torch

    modules = marked(model)
    seen: set[type] = set()
    for m in modules:
        fn = getattr(m.__dict__.get("forward"), "__func__", None)
        if fn is None or fn in own:
            raise SystemExit(f"{type(m).__name__} was not kernelized (forward {fn!r})")
        if type(m) not in seen:
            seen.add(type(m))
            width = 2 * HIDDEN if type(m).__name__ == "SiluAndMul" else m.weight.shape[0]
            x = torch.randn(3, width)
            if not torch.allclose(m(x), type(m).forward(m, x), atol=1e-5):
                raise SystemExit(f"the hub layer of {type(m).__name__} computes something else")
    return len(modules)


def _import_both() -> tuple[Any, dict[str, float]]:
    out: dict[str, float] = {}
    t = time.perf_counter()
    import torch

    torch.set_num_threads(1)
    out["import_torch"] = time.perf_counter() - t
    t = time.perf_counter()
    import kernels

    out["import_kernels"] = time.perf_counter() - t
    return kernels, out


def cmd_kernelize(args: argparse.Namespace) -> dict[str, Any]:
    """Build the model, kernelize it once, then ``--again`` more times; mark each phase."""
    kernels, out = _import_both()
    classes = define(kernels)
    t = time.perf_counter()
    model = classes["nn"].Sequential(*(classes["Block"]() for _ in range(args.blocks)))
    out["build_model"] = time.perf_counter() - t
    with kernels.use_kernel_mapping(mapping(kernels, args.rms, args.act)):
        for phase, calls in (("first", 1), ("again", args.again)):
            # A full collection falls due early in every process, after the imports; which phase
            # it lands in would be chance (0.1-0.3 s here). Collect before each timed phase.
            gc.collect()
            mark(f"{phase}-start")
            times = []
            for _ in range(calls):
                t = time.perf_counter()
                kernels.kernelize(model, mode=kernels.Mode.INFERENCE, device="cpu")
                times.append(time.perf_counter() - t)
            out[phase] = statistics.median(times)
            out[f"{phase}_calls"] = calls
            mark(f"{phase}-end")
    out["marked"] = check_kernelized(model, classes["own"])
    return out


def cmd_calls(args: argparse.Namespace) -> dict[str, Any]:
    """Median seconds per call of each way of running a kernelized module."""
    kernels, out = _import_both()
    import torch

    classes = define(kernels)
    block = classes["Block"]()
    with kernels.use_kernel_mapping(mapping(kernels, args.rms, args.act)):
        kernels.kernelize(block, mode=kernels.Mode.INFERENCE, device="cpu")
    check_kernelized(block, classes["own"])
    cases = {
        "RMSNorm": (block.input_layernorm, torch.randn(args.tokens, HIDDEN)),
        "SiluAndMul": (block.act, torch.randn(args.tokens, 2 * HIDDEN)),
    }
    for layer, (m, x) in cases.items():
        direct = m.forward.__func__  # the hub layer's own function: Layer.forward
        ways = {
            "module_call": lambda m=m, x=x: m(x),
            "bound_forward": lambda m=m, x=x: m.forward(x),
            "direct": lambda m=m, x=x, f=direct: f(m, x),
        }
        per_call: dict[str, list[float]] = {k: [] for k in ways}
        n = args.calls
        with torch.no_grad():
            for f in ways.values():
                for _ in range(200):  # warm up
                    f()
            gc.collect()
            for r in range(args.repeats):
                # Short rounds, each way once per round in a rotating order: on a shared machine
                # the load drifts, and the ways of one round see the same load.
                names = list(ways)
                names = names[r % len(names) :] + names[: r % len(names)]
                for name in names:
                    f = ways[name]
                    t = time.perf_counter()
                    for _ in range(n):
                        f()
                    per_call[name].append((time.perf_counter() - t) / n)
        res: dict[str, Any] = {k: statistics.median(v) for k, v in per_call.items()}
        # Ratios to the direct call within each round, then their median (paired: robust to drift).
        for k in ("module_call", "bound_forward"):
            pairs = zip(per_call[k], per_call["direct"], strict=True)
            res[f"{k}_ratio"] = statistics.median(a / d for a, d in pairs)
        res["layer"] = f"{direct.__module__}.{direct.__qualname__}"
        res["input"] = list(x.shape)
        # kernelize bound the layer class's own function, no wrapper around it.
        owner = getattr(sys.modules[direct.__module__], direct.__qualname__.split(".")[0])
        res["unwrapped"] = owner.forward is direct
        out[layer] = res
    return out


def main() -> None:
    """Parse the command, run it and print its timings as JSON."""
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kernelize")
    c = sub.add_parser("calls")
    for p in (k, c):
        p.add_argument("rms")
        p.add_argument("act")
    k.add_argument("--blocks", type=int, default=250)
    k.add_argument("--again", type=int, default=9)
    c.add_argument("--calls", type=int, default=500)
    c.add_argument("--repeats", type=int, default=41)
    c.add_argument("--tokens", type=int, default=32)
    args = parser.parse_args()
    out = cmd_kernelize(args) if args.cmd == "kernelize" else cmd_calls(args)
    out["total"] = time.perf_counter() - T0
    print(json.dumps(out))


if __name__ == "__main__":
    main()
