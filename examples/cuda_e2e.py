"""The seed example on a real GPU, end to end, in one command.

Builds the ``activation`` kernel's CUDA and CPU variants with the project's build script, publishes
both to a local Hub started here, runs ``examples/basic.py`` unchanged, checks every op in fp16, bf16
and fp32 against torch, locks, downloads and ``load_kernel``s it offline, then measures with CUDA
events (a) the loaded kernel's call against the same op called straight through ``torch.ops`` and
(b) the kernel's achieved memory bandwidth on a large tensor against the card's peak.

    python examples/cuda_e2e.py            # exit 0 when every check passes
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples" / "kernels"))

from gpu_checks import check, scratch, summary  # noqa: E402  (beside this script)

REPO = "kernels-community/activation"


def peak_bandwidth() -> tuple[float | None, str]:
    """The card's theoretical memory bandwidth in bytes/s, from NVML (memory clock x bus width)."""
    try:
        import pynvml

        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        clock_hz = pynvml.nvmlDeviceGetMaxClockInfo(h, pynvml.NVML_CLOCK_MEM) * 1e6
        bus_bytes = pynvml.nvmlDeviceGetMemoryBusWidth(h) / 8
        return (
            2 * clock_hz * bus_bytes,
            f"NVML: {clock_hz / 1e6:.0f} MHz x {bus_bytes * 8:.0f} bit x 2",
        )
    except Exception as err:  # NVML missing: report the bandwidth without a ratio
        return None, f"NVML unavailable ({err})"


