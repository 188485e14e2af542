#!/usr/bin/env python3
"""Scale benchmark: a kernel of 1,400 files, against upstream ``kernels`` 0.17.2, on one local Hub.

Run it with ``bash benchmarks/scale.sh`` (it makes both environments first). One
:class:`kernels.server.HubServer` in this process serves one repo whose loadable variant (the CPU
build of ``examples/kernels/activation``) carries ``--files`` files in all; every run starts fresh
processes with an empty ``HF_HUB_CACHE`` (``benchmarks/child.py get-kernel``), and requests are
counted at the server. Scenarios, each for both implementations:

- ``latency``: one cold load at 50 ms of added latency per request;
- ``limit-1``: one cold load while the server allows 20 requests per second (429 with
  ``Retry-After: 1`` beyond, as the Hub does);
- ``limit-8``: eight processes on one cache, released together after ``import torch``, under the
  same limit.

Upstream's runs are stopped after ``--upstream-cap`` times ours (it can take very long under a
limit); a stopped run shows as "> N s". The report goes to stdout and into ``docs/scale.md``
(between its ``scale-results`` markers).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import run as bench  # benchmarks/run.py: the upstream venv, the child, the measurements

ROOT = bench.ROOT
PAGE = ROOT / "docs" / "scale.md"
BEGIN, END = "<!-- scale-results:begin -->", "<!-- scale-results:end -->"
REPO = "kernels-bench/many-files"
RATE = 20.0
LATENCY_MS = 50.0
PROCS = 8


def seed(endpoint: str, work: Path, files: int) -> tuple[str, int, int]:
    """Publish the activation variant padded to ``files`` files; (variant, files, bytes)."""
    import build as example_build  # examples/kernels/build.py

    base, _ = bench.base_variant(work / "stage")
    have = sum(1 for p in base.rglob("*") if p.is_file())
    extra = base / "many"
    extra.mkdir()
    for i in range(max(0, files - have)):
        # Small Python files, as a big kernel's generated sources are; never imported.
        (extra / f"part_{i:04d}.py").write_text(f'"""Part {i}."""\n\nPART = {i}\n' * 8)
    example_build.publish_kernel(endpoint, REPO, [base], branch="v1", token="hf_bench_dummy")
    listed = [p for p in base.rglob("*") if p.is_file()]
    return base.name, len(listed), sum(p.stat().st_size for p in listed)


SCENARIOS = [
    ("latency", f"cold load at {LATENCY_MS:g} ms latency, 1 process"),
    ("limit-1", f"cold load under {RATE:g} req/s, 1 process"),
    ("limit-8", f"cold load under {RATE:g} req/s, {PROCS} processes on one cache"),
]


def run_one(
    b: bench.Bench, hub: object, key: str, impl: bench.Impl, timeout: float | None
) -> tuple[bench.Measure, Counter[int]]:
    """One run of a scenario; the measure and the statuses the server answered."""
    hub.latency_ms = LATENCY_MS if key == "latency" else 0.0  # type: ignore[attr-defined]
    hub.rate_limit = None if key == "latency" else RATE  # type: ignore[attr-defined]
    cmd = [str(impl.python), str(bench.CHILD), "get-kernel", REPO, "--version", "1"]
    procs = PROCS if key == "limit-8" else 1
    m = b.once(
        bench.Measure(),
        impl,
        cmd,
        cache=b.fresh_cache(),
        procs=procs,
        barrier=procs > 1,
        timeout=timeout,
    )
    statuses = Counter(r.status for r in hub.requests())  # type: ignore[attr-defined]
    hub.rate_limit = None  # type: ignore[attr-defined]
    return m, statuses


def rss_text(m: bench.Measure) -> str:
    """The largest peak resident memory of the run's processes, in MB (``-`` without one)."""
    values = [c["maxrss_mb"] for c in m.child if "maxrss_mb" in c]
    return f"{max(values):.0f}" if values else "-"


