"""``kernels benchmark REPO``: run a kernel repository's ``benchmarks/benchmark*.py`` scripts.

The scripts of the requested revision are fetched (only ``benchmarks/``: one listing, one GET per
file, verified like kernel files), the kernel itself is loaded with :func:`kernels.get_kernel` (or
:func:`kernels.get_local_kernel` for a local folder), and every workload of every
:class:`~kernels.benchmark.Benchmark` subclass is verified and timed (see that class for the
protocol): ``warmup`` untimed calls, then ``iterations`` timed ones, each followed by a device
synchronisation. The results print as a table, and as JSON (``--json``, ``--output``) in 0.17.2's
payload shape; ``--visual`` draws them as a PNG chart (:mod:`kernels.pngchart`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from kernels.benchmark import Benchmark
from kernels.errors import KernelsError

# torch device of each backend whose device name differs from the backend's.
_DEVICES = {"rocm": "cuda", "metal": "mps", "npu": "npu"}


@dataclass(frozen=True)
class Timing:
    """The statistics of one workload, in milliseconds per call."""

    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    q1_ms: float
    q3_ms: float
    iqr_ms: float
    outliers: int
    iterations: int
    verified: bool | None = None
    """``None``: the benchmark has no ``verify_<workload>``."""
    ref_mean_ms: float | None = None
    """The mean time of the reference (``verify_<workload>``), timed like the kernel."""

    @staticmethod
    def of(times_ms: list[float], verified: bool | None, ref_ms: float | None) -> Timing:
        """Summarise the per-call times of one workload."""
        ordered = sorted(times_ms)
        if len(ordered) > 1:
            q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        else:
            q1 = q3 = ordered[0]
        iqr = q3 - q1
        outliers = sum(1 for t in ordered if t < q1 - 1.5 * iqr or t > q3 + 1.5 * iqr)

        def r(v: float) -> float:
            return round(v, 4)

        return Timing(
            mean_ms=r(statistics.fmean(ordered)),
            std_ms=r(statistics.pstdev(ordered)),
            min_ms=r(ordered[0]),
            max_ms=r(ordered[-1]),
            q1_ms=r(q1),
            q3_ms=r(q3),
            iqr_ms=r(iqr),
            outliers=outliers,
            iterations=len(ordered),
            verified=verified,
            ref_mean_ms=None if ref_ms is None else r(ref_ms),
        )


@dataclass
class BenchmarkRun:
    """Everything one ``kernels benchmark`` run measured."""

    repo_id: str
    revision: str
    commit: str | None
    scripts: list[str]
    """The scripts' file names."""
    scripts_sha: str
    """sha256 over the scripts' bytes, in name order (which benchmark code produced this)."""
    machine: dict[str, str]
    results: dict[str, Timing] = field(default_factory=dict)
    """``<Class>.<workload>`` -> timing."""

    def payload(self) -> dict[str, Any]:
        """The results as 0.17.2's ``kernels benchmark`` JSON (camelCase keys)."""
        results = []
        for name, t in sorted(self.results.items()):
            entry: dict[str, Any] = {
                "workload": name,
                "timingResults": {
                    k: getattr(t, k)
                    for k in ("mean_ms", "std_ms", "min_ms", "max_ms", "q1_ms", "q3_ms")
                }
                | {"iqr_ms": t.iqr_ms, "outliers": t.outliers, "iterations": t.iterations},
            }
            if t.verified is not None:
                entry["verified"] = t.verified
            if t.ref_mean_ms is not None:
                entry["refMeanMs"] = t.ref_mean_ms
            results.append(entry)
        return {
            "repoId": self.repo_id,
            "revision": self.revision,
            "results": results,
            "machineInfo": self.machine,
            "kernelCommitSha": self.commit or "local",
            "benchmarkScriptPath": "benchmarks",
            "benchmarkScriptSha": self.scripts_sha,
        }


def machine_info(backend: str) -> dict[str, str]:
    """The GPU (or ``N/A``), backend, PyTorch version, OS and CPU of this machine."""
    import torch

    gpu = "N/A"
    if backend in ("cuda", "rocm") and torch.cuda.is_available():
        gpu = str(torch.cuda.get_device_name(0))
    elif backend == "xpu" and hasattr(torch, "xpu") and torch.xpu.is_available():
        gpu = str(torch.xpu.get_device_name(0))
    return {
        "gpu": gpu,
        "backend": backend,
        "pytorchVersion": str(torch.__version__),
        "os": f"{platform.system()} {platform.release()}",
        "cpu": platform.processor() or platform.machine() or "unknown",
    }