def time_cuda(fn, iters: int) -> float:  # type: ignore[no-untyped-def]
    """Mean milliseconds per call of ``fn`` over ``iters`` calls, timed with CUDA events."""
    for _ in range(10):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def main() -> int:
    import build as example_build
    import kernels
    from kernels.platform import detect_platform
    from kernels.server import HubServer

    assert torch.cuda.is_available(), "this script needs a CUDA GPU"
    props = torch.cuda.get_device_properties(0)
    plat = detect_platform()
    print(
        f"device: {props.name} (sm_{props.major}{props.minor}, {props.total_memory / 2**30:.0f} GiB)"
    )
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"kernels {kernels.__version__}, variant {plat.variant}"
    )
    tmp = scratch("kernels-cuda-")
    with HubServer(tmp / "hub", trusted_orgs=["kernels-community"]) as hub:
        os.environ["HF_ENDPOINT"] = hub.endpoint
        print(f"\n1. build and publish ({hub.endpoint})")
        cuda_dir = example_build.build_variant(
            example_build.EXAMPLES_DIR / "activation", backend="cuda"
        )
        cpu_dir = example_build.build_variant(
            example_build.EXAMPLES_DIR / "activation", backend="cpu"
        )
        commit = example_build.publish_kernel(
            hub.endpoint, REPO, [cuda_dir, cpu_dir], branch="v1", tags=["v0.1.0"]
        )
        meta = json.loads((cuda_dir / "metadata.json").read_text())
        print(f"  published {cuda_dir.name} and {cpu_dir.name} at {commit[:12]} (id {meta['id']})")
        check(cuda_dir.name == plat.variant, f"CUDA variant name {cuda_dir.name}")

        print("\n2. examples/basic.py, unchanged")
        out = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "basic.py")], capture_output=True, text=True
        )
        print(
            textwrap.indent(
                out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr, "  "
            )
        )
        check(
            out.returncode == 0 and "on cuda" in out.stdout,
            "basic.py ran gelu_fast on CUDA and matched",
        )

        print("\n3. every op, every dtype, against torch")
        act = kernels.get_kernel(REPO, version=1)
        check(
            Path(act.__file__).parent.name == plat.variant,
            f"get_kernel chose {Path(act.__file__).parent.name}",
        )
        refs = {
            "gelu_fast": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
            "gelu_tanh": lambda x: torch.nn.functional.gelu(x, approximate="tanh"),
            "gelu": lambda x: torch.nn.functional.gelu(x),
            "silu_and_mul": lambda x: (
                torch.nn.functional.silu(x[..., : x.shape[-1] // 2]) * x[..., x.shape[-1] // 2 :]
            ),
        }
        for dtype in (torch.float16, torch.bfloat16, torch.float32):
            for name, ref in refs.items():
                x = torch.randn(257, 1024 + 6, device="cuda", dtype=dtype) * 3
                expected = ref(x)
                y = torch.empty_like(expected)
                getattr(act, name)(y, x)
                err = (y.float() - expected.float()).abs().max().item()
                try:
                    torch.testing.assert_close(y, expected)
                    ok = True
                except AssertionError:
                    ok = False
                check(ok, f"{name:13s} {dtype!s:15s} max abs err {err:.2e}")

        print("\n4. lock, download, load_kernel offline")
        proj = tmp / "project"
        proj.mkdir()
        (proj / "pyproject.toml").write_text(
            f'[project]\nname = "p"\nversion = "0"\n\n[tool.kernels.dependencies]\n"{REPO}" = 1\n'
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        for cmd in (["lock", str(proj)], ["download", str(proj)]):
            r = subprocess.run(
                [sys.executable, "-m", "kernels", *cmd], capture_output=True, text=True, env=env
            )
            check(r.returncode == 0, f"kernels {cmd[0]}: {(r.stdout + r.stderr).strip()}")
        hub.reset_requests()
        code = (
            "import torch, kernels\n"
            f"m = kernels.load_kernel({REPO!r}, lockfile={str(proj / 'kernels.lock')!r})\n"
            "x = torch.randn(1024, device='cuda', dtype=torch.float16); y = torch.empty_like(x)\n"
            "m.gelu_fast(y, x)\n"
            "torch.testing.assert_close(y, torch.nn.functional.gelu(x, approximate='tanh'))\n"
            "print('load_kernel offline ok:', m.__name__)\n"
        )
        r = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**env, "HF_HUB_OFFLINE": "1"},
        )
        print(textwrap.indent((r.stdout + r.stderr).strip(), "  "))
        check(
            r.returncode == 0 and not hub.requests(),
            f"offline load_kernel, {len(hub.requests())} requests",
        )

        print("\n5. timings (CUDA events)")
        direct = getattr(torch.ops, meta["id"]).gelu_fast
        x = torch.randn(4096, device="cuda", dtype=torch.float16)
        y = torch.empty_like(x)
        wrapped_ms = time_cuda(lambda: act.gelu_fast(y, x), 2000)
        direct_ms = time_cuda(lambda: direct(y, x), 2000)
        wrapped_ms2 = time_cuda(lambda: act.gelu_fast(y, x), 2000)
        w = min(wrapped_ms, wrapped_ms2)
        print(
            f"  small tensor (4096 fp16): loaded {w * 1e3:.2f} us/call, torch.ops {direct_ms * 1e3:.2f} us/call, ratio {w / direct_ms:.3f}"
        )
        n = 1 << 28
        xl = torch.randn(n, device="cuda", dtype=torch.float16)
        yl = torch.empty_like(xl)
        big_w = time_cuda(lambda: act.gelu_fast(yl, xl), 50)
        big_d = time_cuda(lambda: direct(yl, xl), 50)
        print(
            f"  large tensor (2^28 fp16): loaded {big_w:.3f} ms, torch.ops {big_d:.3f} ms, ratio {big_w / big_d:.3f}"
        )
        ref_ms = time_cuda(lambda: torch.nn.functional.gelu(xl, approximate="tanh"), 50)
        moved = 2 * n * xl.element_size()
        achieved = moved / (big_w / 1e3)
        peak, how = peak_bandwidth()
        print(
            f"  achieved bandwidth {achieved / 1e9:.0f} GB/s ({moved / 2**30:.1f} GiB moved per call)"
        )
        if peak:
            print(f"  peak {peak / 1e9:.0f} GB/s ({how}); achieved/peak = {achieved / peak:.2f}")
        else:
            print(f"  peak unknown: {how}")
        print(
            f"  torch.nn.functional.gelu(tanh) on the same tensor: {ref_ms:.3f} ms; kernel/torch = {big_w / ref_ms:.2f}"
        )
        check(big_w / big_d < 1.05, "the loader adds nothing on the large tensor (<5%)")

    return summary()


if __name__ == "__main__":
    raise SystemExit(main())
