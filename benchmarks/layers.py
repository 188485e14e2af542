#!/usr/bin/env python3
"""Benchmark ``kernelize`` and kernelized calls: this project against upstream ``kernels`` 0.17.2.

Run it with ``bash benchmarks/layers.sh`` (it makes both environments first). It reuses the
harness of ``benchmarks/run.py``: one local Hub (:class:`kernels.server.HubServer`) in this
process serves the same seeded repositories to both implementations, every run is a fresh
process with its own ``HF_HUB_CACHE``, and requests are counted at the server.

Seeded: ``kernels-bench/rmsnorm`` (the ``torch-universal`` build of ``examples/kernels/rmsnorm``)
and ``kernels-bench/activation`` (the CPU build of ``examples/kernels/activation`` plus 27 copies
under other platforms' variant names, as ``run.py`` seeds), each on branch ``v1`` (tag ``v0.1.0``).

Two measurements, both implementations in the same run (what each process does: see
``benchmarks/layers_child.py``):

- ``kernelize`` of a model with 1,000 marked modules, at 0 and 50 ms of added latency per
  request: cold cache, then again in the same process; warm cache in a new process, then again.
  Requests are counted per call (the child pauses between calls while the log is read).
- a kernelized module's call against calling the hub layer's ``forward`` directly.

The tables go to stdout and into ``docs/benchmarks.md`` (between the ``layers`` markers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import run as harness  # benchmarks/run.py

CHILD = harness.BENCH / "layers_child.py"
BEGIN, END = "<!-- layers:begin -->", "<!-- layers:end -->"
RMS_REPO = f"{harness.ORG}/rmsnorm"
ACT_REPO = f"{harness.ORG}/activation"
BLOCKS = 250  # x 4 marked modules each
LATENCIES = (0.0, 50.0)
SETTLE_S = 0.05
"""Pause before reading the request log at a phase mark: the server logs a request just after it
has sent the answer the client may already have read."""

CALLS, CALL_REPEATS, TOKENS = 500, 41, 32

AGAIN = 9
"""``kernelize`` calls after the first in each process (their median is the "again" time)."""
PHASES = ("first", "again")
RUNS: list[tuple[str, dict[str, str]]] = [
    ("cold", {}),
    ("warm", {}),
    ("stale", {"KERNELS_REF_MAX_AGE": "0"}),
]
"""The processes of one repetition, in order, on one cache (empty before ``cold``), and their
extra environment. Upstream does not read ``KERNELS_REF_MAX_AGE``."""
SCENARIOS = [
    ("cold", "first", "`kernelize`, empty cache, new process"),
    ("cold", "again", f"`kernelize` again, same process (median of {AGAIN})"),
    ("warm", "first", "`kernelize`, warm cache, new process"),
    ("warm", "again", "`kernelize` again, same process"),
    ("stale", "first", "`kernelize`, warm cache, new process, `KERNELS_REF_MAX_AGE=0`"),
    ("stale", "again", "`kernelize` again, same process, `KERNELS_REF_MAX_AGE=0`"),
]


@dataclass
class Phased:
    """Repeated runs of one of ``RUNS`` by one implementation at one latency."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})
    """In-process seconds of a ``kernelize`` call (median of the phase's calls), per run."""
    requests: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PHASES})
    """Requests per ``kernelize`` call of the phase, per run."""
    kinds: dict[str, Counter[str]] = field(default_factory=dict)
    """Requests of the last run's phases, by kind (all calls of the phase)."""
    calls: dict[str, int] = field(default_factory=dict)
    """``kernelize`` calls per phase."""
    import_kernels: list[float] = field(default_factory=list)
    """In-process seconds of ``import kernels``, per run."""
    others: list[int] = field(default_factory=list)
    """Requests outside the phases (imports, building the model, the checks), per run."""
    marked: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every run succeeded."""
        return self.error is None and bool(self.seconds["first"])

    def median(self, phase: str) -> float:
        """Median seconds of one call."""
        return statistics.median(self.seconds[phase])

    def requests_text(self, phase: str) -> str:
        """Requests per call: ``N``, or ``lo-hi`` when runs differed."""
        r = self.requests[phase]
        if not r:
            return "-"
        lo, hi = number(min(r)), number(max(r))
        return lo if lo == hi else f"{lo}-{hi}"

    def kinds_text(self, phase: str) -> str:
        """``GET file 7, GET tree 1`` per call of the phase (last run)."""
        n = self.calls.get(phase, 1)
        kinds = self.kinds.get(phase, Counter())
        return ", ".join(f"{k} {number(c / n)}" for k, c in kinds.most_common()) or "none"


def number(x: float) -> str:
    """``3`` for 3.0, ``2.4`` otherwise."""
    return str(int(x)) if x == int(x) else f"{x:.1f}"


def run_phased(
    b: harness.Bench, impl: harness.Impl, cache: Path, extra: dict[str, str], m: Phased
) -> None:
    """One ``kernelize`` child in ``cache``; its calls' times and requests go into ``m``."""
    if m.error is not None:
        return
    cmd = [str(impl.python), str(CHILD), "kernelize", RMS_REPO, ACT_REPO]
    cmd += ["--blocks", str(BLOCKS), "--again", str(AGAIN)]
    hub = b.hub
    with tempfile.TemporaryFile(mode="w+", dir=b.work) as err:
        hub.reset_requests()  # type: ignore[attr-defined]
        p = subprocess.Popen(
            cmd,
            env=b.env(impl, cache, **extra),
            cwd=b.work,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        assert p.stdin is not None and p.stdout is not None
        per_phase: dict[str, list[object]] = {}
        other = 0
        last = ""
        for line in p.stdout:
            last = line
            if not line.startswith("MARK "):
                continue
            time.sleep(SETTLE_S)
            records = hub.requests()  # type: ignore[attr-defined]
            hub.reset_requests()  # type: ignore[attr-defined]
            name = line.split()[1]
            if name.endswith("-end"):
                per_phase[name.removesuffix("-end")] = records
            else:
                other += len(records)
            p.stdin.write("go\n")
            p.stdin.flush()
        p.wait()
        other += len(hub.requests())  # type: ignore[attr-defined]
        err.seek(0)
        stderr = err.read()
    if p.returncode != 0:
        m.error = harness.failure(p.returncode, stderr)
        return
    out = json.loads(last)
    for phase in PHASES:
        records = per_phase[phase]
        calls = int(out[f"{phase}_calls"])
        m.calls[phase] = calls
        m.seconds[phase].append(float(out[phase]))
        m.requests[phase].append(len(records) / calls)
        m.kinds[phase] = Counter(
            harness.request_kind(r.method, r.path)  # type: ignore[attr-defined]
            for r in records
        )
    m.import_kernels.append(float(out["import_kernels"]))
    m.others.append(other)
    m.marked = int(out["marked"])


def seed_layers(endpoint: str, work: Path) -> dict[str, object]:
    """Publish the two kernels the mapping names; return facts for the report."""
    import build as example_build  # examples/kernels/build.py

    stage = work / "stage"
    built = example_build.build_variant(harness.EXAMPLES / "rmsnorm", backend="universal")
    rms = stage / "rmsnorm" / built.name
    harness.upstream_readable(built, rms)
    act = harness.activation_variants(stage / "activation")
    for repo_id, dirs in ((RMS_REPO, [rms]), (ACT_REPO, act)):
        example_build.publish_kernel(
            endpoint, repo_id, dirs, branch="v1", tags=["v0.1.0"], token="hf_bench_dummy"
        )
    return {
        "rms_variant": rms.name,
        "rms_files": len(example_build.variant_files(rms)),
        "act_variant": act[0].name,
        "act_variants": len(act),
        "act_files": len(example_build.variant_files(act[0])),
    }


def run_calls(b: harness.Bench, impl: harness.Impl, cache: Path) -> dict[str, object]:
    """The call timings of one implementation (one process, warm cache)."""
    cmd = [str(impl.python), str(CHILD), "calls", RMS_REPO, ACT_REPO]
    cmd += ["--calls", str(CALLS), "--repeats", str(CALL_REPEATS), "--tokens", str(TOKENS)]
    p = subprocess.run(cmd, env=b.env(impl, cache), cwd=b.work, capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": harness.failure(p.returncode, p.stderr)}
    result: dict[str, object] = json.loads(p.stdout.strip().splitlines()[-1])
    return result


# ---- report ------------------------------------------------------------------------------------------


def ms_text(m: Phased, phase: str) -> str:
    """Median milliseconds of one call, or ``fails``."""
    return f"{m.median(phase) * 1000:.1f}" if m.ok else "fails"


def kernelize_table(res: dict[tuple[str, str], Phased]) -> list[str]:
    """Time and requests of each ``kernelize`` call, both implementations, one latency."""
    rows = [
        "| scenario | ours requests | upstream requests | ours ms | upstream ms | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, phase, title in SCENARIOS:
        o, u = res[key, "ours"], res[key, "upstream"]
        r = (
            f"{u.median(phase) / o.median(phase):.1f}x"
            if o.ok and u.ok and o.median(phase) > 0
            else "-"
        )
        rows.append(
            f"| {title} | {o.requests_text(phase)} | {u.requests_text(phase)} "
            f"| {ms_text(o, phase)} | {ms_text(u, phase)} | {r} |"
        )
    return rows


def with_import_table(res: dict[tuple[str, str], Phased]) -> list[str]:
    """The first call of each new process with ``import kernels`` counted in.

    0.17.2 imports ``huggingface_hub``'s API (and more) at ``import kernels``; ours defers that to
    the first call that needs the Hub, which is then inside ``kernelize``.
    """
    rows = [
        "| scenario | ours ms | upstream ms | ratio |",
        "|---|---:|---:|---:|",
    ]
    for key, phase, title in SCENARIOS:
        if phase != "first":
            continue
        o, u = res[key, "ours"], res[key, "upstream"]
        cells = []
        totals = []
        for m in (o, u):
            if m.ok:
                both = [a + b for a, b in zip(m.import_kernels, m.seconds["first"], strict=True)]
                totals.append(statistics.median(both))
                cells.append(f"{totals[-1] * 1000:.1f}")
            else:
                cells.append("fails")
        r = f"{totals[1] / totals[0]:.1f}x" if len(totals) == 2 and totals[0] > 0 else "-"
        rows.append(f"| {title} | {cells[0]} | {cells[1]} | {r} |")
    return rows


def kinds_table(res: dict[tuple[str, str], Phased]) -> list[str]:
    """What each call's requests were (last run)."""
    rows = ["| scenario | ours | upstream |", "|---|---|---|"]
    for key, phase, title in SCENARIOS:
        cells = []
        for impl in ("ours", "upstream"):
            m = res[key, impl]
            cells.append(m.kinds_text(phase) if m.ok else harness.cell(f"fails: {m.error}"))
        rows.append(f"| {title} | {cells[0]} | {cells[1]} |")
    return rows


WAYS = [
    ("module_call", "`module(x)`"),
    ("bound_forward", "`module.forward(x)`"),
    ("direct", "`Layer.forward(module, x)`"),
]


def calls_table(calls: dict[str, dict[str, object]]) -> list[str]:
    """Microseconds per call of each way of running a kernelized module, and the ratios."""
    rows = [
        "| layer | input | impl | "
        + " | ".join(f"{title} µs" for _, title in WAYS)
        + " | `module(x)` / direct | `module.forward(x)` / direct | bound: `Layer.forward` itself |",
        "|---|---|---|" + "---:|" * (len(WAYS) + 2) + "---|",
    ]
    for layer in ("RMSNorm", "SiluAndMul"):
        for impl in ("ours", "upstream"):
            c = calls[impl]
            if "error" in c:
                rows.append(f"| {layer} | - | {impl} | {harness.cell(str(c['error']))} |")
                continue
            t = c[layer]
            assert isinstance(t, dict)
            cells = [f"`{t['input']}`", impl, *(f"{float(t[k]) * 1e6:.2f}" for k, _ in WAYS)]
            cells += [
                f"{float(t['module_call_ratio']):.2f}",
                f"{float(t['bound_forward_ratio']):.2f}",
                "yes" if t["unwrapped"] else "**no** (a wrapper)",
            ]
            rows.append(f"| {layer} | " + " | ".join(cells) + " |")
    return rows


def report(
    facts: list[str],
    seeded: dict[str, object],
    all_res: dict[float, dict[tuple[str, str], Phased]],
    calls: dict[str, dict[str, object]],
    repeat: int,
    elapsed: float,
) -> str:
    """The Markdown block printed and saved to docs/benchmarks.md."""
    marked = {
        impl: {m.marked for res in all_res.values() for (_, i), m in res.items() if i == impl}
        for impl in ("ours", "upstream")
    }
    others = {
        impl: sum(
            sum(m.others) for res in all_res.values() for (_, i), m in res.items() if i == impl
        )
        for impl in ("ours", "upstream")
    }
    lines = [
        "Generated by `bash benchmarks/layers.sh`; do not edit by hand.",
        "",
        *facts,
        f"- model: {BLOCKS} blocks x 4 marked modules = {BLOCKS * 4:,} (`LlamaRMSNorm` x "
        f"{BLOCKS * 2}, `HeadRMSNorm` x {BLOCKS}, `SiluAndMul` x {BLOCKS}); modules kernelized "
        f"and checked per run: ours {sorted(marked['ours'])}, upstream {sorted(marked['upstream'])}",
        f"- seeded: `{RMS_REPO}` (1 variant, `{seeded['rms_variant']}`, {seeded['rms_files']} "
        f"files), `{ACT_REPO}` ({seeded['act_variants']} variants; loaded here: "
        f'`{seeded["act_variant"]}`, {seeded["act_files"]} files); mapping on `"cpu"`, '
        "`version=1`, `Mode.INFERENCE`",
        f"- runs per timing: {repeat} (median); requests outside the `kernelize` calls (imports, "
        f"building the model, the checks), all runs: ours {others['ours']}, upstream "
        f"{others['upstream']}; whole benchmark {elapsed / 60:.1f} min",
        "",
        "Times are in-process (`time.perf_counter` around each `kernelize` call; interpreter "
        "start, `import torch` and `import kernels` excluded), median; ratio = upstream / ours "
        "(above 1: ours is faster). Requests are counted at the server, per `kernelize` call.",
    ]
    for latency, res in all_res.items():
        lines += ["", f"#### `kernelize`, {latency:g} ms added latency per request", ""]
        lines += kernelize_table(res)
        lines += ["", "The first call of each process with `import kernels` counted in:", ""]
        lines += with_import_table(res)
        lines += ["", "Requests per call (last run), by kind:", ""]
        lines += kinds_table(res)
    lines += [
        "",
        "#### A kernelized call against the layer's `forward`",
        "",
        f"Microseconds per call, median of {CALL_REPEATS} rounds of {CALLS} calls of each way, "
        "interleaved; float32 input of the shape shown, `torch.no_grad()`, "
        "`torch.set_num_threads(1)`. Ratios: median over rounds of each way "
        "against the direct call of the same round.",
        "",
    ]
    lines += calls_table(calls)
    return "\n".join(lines) + "\n"


# ---- main ----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Seed a local Hub, run both measurements for both implementations, print and save the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median; default 3)")
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")

    started = time.perf_counter()
    ours, upstream = harness.implementations()
    impls = [ours, upstream]
    os.environ.setdefault("KERNELS_BUILD_CACHE", str(harness.ROOT / ".cache" / "bench" / "builds"))
    sys.path.insert(0, str(harness.EXAMPLES))
    from kernels.server import HubServer

    def log(msg: str) -> None:
        print(msg, file=sys.stderr)

    work = Path(tempfile.mkdtemp(prefix="kernels-bench-layers-"))
    hub = HubServer(work / "hub", trusted_orgs=[harness.ORG]).start()  # both libraries check
    try:
        log(f"seeding {RMS_REPO} and {ACT_REPO} on {hub.endpoint} ...")
        seeded = seed_layers(hub.endpoint, work)
        b = harness.Bench(work, hub, args.repeat, 1)
        all_res: dict[float, dict[tuple[str, str], Phased]] = {}
        warm: dict[str, Path] = {}
        for n, latency in enumerate(LATENCIES):
            hub.latency_ms = latency
            res = {(key, impl.key): Phased() for key, _ in RUNS for impl in impls}
            for r in range(args.repeat):
                # Alternate which implementation goes first: the load of a shared machine drifts.
                for impl in impls if (r + n) % 2 == 0 else impls[::-1]:
                    cache = b.fresh_cache()
                    for key, extra in RUNS:
                        run_phased(b, impl, cache, extra, res[key, impl.key])
                    warm[impl.key] = cache
            for (key, impl_key), m in res.items():
                state = (
                    ", ".join(
                        f"{p} {m.median(p) * 1000:.0f} ms / {m.requests_text(p)} requests"
                        for p in PHASES
                    )
                    if m.ok
                    else m.error
                )
                log(f"  {latency:g} ms | {key} | {impl_key}: {state}")
            all_res[latency] = res
        hub.latency_ms = 0.0
        calls = {}
        for impl in impls:
            calls[impl.key] = run_calls(b, impl, warm[impl.key])
            log(f"  calls | {impl.key}: {calls[impl.key]}")
        block = report(
            harness.machine_facts(upstream),
            seeded,
            all_res,
            calls,
            args.repeat,
            time.perf_counter() - started,
        )
    finally:
        hub.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    harness.publish(block, save=not args.no_docs, begin=BEGIN, end=END)
    return 0


if __name__ == "__main__":
    sys.exit(main())