def _synchronize(torch: Any, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
    elif device == "xpu":
        torch.xpu.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def benchmark_classes(script: Path, cwd: Path) -> list[type[Benchmark]]:
    """The :class:`Benchmark` subclasses ``script`` defines (imported with ``cwd`` as the cwd)."""
    name = f"kernels_benchmark_{hashlib.sha256(str(script).encode()).hexdigest()[:10]}"
    spec = importlib.util.spec_from_file_location(name, script)
    if spec is None or spec.loader is None:
        raise KernelsError(f"cannot import the benchmark script {script}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    old = os.getcwd()
    os.chdir(cwd)
    try:
        spec.loader.exec_module(module)
    except Exception as err:
        raise KernelsError(f"{script.name} failed to import: {type(err).__name__}: {err}") from err
    finally:
        os.chdir(old)
    return [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, Benchmark)
        and obj is not Benchmark
        and obj.__module__ == name
    ]


def run_class(
    cls: type[Benchmark], kernel: ModuleType, device: str, *, iterations: int, warmup: int
) -> dict[str, Timing]:
    """Verify and time every ``benchmark_<workload>`` of ``cls``; workload -> timing."""
    import torch

    workloads = sorted(n[len("benchmark_") :] for n in dir(cls) if n.startswith("benchmark_"))
    if not workloads:
        raise KernelsError(f"{cls.__name__} has no benchmark_* methods")
    out: dict[str, Timing] = {}
    for workload in workloads:
        bench = cls()
        bench.kernel, bench.device = kernel, device
        if bench.seed is not None:
            torch.manual_seed(bench.seed)
            random.seed(bench.seed)
        getattr(bench, f"setup_{workload}", bench.setup)()
        run: Callable[[], Any] = getattr(bench, f"benchmark_{workload}")
        verify: Callable[[], Any] | None = getattr(bench, f"verify_{workload}", None)
        verified: bool | None = None
        ref_ms: float | None = None
        if verify is not None:
            run()
            _synchronize(torch, device)
            expected = verify()
            verified = bool(torch.allclose(bench.out, expected, atol=1e-2))
            if not verified:
                raise KernelsError(
                    f"{cls.__name__}.{workload}: the kernel's output does not match "
                    f"verify_{workload}() (atol 1e-2)"
                )
            ref_ms = statistics.fmean(_times(verify, torch, device, iterations, warmup))
        out[workload] = Timing.of(_times(run, torch, device, iterations, warmup), verified, ref_ms)
    return out


def _times(
    fn: Callable[[], Any], torch: Any, device: str, iterations: int, warmup: int
) -> list[float]:
    """Milliseconds of each of ``iterations`` calls of ``fn`` (synchronised), after ``warmup``."""
    for _ in range(warmup):
        fn()
    _synchronize(torch, device)
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        fn()
        _synchronize(torch, device)
        times.append((time.perf_counter() - start) * 1000)
    return times


def _parse_target(target: str, revision: str | None, version: int | None) -> tuple[str, str]:
    """(repo id, revision) from ``REPO``, ``REPO@vN`` or ``REPO@REV`` and the options."""
    repo_id, at, rev = target.partition("@")
    if at and (revision is not None or version is not None):
        raise KernelsError(f"{target}: give the revision either after '@' or with an option")
    if at:
        return repo_id, rev
    if version is not None:
        return repo_id, f"v{version}"
    return repo_id, revision or "main"


def fetch_benchmarks(repo_id: str, revision: str, dest: Path) -> tuple[str, list[Path]]:
    """Put the ``benchmarks/`` files of ``repo_id`` at ``revision`` under ``dest``; return the commit
    and the ``benchmark*.py`` scripts."""
    from kernels.cache import RepoCache
    from kernels.fetch import fetch_file
    from kernels.fsutil import safe_relpath
    from kernels.hub import list_files
    from kernels.resolve import make_request, resolve

    resolved = resolve(make_request(repo_id, revision=revision), fresh=True)
    files, repo_type = list_files(repo_id, resolved.commit, path="benchmarks")
    rc = RepoCache(repo_id, repo_type)
    for f in files:
        blob = fetch_file(rc, resolved.commit, f)
        target = dest / safe_relpath(f.path, what=f"the benchmarks of {repo_id}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blob.read_bytes())
    return resolved.commit, sorted((dest / "benchmarks").glob("benchmark*.py"))


def run_benchmarks(
    target: str,
    *,
    revision: str | None = None,
    version: int | None = None,
    iterations: int = 100,
    warmup: int = 10,
    trust_remote_code: bool = False,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
) -> BenchmarkRun:
    """Run the benchmarks of a kernel repo (``org/name[@rev]``) or a local kernel folder."""
    from kernels.loader import get_kernel, get_local_kernel
    from kernels.platform import detect_platform

    if iterations < 1 or warmup < 0:
        raise KernelsError("--iterations must be >= 1 and --warmup >= 0")
    backend = detect_platform().backend
    device = _DEVICES.get(backend, backend)
    local = Path(target)
    with tempfile.TemporaryDirectory(prefix="kernels-benchmark-") as tmp:
        if local.is_dir():
            if revision is not None or version is not None:
                raise KernelsError("--revision and --version do not apply to a local folder")
            repo_id, rev, commit, cwd = str(local), "local", None, local.resolve()
            scripts = sorted((cwd / "benchmarks").glob("benchmark*.py"))
            kernel = get_local_kernel(local, trust_remote_code=trust_remote_code)
        else:
            repo_id, rev = _parse_target(target, revision, version)
            log(f"fetching the benchmarks of {repo_id}@{rev} ...")
            commit, scripts = fetch_benchmarks(repo_id, rev, Path(tmp))
            cwd = Path(tmp)
            kernel = get_kernel(repo_id, revision=commit, trust_remote_code=trust_remote_code)
        if not scripts:
            raise KernelsError(f"{repo_id}@{rev} has no benchmarks/benchmark*.py scripts")
        digest = hashlib.sha256(b"".join(p.read_bytes() for p in scripts)).hexdigest()
        names = [p.name for p in scripts]
        run = BenchmarkRun(repo_id, rev, commit, names, digest, machine_info(backend))
        for script in scripts:
            classes = benchmark_classes(script, cwd)
            if not classes:
                raise KernelsError(f"{script.name} defines no Benchmark subclass")
            for cls in classes:
                log(f"running {script.name}: {cls.__name__} on {device}")
                timings = run_class(cls, kernel, device, iterations=iterations, warmup=warmup)
                run.results.update({f"{cls.__name__}.{w}": t for w, t in timings.items()})
    return run


def table(run: BenchmarkRun) -> str:
    """The results as an aligned text table."""
    header = ["workload", "N", "mean ms", "std", "min", "max", "IQR", "outliers", "ref ms"]
    header += ["speedup", "ok"]
    rows = []
    for name, t in sorted(run.results.items()):
        speedup = f"{t.ref_mean_ms / t.mean_ms:.2f}x" if t.ref_mean_ms and t.mean_ms > 0 else ""
        ok = {None: "-", True: "yes", False: "NO"}[t.verified]
        ref = "" if t.ref_mean_ms is None else f"{t.ref_mean_ms:.4f}"
        rows.append(
            [name, str(t.iterations), f"{t.mean_ms:.4f}", f"{t.std_ms:.4f}", f"{t.min_ms:.4f}",
             f"{t.max_ms:.4f}", f"{t.iqr_ms:.4f}", str(t.outliers), ref, speedup, ok]
        )  # fmt: skip
    from kernels.inspect import text_table

    return text_table(rows, header)


def chart(run: BenchmarkRun, path: Path) -> Path:
    """Draw the results as a PNG bar chart at ``path`` (``.png`` added when missing)."""
    from kernels.pngchart import Bar, bar_chart

    path = path if path.suffix == ".png" else path.with_name(path.name + ".png")
    kernel_color, ref_color = (52, 101, 164), (170, 170, 170)
    groups = []
    for name, t in sorted(run.results.items()):
        bars = [Bar(t.mean_ms, kernel_color, f"kernel {t.mean_ms:.4f} ms")]
        if t.ref_mean_ms is not None:
            speed = f" (kernel {t.ref_mean_ms / t.mean_ms:.2f}x)" if t.mean_ms > 0 else ""
            bars.append(Bar(t.ref_mean_ms, ref_color, f"reference {t.ref_mean_ms:.4f} ms{speed}"))
        groups.append((name, bars))
    where = run.machine["gpu"] if run.machine["gpu"] != "N/A" else run.machine["cpu"]
    bar_chart(
        f"{run.repo_id} @ {run.revision}: mean time per call (shorter is faster)",
        f"{run.machine['backend']} on {where}, torch {run.machine['pytorchVersion']}",
        groups,
    ).save(path)
    return path


def benchmark_command(
    target: str,
    *,
    revision: str | None,
    version: int | None,
    iterations: int,
    warmup: int,
    as_json: bool,
    output: Path | None,
    visual: Path | None,
    trust_remote_code: bool,
) -> int:
    """``kernels benchmark``: the table on stdout (on stderr with ``--json``, which prints JSON)."""
    run = run_benchmarks(
        target,
        revision=revision,
        version=version,
        iterations=iterations,
        warmup=warmup,
        trust_remote_code=trust_remote_code,
    )
    print(table(run), file=sys.stderr if as_json else sys.stdout)
    payload = json.dumps(run.payload(), indent=2)
    if as_json:
        print(payload)
    if output is not None:
        from kernels.fsutil import atomic_write

        atomic_write(output, payload + "\n")
        print(f"wrote {output}", file=sys.stderr)
    if visual is not None:
        print(f"wrote {chart(run, visual)}", file=sys.stderr)
    return 0
