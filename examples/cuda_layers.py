"""Layers on a real GPU: transformers with a KernelConfig, kernelize by capability, torch.compile.

Builds the ``activation`` example's CUDA and CPU variants and the ``rmsnorm`` example, publishes
them to a local Hub started here, then:

1. transformers (unmodified) builds a tiny Llama on ``cuda`` and kernelizes it through a
   ``KernelConfig`` mapping ``RMSNorm`` to ``rmsnorm:RMSNorm`` and ``SiLU`` to ``activation:Silu``:
   logits match the model's own, and the CUDA ops ran (seen in the profiler);
2. ``SiluAndMul`` is kernelized with ``activation:SiluAndMul`` and checked in fp16/bf16/fp32;
3. a mapping whose CUDA capability ranges exclude the device (and one that holds it) shows the
   layer chosen by the model's device (``cuda:0`` here; ``cuda:1`` on a machine with two);
4. the kernelized model under ``torch.compile(fullgraph=True)`` (inductor) matches;
5. CUDA events: a kernelized call against calling the hub layer's forward directly (figures).

    python examples/cuda_layers.py         # exit 0 when every check passes
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "kernels"))

from gpu_checks import check, scratch, summary  # noqa: E402  (beside this script)


def cuda_ops_in(profile: Any, namespace: str) -> set[str]:
    """The names of ``namespace::*`` operators a profile saw."""
    return {e.key for e in profile.key_averages() if e.key.startswith(namespace + "::")}


def time_cuda(fns: dict[str, Any], iters: int, rounds: int = 9) -> dict[str, float]:
    """Median over ``rounds`` of the mean microseconds per call of each of ``fns``, timed with
    CUDA events; the functions take turns in every round, so clock and allocator drift hit all."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        for _ in range(20):
            fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(iters):
                fn()
            end.record()
            torch.cuda.synchronize()
            samples[name].append(start.elapsed_time(end) * 1000 / iters)
    return {name: sorted(v)[len(v) // 2] for name, v in samples.items()}


def main() -> int:
    import build as example_build
    import kernels
    import transformers
    from kernels import (
        CUDAProperties,
        Device,
        LayerRepository,
        Mode,
        kernelize,
        use_kernel_forward_from_hub,
        use_kernel_mapping,
    )
    from kernels.server import HubServer

    assert torch.cuda.is_available(), "this script needs a CUDA GPU"
    props = torch.cuda.get_device_properties(0)
    capability = props.major * 10 + props.minor
    print(
        f"device: {props.name} (sm_{props.major}{props.minor}), {torch.cuda.device_count()} GPU(s)"
    )
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, kernels "
        f"{kernels.__version__}, transformers {transformers.__version__}"
    )
    tmp = scratch("kernels-layers-")
    with HubServer(tmp / "hub", trusted_orgs=["kernels-community"]) as hub:
        os.environ["HF_ENDPOINT"] = hub.endpoint
        print(f"\n1. build and publish ({hub.endpoint})")
        act = example_build.EXAMPLES_DIR / "activation"
        variants = [example_build.build_variant(act, backend=b) for b in ("cuda", "cpu")]
        example_build.publish_kernel(
            hub.endpoint, "kernels-community/activation", variants, branch="v1"
        )
        norm_variant = example_build.build_variant(
            example_build.EXAMPLES_DIR / "rmsnorm", backend="universal"
        )
        example_build.publish_kernel(
            hub.endpoint, "kernels-community/rmsnorm", [norm_variant], branch="v1"
        )
        print(f"  published {', '.join(v.name for v in variants)} and {norm_variant.name}")

        print("\n2. transformers KernelConfig on cuda: RMSNorm -> rmsnorm, SiLU -> activation")
        config = transformers.LlamaConfig(
            vocab_size=512, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        )  # fmt: skip
        torch.manual_seed(0)
        model = transformers.LlamaForCausalLM(config).to("cuda", torch.bfloat16).eval()
        ids = torch.randint(0, 512, (2, 32), device="cuda")
        with torch.no_grad():
            ref = model(ids, use_cache=False).logits
        kernel_config = transformers.KernelConfig(
            {
                "RMSNorm": "kernels-community/rmsnorm:RMSNorm",
                "SiLU": "kernels-community/activation:Silu",
            }
        )
        model.set_use_kernels(True, kernel_config)
        swapped = [m for m in model.modules() if "forward" in m.__dict__]
        kinds = sorted({type(m).__name__ for m in swapped})
        check(
            kinds == ["LlamaRMSNorm", "SiLUActivation"],
            f"kernelized modules: {kinds} ({len(swapped)})",
        )
        silu_module = next(m for m in swapped if type(m).__name__ == "SiLUActivation")
        namespace = silu_module.forward.__func__.__module__.split(".")[0]
        with (
            torch.no_grad(),
            torch.profiler.profile(
                activities=[
                    torch.profiler.ProfilerActivity.CUDA,
                    torch.profiler.ProfilerActivity.CPU,
                ]
            ) as prof,
        ):
            out = model(ids, use_cache=False).logits
            torch.cuda.synchronize()
        seen = cuda_ops_in(prof, namespace)
        check(f"{namespace}::silu" in seen, f"the activation CUDA op ran: {sorted(seen)}")
        err = (out.float() - ref.float()).abs().max().item()
        check(
            torch.allclose(out.float(), ref.float(), atol=5e-2, rtol=5e-2),
            f"logits match (bf16, max abs err {err:.2e})",
        )

        print("\n3. SiluAndMul -> activation:SiluAndMul, every dtype")

        @use_kernel_forward_from_hub("SiluAndMul")
        class SiluAndMul(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                d = x.shape[-1] // 2
                return F.silu(x[..., :d]) * x[..., d:]

        sm = SiluAndMul()
        mapping = {
            "SiluAndMul": {
                "cuda": LayerRepository(
                    "kernels-community/activation", layer_name="SiluAndMul", version=1
                )
            }
        }
        with use_kernel_mapping(mapping):
            kernelize(sm, mode=Mode.INFERENCE, device="cuda")
        for dtype in (torch.float16, torch.bfloat16, torch.float32):
            x = torch.randn(64, 1024, device="cuda", dtype=dtype)
            expected = SiluAndMul.forward(sm, x)
            got = sm(x)
            check(
                torch.allclose(got.float(), expected.float(), atol=1e-2, rtol=1e-2),
                f"SiluAndMul {dtype!s:15} max abs err {(got.float() - expected.float()).abs().max().item():.2e}",
            )

        print(
            f"\n4. capability ranges, read from the model's device (cuda:0, capability {capability})"
        )
        model_dev = nn.Sequential(nn.Linear(16, 32), SiluAndMul()).to("cuda:0")
        excluding = {
            "SiluAndMul": {
                Device(
                    "cuda", CUDAProperties(min_capability=0, max_capability=capability - 1)
                ): mapping["SiluAndMul"]["cuda"]
            }
        }
        with use_kernel_mapping(excluding, inherit_mapping=False):
            kernelize(model_dev, mode=Mode.INFERENCE)  # device from the parameters: cuda:0
        check(
            "forward" not in model_dev[1].__dict__,
            f"range [0, {capability - 1}] excludes the device: own forward kept",
        )
        holding = {
            "SiluAndMul": {
                Device(
                    "cuda", CUDAProperties(min_capability=capability, max_capability=capability)
                ): mapping["SiluAndMul"]["cuda"]
            }
        }
        with use_kernel_mapping(holding, inherit_mapping=False):
            kernelize(model_dev, mode=Mode.INFERENCE, device="cuda:0")
        check(
            "forward" in model_dev[1].__dict__,
            f"range [{capability}, {capability}] holds it: hub layer bound",
        )
        y = model_dev(torch.randn(8, 16, device="cuda:0"))
        check(y.device == torch.device("cuda:0") and y.shape == (8, 16), f"ran on {y.device}")

        print("\n5. torch.compile(fullgraph=True), Mode.INFERENCE | Mode.TORCH_COMPILE (inductor)")
        model.set_use_kernels(False)
        with use_kernel_mapping(
            {
                "RMSNorm": {
                    "cuda": LayerRepository(
                        "kernels-community/rmsnorm", layer_name="RMSNorm", version=1
                    )
                },
                "SiLU": {
                    "cuda": LayerRepository(
                        "kernels-community/activation", layer_name="Silu", version=1
                    )
                },
            }
        ):
            kernelize(model, mode=Mode.INFERENCE | Mode.TORCH_COMPILE, device="cuda")
        compiled = torch.compile(model, fullgraph=True)
        with torch.no_grad():
            out = compiled(ids, use_cache=False).logits
        err = (out.float() - ref.float()).abs().max().item()
        check(
            torch.allclose(out.float(), ref.float(), atol=5e-2, rtol=5e-2),
            f"compiled logits match (max abs err {err:.2e})",
        )

        print("\n6. CUDA events: kernelized call vs the hub layer's forward called directly")
        # Figures, not checks: a timing is never a pass/fail condition here.
        layer_forward = sm.forward.__func__
        for shape, iters in (((4096, 4096), 200), ((8, 64), 2000)):
            x = torch.randn(*shape, device="cuda", dtype=torch.bfloat16)
            t = time_cuda(
                {
                    "direct": lambda x=x: layer_forward(sm, x),
                    "bound": lambda x=x: sm.forward(x),
                    "called": lambda x=x: sm(x),
                },
                iters,
            )
            print(
                f"  {shape[0]}x{shape[1]} bf16: direct {t['direct']:.2f} us; module.forward(x) "
                f"{t['bound']:.2f} us (ratio {t['bound'] / t['direct']:.3f}); module(x) "
                f"{t['called']:.2f} us (ratio {t['called'] / t['direct']:.3f}, nn.Module.__call__ "
                "included)"
            )

    return summary()


if __name__ == "__main__":
    raise SystemExit(main())