def seconds_text(m: bench.Measure, cap: float | None) -> str:
    """Median wall seconds, "> N s" for a stopped run, or "fails"."""
    if m.ok:
        return f"{m.wall:.1f}"
    if m.error and m.error.startswith("did not finish") and cap is not None:
        return f"> {cap:.0f}"
    return "fails"


def main(argv: list[str] | None = None) -> int:
    """Seed the server, run each scenario for both implementations, print and save the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1400, help="files in the variant (1400)")
    parser.add_argument(
        "--upstream-cap",
        type=float,
        default=4.0,
        help="stop upstream's run after this many times ours (default 4)",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/scale.md")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    ours, upstream = bench.implementations()
    sys.path.insert(0, str(bench.EXAMPLES))
    from kernels.server import HubServer

    work = Path(tempfile.mkdtemp(prefix="kernels-scale-"))
    hub = HubServer(work / "hub", trusted_orgs=[REPO.split("/")[0]]).start()  # both check
    rows: list[str] = []
    try:
        print(f"seeding {REPO} ({args.files} files) on {hub.endpoint} ...", file=sys.stderr)
        variant, files, size = seed(hub.endpoint, work, args.files)
        b = bench.Bench(work, hub, 1, 1)
        for key, title in SCENARIOS:
            mo, so = run_one(b, hub, key, ours, None)
            cap = args.upstream_cap * mo.wall if mo.ok else None
            mu, su = run_one(b, hub, key, upstream, cap)
            for name, m, st in (("ours", mo, so), ("upstream", mu, su)):
                state = f"{m.wall:.1f} s" if m.ok else m.error
                print(f"  {title} | {name}: {state}, answers {dict(st)}", file=sys.stderr)
            ratio = f"{mu.wall / mo.wall:.1f}x" if mo.ok and mu.ok else "-"
            if mo.ok and not mu.ok and cap is not None and str(mu.error).startswith("did not"):
                ratio = f"> {cap / mo.wall:.1f}x"
            served_o, served_u = sum(so.values()) - so[429], sum(su.values()) - su[429]
            rows.append(
                f"| {title} | {served_o} + {so[429]} | {served_u} + {su[429]} "
                f"| {seconds_text(mo, None)} | {seconds_text(mu, cap)} | {ratio} "
                f"| {rss_text(mo)} / {rss_text(mu)} |"
            )
            if key != "latency" and mo.ok and mo.child:
                # In-process load time (after the interpreter and torch started), slowest process.
                load = max(c["load"] for c in mo.child)
                floor = served_o / RATE
                rows[-1] += (
                    f" {load:.1f} s in-process, {load / floor:.2f}x the floor ({floor:.1f} s) |"
                )
            else:
                rows[-1] += " |"
            if not mu.ok:
                rows.append(f"| | | upstream: {bench.cell(str(mu.error))} | | | | | |")
    finally:
        hub.stop()
        shutil.rmtree(work, ignore_errors=True)
    block = "\n".join(
        [
            "Generated by `bash benchmarks/scale.sh`; do not edit by hand.",
            "",
            *bench.machine_facts(upstream),
            f"- seeded: `{REPO}`, variant `{variant}` of F = {files} files, "
            f"{size / 1e6:.1f} MB; limit {RATE:g} requests/s (bursts of {RATE:g}), "
            f"429 with `Retry-After: 1` beyond",
            f"- one run per cell; upstream stopped after {args.upstream_cap:g}x ours; whole "
            f"benchmark {(time.perf_counter() - started) / 60:.1f} min",
            "",
            "Requests are those answered normally + those refused with 429, counted at the "
            "server; times are wall seconds around the process(es) (for 8 processes, from their "
            "release after `import torch` until the last exits); ratio = upstream / ours; peak "
            "RSS is the largest of the processes' (torch included). The floor is requests "
            "answered / allowed rate.",
            "",
            "| scenario | ours requests | upstream requests | ours s | upstream s | ratio "
            "| peak RSS MB, ours / upstream | ours vs the floor |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
            *rows,
            "",
        ]
    )
    print(block)
    if not args.no_docs:
        bench.save_docs(block, PAGE, BEGIN, END)
        print(f"saved to {PAGE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
