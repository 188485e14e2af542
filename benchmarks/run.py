#!/usr/bin/env python3
"""Benchmark this project's ``kernels`` against upstream ``kernels`` 0.17.2 on one local Hub.

Run it with ``bash benchmarks/run.sh`` (it makes both environments first). One local Hub server
(:class:`kernels.server.HubServer`) runs in this process and serves the same seeded repositories to
both implementations; every scenario runs in fresh subprocesses with their own ``HF_HUB_CACHE``,
first at 0 ms and then at 50 ms of added latency per request. Requests are counted at the server.

Seeded repositories: ``kernels-bench/activation-00`` .. ``-10``, each holding the CPU build of
``examples/kernels/activation`` under its real variant name (the one loadable here) plus 27 copies
under other realistic variant names (CUDA, ROCm, XPU, aarch64, macOS, arch-free), on branch ``v1``
(tag ``v0.1.0``).

The tables go to stdout and into ``docs/benchmarks.md`` (between the ``results`` markers; the
prose around them is kept). See that page for what each scenario measures and the results.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import platform
import re
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

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
CHILD = BENCH / "child.py"
EXAMPLES = ROOT / "examples" / "kernels"
DOCS = ROOT / "docs" / "benchmarks.md"
UPSTREAM_VENV = ROOT / ".cache" / "bench" / "upstream-venv"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"

ORG = "kernels-bench"
N_DEPS = 11
N_PROCS = 16
LATENCIES = (0.0, 50.0)
# Names of real variants of kernels-community repos; the copies are never loaded here (this
# interpreter is torch 2.13 / CPU / x86_64 / Linux, and none of these matches it).
OTHER_VARIANTS = [
    *(
        f"torch{t}-cxx11-{cu}-x86_64-linux"
        for t in (210, 211, 212, 213)
        for cu in ("cu126", "cu128", "cu130")
    ),
    "torch212-cxx11-rocm71-x86_64-linux",
    "torch213-cxx11-rocm71-x86_64-linux",
    "torch212-cxx11-xpu20253-x86_64-linux",
    "torch213-cxx11-xpu20253-x86_64-linux",
    "torch212-cxx11-cu128-aarch64-linux",
    "torch213-cxx11-cu130-aarch64-linux",
    "torch213-cxx11-cpu-aarch64-linux",
    "torch210-cxx11-cpu-x86_64-linux",
    "torch211-cxx11-cpu-x86_64-linux",
    "torch212-cxx11-cpu-x86_64-linux",
    "torch212-metal-aarch64-darwin",
    "torch213-metal-aarch64-darwin",
    "torch-cuda",
    "torch-rocm",
    "torch-xpu",
]


def repo(i: int) -> str:
    """The id of seeded repository ``i``."""
    return f"{ORG}/activation-{i:02d}"


# ---- the two implementations ---------------------------------------------------------------------


@dataclass(frozen=True)
class Impl:
    """One implementation under test: its interpreter and its ``kernels`` command."""

    key: str
    python: Path

    @property
    def cli(self) -> Path:
        """The venv's ``kernels`` console script."""
        return self.python.parent / "kernels"


def implementations() -> tuple[Impl, Impl]:
    """(ours, upstream); ours is the interpreter running this script (.venv)."""
    ours = Impl("ours", Path(sys.executable))
    upstream = Impl("upstream", UPSTREAM_VENV / "bin" / "python")
    if not upstream.python.exists():
        raise SystemExit(f"no upstream venv at {UPSTREAM_VENV}: run `bash benchmarks/run.sh`")
    return ours, upstream


# ---- measurements ----------------------------------------------------------------------------------


@dataclass
class Measure:
    """Repeated runs of one scenario by one implementation at one latency."""

    times: list[float] = field(default_factory=list)
    """Wall seconds per run, around the subprocess(es)."""
    requests: list[int] = field(default_factory=list)
    """Requests the server answered per run."""
    kinds: Counter[str] = field(default_factory=Counter)
    """Requests of the last run, by kind."""
    child: list[dict[str, float]] = field(default_factory=list)
    """In-process timings printed by ``child.py``, per run (per process for concurrent runs)."""
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when every run succeeded."""
        return self.error is None and bool(self.times)

    @property
    def wall(self) -> float:
        """Median wall seconds."""
        return statistics.median(self.times)

    @property
    def max_requests(self) -> int:
        """The most requests any run made."""
        return max(self.requests)

    def child_median(self, key: str) -> float:
        """Median of one in-process timing."""
        return statistics.median(c[key] for c in self.child)

    def requests_text(self) -> str:
        """Request count(s) for the table: one number, or ``lo-hi`` when runs differed."""
        if not self.requests:
            return "-"
        lo, hi = min(self.requests), max(self.requests)
        return str(lo) if lo == hi else f"{lo}-{hi}"


def request_kind(method: str, path: str) -> str:
    """A short name for what a request asked the Hub for (for the per-kind breakdown)."""
    p = path.split("?", 1)[0]
    if p == "/api/agent-harnesses":
        return "agent-registry"
    if re.fullmatch(r"/api/organizations/[^/]+/overview", p):
        return "org-overview"
    m = re.fullmatch(r"/api/(?:kernels|models)/[^/]+/[^/]+(/.*)?", p)
    if m:
        rest = (m[1] or "/").split("/")[1:]
        name = {"": "repo-info", "revision": "repo-info", "refs": "refs", "tree": "tree"}
        return f"{method} " + name.get(rest[0], rest[0])
    if "/resolve/" in p:
        return f"{method} file"
    return f"{method} {p}"


def failure(returncode: int, stderr: str) -> str:
    """Why a child process failed: its exit status and the last line of its stderr."""
    lines = [ln for ln in stderr.splitlines() if ln.strip()] or ["(no output)"]
    return f"exit {returncode}: {lines[-1].strip()[:300]}"


def cell(text: str) -> str:
    """``text`` made safe for a Markdown table cell (error messages hold ``|`` and ``<...>``).

    Backticks become quotes: inside a code span the escapes below would show literally.
    """
    return (
        text.replace("`", "'")
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "\\|")
    )


def plural(n: int, word: str) -> str:
    """``1 request``, ``2 requests``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def kinds_text(kinds: Counter[str]) -> str:
    """``GET file 7, GET tree 1`` (most frequent first)."""
    return ", ".join(f"{k} {n}" for k, n in kinds.most_common()) or "none"


class Bench:
    """The server, the work folder and the environments the scenarios share."""

    def __init__(self, work: Path, hub: object, repeat: int, slow_repeat: int) -> None:
        self.work = work
        self.hub = hub
        self.repeat = repeat
        self.slow_repeat = slow_repeat
        self._caches = 0

    def fresh_cache(self) -> Path:
        """A new, empty ``HF_HUB_CACHE`` folder."""
        self._caches += 1
        path = self.work / "caches" / f"c{self._caches:04d}"
        path.mkdir(parents=True)
        return path

    def env(self, impl: Impl, cache: Path, **extra: str) -> dict[str, str]:
        """The environment of a child process: this one minus Hub/kernels settings, plus the local Hub.

        ``HF_HUB_DISABLE_TELEMETRY`` stays unset for both: with it, upstream 0.17.2 sends an empty
        user-agent part and every request fails (its defect 2).
        """
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("HF_", "HUGGINGFACE_", "KERNELS_"))
            # Byte code is written as after a normal install (pip compiles what it installs); an
            # inherited PYTHONDONTWRITEBYTECODE would recompile our editable core on every run.
            and k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONDONTWRITEBYTECODE")
        }
        home = self.work / f"hf-home-{impl.key}"
        registry = home / ".agent_harnesses.json"
        if not registry.exists():
            # huggingface_hub >= 1.20 fetches an agent registry from the Hub at most once a day and
            # keeps it here; the local server answers 404, which the client never caches, so every
            # process would pay one request (one per thread in a concurrent first call) that a
            # user of the real Hub pays once a day. Both implementations get the cached copy.
            home.mkdir(parents=True, exist_ok=True)
            registry.write_text('{"standardEnvVars": [], "harnesses": {}}', encoding="utf-8")
        env.update(
            HF_ENDPOINT=self.hub.endpoint,  # type: ignore[attr-defined]
            HF_HOME=str(home),
            HF_HUB_CACHE=str(cache),
            NO_PROXY="127.0.0.1,localhost",
            no_proxy="127.0.0.1,localhost",
        )
        env.update(extra)
        return env

    def once(
        self,
        m: Measure,
        impl: Impl,
        cmd: list[str],
        *,
        cache: Path,
        procs: int = 1,
        barrier: bool = False,
        child_json: bool = True,
        extra_env: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Measure:
        """Run ``cmd`` once (``procs`` copies at once), adding its time and requests to ``m``.

        Processes still running ``timeout`` seconds after the start are killed, and the run counts
        as failed ("did not finish within ...").

        With ``barrier``, ``cmd`` takes ``--barrier DIR`` (see ``child.py``): the clock starts when
        every process has imported torch and they are released together, so the time is that of
        the concurrent loads rather than of many torch imports sharing the CPUs.
        A failure sets ``m.error`` (the last line of the child's stderr); later runs are skipped.
        """
        if m.error is not None:
            return m
        env = self.env(impl, cache, **(extra_env or {}))
        gate = Path(tempfile.mkdtemp(prefix="barrier-", dir=self.work)) if barrier else None
        if gate is not None:
            cmd = [*cmd, "--barrier", str(gate)]
        self.hub.reset_requests()  # type: ignore[attr-defined]
        t = time.perf_counter()
        ps = [
            subprocess.Popen(
                cmd,
                env=env,
                cwd=self.work,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(procs)
        ]
        if gate is not None:
            while len(list(gate.glob("ready-*"))) < procs and all(p.poll() is None for p in ps):
                time.sleep(0.01)
            self.hub.reset_requests()  # type: ignore[attr-defined]
            t = time.perf_counter()
            (gate / "go").touch()
        outs = []
        for p in ps:
            left = None if timeout is None else max(0.1, timeout - (time.perf_counter() - t))
            try:
                outs.append(p.communicate(timeout=left))
            except subprocess.TimeoutExpired:
                for q in ps:
                    q.kill()
                    q.communicate()
                m.error = f"did not finish within {timeout:.0f} s (stopped)"
                return m
        elapsed = time.perf_counter() - t
        records = self.hub.requests()  # type: ignore[attr-defined]
        for p, (out, err) in zip(ps, outs, strict=True):
            if p.returncode != 0:
                m.error = failure(p.returncode, err)
                return m
            if child_json:
                m.child.append(json.loads(out.strip().splitlines()[-1]))
        m.times.append(elapsed)
        m.requests.append(len(records))
        m.kinds = Counter(request_kind(r.method, r.path) for r in records)
        return m


# ---- seeding ---------------------------------------------------------------------------------------


def upstream_readable(built: Path, dest: Path) -> dict[str, object]:
    """Copy the variant folder ``built`` to ``dest`` as 0.17.2 can load it; return its metadata.

    Upstream 0.17.2 parses metadata.json's "version" as an integer (the major version) and
    refuses the build script's "0.1.0"; our loader ignores the field. An integer serves both.
    Its parser knows no backend type ``universal`` either (only cann, cpu, cuda, metal, neuron,
    rocm, tpu, xpu): a ``torch-universal`` build says ``cpu``, the one backend it runs on here;
    our loader does not read the field.
    """
    shutil.copytree(built, dest)
    meta_path = dest / "metadata.json"
    meta: dict[str, object] = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["version"] = 1
    if meta.get("backend") == {"type": "universal"}:
        meta["backend"] = {"type": "cpu"}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def base_variant(stage: Path) -> tuple[Path, dict[str, object]]:
    """A copy under ``stage`` of the CPU activation variant that both implementations load, and
    its ``metadata.json``."""
    import build as example_build  # examples/kernels/build.py

    built = example_build.build_variant(EXAMPLES / "activation", backend="cpu")
    base = stage / "base" / built.name
    meta = upstream_readable(built, base)
    return base, meta


def activation_variants(stage: Path) -> list[Path]:
    """The CPU build of the activation example plus a copy under each of ``OTHER_VARIANTS``.

    The first folder is the loadable one. Built once (cached by ``build.py``), staged in ``stage``.
    """
    base, meta = base_variant(stage)
    dirs = [base]
    for name in OTHER_VARIANTS:
        copy = stage / "copies" / name
        shutil.copytree(base, copy)
        # On the Hub every variant is its own build: its library and so its metadata.json (the
        # library's digest, the backend) differ from the others'. Trailing bytes after the ELF
        # image make each copy's library distinct; no client can then reuse one download of
        # metadata.json for another variant.
        library = next(copy.glob("*.so"))
        with library.open("ab") as f:
            f.write(f"\n{name}\n".encode())
        digest = hashlib.sha256(library.read_bytes()).digest()
        meta_copy = json.loads(json.dumps(meta))
        meta_copy["digest"]["files"][library.name] = base64.b64encode(digest).decode()
        meta_copy["backend"] = {"type": variant_backend(name)}
        (copy / "metadata.json").write_text(json.dumps(meta_copy, indent=2) + "\n", "utf-8")
        dirs.append(copy)
    return dirs


def seed(endpoint: str, work: Path) -> dict[str, object]:
    """Build the CPU activation variant, publish ``N_DEPS`` 28-variant repos; return facts."""
    import build as example_build  # examples/kernels/build.py

    dirs = activation_variants(work / "stage")
    commits = [
        example_build.publish_kernel(
            endpoint, repo(i), dirs, branch="v1", tags=["v0.1.0"], token="hf_bench_dummy"
        )
        for i in range(N_DEPS)
    ]
    files = example_build.variant_files(dirs[0])
    return {
        "variant": dirs[0].name,
        "variants": len(dirs),
        "files": len(files),
        "commit": commits[0],
    }


def variant_backend(name: str) -> str:
    """The backend a variant name is built for (``cuda``, ``rocm``, ``xpu``, ``metal``, ``cpu``)."""
    m = re.search(r"(?:^|-)(cu|cuda|rocm|xpu|metal|cpu)\d*(?:-|$)", name)
    if m is None:
        raise ValueError(f"no backend in variant name {name!r}")
    return {"cu": "cuda"}.get(m[1], m[1])


def write_project(path: Path, deps: Sequence[str], package: str | None = None) -> Path:
    """A project folder with ``[tool.kernels.dependencies]`` (each ``= 1``), optionally a package."""
    path.mkdir(parents=True, exist_ok=True)
    lines = [
        "[project]",
        'name = "benchpkg"',
        'version = "0.1.0"',
        "",
        "[tool.kernels.dependencies]",
        *(f'"{d}" = 1' for d in deps),
    ]
    (path / "pyproject.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if package is not None:
        (path / "benchpkg").mkdir(exist_ok=True)
        (path / "benchpkg" / "__init__.py").write_text(package, encoding="utf-8")
    return path


OURS_PACKAGE = """from kernels import load_kernel

activation = load_kernel({repo!r})
"""
# Upstream 0.17.2 never finds the lock in package metadata without lockfile= (its defect 1).
UPSTREAM_PACKAGE = """from pathlib import Path

from kernels import load_kernel

activation = load_kernel({repo!r}, lockfile=Path(__file__).resolve().parent.parent / "kernels.lock")
"""


# ---- scenarios ---------------------------------------------------------------------------------------


SCENARIOS = [
    ("import", "`import kernels`"),
    ("cold", "first `get_kernel(version=1)`, fresh cache"),
    ("warm", "`get_kernel(version=1)` again, new process"),
    ("warm-commit", "`get_kernel(revision=<commit>)`, cached, new process"),
    ("warm-offline", "`get_kernel(version=1)`, cached, `HF_HUB_OFFLINE=1`"),
    ("locked", "locked, cached `load_kernel` at import time"),
    ("lock", f"`kernels lock`, {N_DEPS} dependencies"),
    ("download", f"`kernels download`, {N_DEPS} dependencies"),
    ("cold16", f"{N_PROCS} processes cold-loading one kernel at once, after `import torch`"),
]


@dataclass
class State:
    """Per-implementation folders that later scenarios reuse."""

    warm_cache: Path | None = None
    lock_project: Path | None = None
    locked_project: Path | None = None
    locked_cache: Path | None = None
    prep_error: str | None = None


def prepare_locked(b: Bench, impl: Impl, state: State) -> None:
    """Lock and download the one-kernel project whose package calls ``load_kernel`` (untimed)."""
    template = OURS_PACKAGE if impl.key == "ours" else UPSTREAM_PACKAGE
    project = write_project(b.work / f"locked-{impl.key}", [repo(0)], template.format(repo=repo(0)))
    cache = b.fresh_cache()
    for step in ("lock", "download"):
        m = b.once(
            Measure(), impl, [str(impl.cli), step, str(project)], cache=cache, child_json=False
        )
        if not m.ok:
            state.prep_error = f"`kernels {step}` failed: {m.error}"
            return
    if impl.key == "upstream":
        # Upstream's load_kernel looks the snapshot up offline with snapshot_download over the
        # whole repo; huggingface_hub 2.x keeps the tree listing (trees/<commit>.json) and refuses
        # a snapshot holding one variant as incomplete (upstream defect 4), so the load always
        # fails. Without that listing the check is skipped: removing it lets upstream load at all.
        for trees in cache.glob("*/trees"):
            shutil.rmtree(trees)
    # One untimed import so that the timed ones find byte code, as every later process would.
    b.once(
        Measure(),
        impl,
        [str(impl.python), str(CHILD), "import-package", "benchpkg"],
        cache=cache,
        extra_env={"PYTHONPATH": str(project)},
    )
    state.locked_project, state.locked_cache = project, cache


def runs_of(b: Bench, key: str, impl: Impl) -> int:
    """How many runs a scenario gets for an implementation."""
    if key == "import":
        return b.repeat + 2
    if key in ("lock", "download") and impl.key == "upstream":
        return b.slow_repeat
    if key == "cold16":
        return 1
    return b.repeat


def run_once(b: Bench, key: str, impl: Impl, state: State, commit: str, m: Measure) -> None:
    """One run of one scenario for one implementation at the server's current latency, into ``m``."""
    py, child = str(impl.python), str(CHILD)
    get = [py, child, "get-kernel", repo(0)]
    if key == "import":
        b.once(m, impl, [py, child, "import-kernels"], cache=b.fresh_cache())
    elif key == "cold":
        cache = b.fresh_cache()
        b.once(m, impl, [*get, "--version", "1"], cache=cache)
        state.warm_cache = cache if m.error is None else None
    elif key in ("warm", "warm-commit", "warm-offline"):
        if state.warm_cache is None:
            m.error = m.error or "no warm cache (the cold load failed)"
            return
        args = ["--revision", commit] if key == "warm-commit" else ["--version", "1"]
        extra = {"HF_HUB_OFFLINE": "1"} if key == "warm-offline" else {}
        b.once(m, impl, [*get, *args], cache=state.warm_cache, extra_env=extra)
    elif key == "locked":
        if state.locked_project is None or state.locked_cache is None:
            m.error = state.prep_error or "not prepared"
            return
        b.once(
            m,
            impl,
            [py, child, "import-package", "benchpkg"],
            cache=state.locked_cache,
            extra_env={"PYTHONPATH": str(state.locked_project)},
        )
    elif key == "lock":
        project = write_project(b.work / f"lock-{impl.key}", [repo(i) for i in range(N_DEPS)])
        (project / "kernels.lock").unlink(missing_ok=True)
        b.once(
            m, impl, [str(impl.cli), "lock", str(project)], cache=b.fresh_cache(), child_json=False
        )
        state.lock_project = project if m.error is None else None
    elif key == "download":
        if state.lock_project is None:
            m.error = m.error or "no kernels.lock (the lock scenario failed)"
            return
        cmd = [str(impl.cli), "download", str(state.lock_project)]
        b.once(m, impl, cmd, cache=b.fresh_cache(), child_json=False)
    elif key == "cold16":
        b.once(
            m, impl, [*get, "--version", "1"], cache=b.fresh_cache(), procs=N_PROCS, barrier=True
        )
    else:
        raise ValueError(key)


def run_scenario(
    b: Bench, key: str, impls: Sequence[Impl], states: dict[str, State], commit: str, turn: int
) -> dict[str, Measure]:
    """All runs of one scenario, alternating which implementation goes first (load drifts)."""
    ms = {impl.key: Measure() for impl in impls}
    for r in range(max(runs_of(b, key, impl) for impl in impls)):
        order = impls if (r + turn) % 2 == 0 else list(reversed(impls))
        for impl in order:
            if r < runs_of(b, key, impl):
                run_once(b, key, impl, states[impl.key], commit, ms[impl.key])
    return ms


# ---- report ------------------------------------------------------------------------------------------


def fmt_s(m: Measure) -> str:
    """Median wall seconds, or why there is none."""
    return f"{m.wall:.2f}" if m.ok else "fails"


def ratio(ours: Measure, up: Measure) -> float | None:
    """Upstream time over ours (> 1: ours is faster)."""
    if not (ours.ok and up.ok) or ours.wall <= 0:
        return None
    return up.wall / ours.wall


def results_table(res: dict[tuple[str, str], Measure]) -> list[str]:
    """The main table for one latency."""
    rows = [
        "| scenario | ours requests | upstream requests | ours s | upstream s | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, title in SCENARIOS:
        o, u = res[key, "ours"], res[key, "upstream"]
        r = ratio(o, u)
        rows.append(
            f"| {title} | {o.requests_text()} | {u.requests_text()} | {fmt_s(o)} | {fmt_s(u)} "
            f"| {f'{r:.1f}x' if r is not None else '-'} |"
        )
    return rows


LOAD_KEYS = ("cold", "warm", "warm-commit", "warm-offline", "locked", "cold16")


def overhead_ms(m: Measure, kernel_import: float) -> float | None:
    """In-process time of ``import kernels`` + the load call beyond the kernel's own import, ms."""
    if not m.ok or not m.child:
        return None
    return (m.child_median("load") - kernel_import) * 1000


def inprocess_table(res: dict[tuple[str, str], Measure], kernel_import: float) -> list[str]:
    """In-process timings: import torch, then the load (and its cost beyond the kernel's import)."""
    rows = [
        "| in-process, median | ours: import torch | ours: load | ours: load beyond the "
        "kernel's own import | upstream: import torch | upstream: load | upstream: beyond |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, title in SCENARIOS:
        if key not in LOAD_KEYS:
            continue
        cells = []
        for impl in ("ours", "upstream"):
            m = res[key, impl]
            if m.ok and m.child:
                over = overhead_ms(m, kernel_import)
                cells += [
                    f"{m.child_median('torch') * 1000:.0f} ms",
                    f"{m.child_median('load') * 1000:.0f} ms",
                    f"{over:.0f} ms" if over is not None else "-",
                ]
            else:
                cells += ["fails", "-", "-"]
        rows.append(f"| {title} | " + " | ".join(cells) + " |")
    o, u = res["import", "ours"], res["import", "upstream"]
    cell = [
        f"{m.child_median('import_kernels') * 1000:.1f} ms" if m.ok else "fails" for m in (o, u)
    ]
    rows.append(f"| `import kernels` alone | - | {cell[0]} | - | - | {cell[1]} | - |")
    return rows


def kinds_table(res: dict[tuple[str, str], Measure]) -> list[str]:
    """What the requests of the last run of each scenario were."""
    rows = ["| scenario | ours | upstream |", "|---|---|---|"]
    for key, title in SCENARIOS:
        cells = []
        for impl in ("ours", "upstream"):
            m = res[key, impl]
            cells.append(kinds_text(m.kinds) if m.ok else cell(f"fails: {m.error}"))
        rows.append(f"| {title} | {cells[0]} | {cells[1]} |")
    return rows


@dataclass
class Check:
    """One target, evaluated on measurements of the same run."""

    target: str
    measured: str
    passed: bool


def checks(
    all_res: dict[float, dict[tuple[str, str], Measure]], kernel_import: float, files: int
) -> list[Check]:
    """The issue's targets, each against this run's numbers."""
    out: list[Check] = []
    hi = all_res[max(all_res)]
    lat = f"{max(all_res):g} ms"
    o, u = hi["lock", "ours"], hi["lock", "upstream"]
    r = ratio(o, u)
    from kernels.variants import variant_backend

    # Resolve and list each, plus one metadata.json per backend (for kernel dependencies).
    per_dep = 2 + len({variant_backend(v) for v in OTHER_VARIANTS} | {"cpu"})
    out.append(
        Check(
            f"`kernels lock` of {N_DEPS} at {lat}: >= 20x faster, <= {per_dep} requests per "
            "dependency (2, and 1 per backend of its variants), 1 trust check",
            f"{r:.1f}x, {o.max_requests} requests ({o.max_requests / N_DEPS:.1f}/dependency)"
            if r is not None
            else cell(f"ours: {o.error or 'ok'}; upstream: {u.error or 'ok'}"),
            r is not None and r >= 20 and o.max_requests <= per_dep * N_DEPS + 1,
        )
    )
    o, u = hi["download", "ours"], hi["download", "upstream"]
    r = ratio(o, u)
    out.append(
        Check(
            f"`kernels download` of {N_DEPS} at {lat}: >= 3x faster",
            f"{r:.1f}x" if r is not None else cell(f"ours: {o.error}; upstream: {u.error}"),
            r is not None and r >= 3,
        )
    )
    for latency, res in all_res.items():
        for key in ("warm", "warm-commit", "warm-offline", "locked"):
            m = res[key, "ours"]
            title = dict(SCENARIOS)[key]
            over = overhead_ms(m, kernel_import)
            ok = m.ok and over is not None
            measured = (
                f"{plural(m.max_requests, 'request')}, {over:.0f} ms beyond import torch + the kernel's import"
                if ok and over is not None
                else cell(f"fails: {m.error}")
            )
            if key == "warm":
                measured += " (branch `v1` confirmed within `KERNELS_REF_MAX_AGE`)"
            out.append(
                Check(
                    f"{title} at {latency:g} ms: 0 requests, < 50 ms beyond import torch + kernel import",
                    measured,
                    ok and m.max_requests == 0 and over is not None and over < 50,
                )
            )
    imports = {
        lat: res["import", "ours"].child_median("import_kernels") * 1000
        if res["import", "ours"].ok
        else float("inf")
        for lat, res in all_res.items()
    }
    out.append(
        Check(
            "`import kernels` < 50 ms",
            ", ".join(f"{v:.1f} ms at {lat:g} ms" for lat, v in imports.items()) + " (in-process)",
            max(imports.values()) < 50,
        )
    )
    for latency, res in all_res.items():
        m = res["cold", "ours"]
        out.append(
            Check(
                f"cold load at {latency:g} ms: <= F + 3 = {files + 3} requests (F = {files} files)",
                f"{m.max_requests} requests" if m.ok else cell(f"fails: {m.error}"),
                m.ok and m.max_requests <= files + 3,
            )
        )
        m = res["cold16", "ours"]
        limit = N_PROCS * (files + 3)
        out.append(
            Check(
                f"{N_PROCS} concurrent cold loads at {latency:g} ms: <= {N_PROCS} x (F + 3) = {limit} requests",
                f"{m.max_requests} requests ({m.kinds.get('GET file', 0)} file downloads)"
                if m.ok
                else cell(f"fails: {m.error}"),
                m.ok and m.max_requests <= limit,
            )
        )
    return out


def machine_facts(upstream: Impl) -> list[str]:
    """Where and with what the run happened."""
    from importlib.metadata import version

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    up = subprocess.run(
        [
            str(upstream.python),
            "-c",
            "from importlib.metadata import version as v; "
            "print(v('kernels'), v('huggingface_hub'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    uname = subprocess.run(["uname", "-a"], capture_output=True, text=True).stdout.strip()
    rev = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True
    ).stdout.strip()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [
        f"- date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: `{uname}`",
        f"- CPU: {cpu}, {os.cpu_count()} logical CPUs; load average at start: {load}",
        f"- Python {platform.python_version()}, torch {version('torch')}",
        f"- ours: kernels {version('kernels')} (this repo at {rev}{' + local changes' if dirty else ''}), "
        f"huggingface_hub {version('huggingface_hub')}",
        f"- upstream: kernels {up[0]}, huggingface_hub {up[1]}",
    ]


def report(
    facts: list[str],
    seeded: dict[str, object],
    all_res: dict[float, dict[tuple[str, str], Measure]],
    kernel_import: Measure,
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    """The Markdown block printed and saved to docs/benchmarks.md."""
    ki = kernel_import.child_median("load") if kernel_import.ok else 0.0
    lines = [
        "Generated by `bash benchmarks/run.sh`; do not edit by hand.",
        "",
        *facts,
        f"- seeded: {N_DEPS} repos x {seeded['variants']} variants x {seeded['files']} files "
        f"(F = {seeded['files']}; loadable here: `{seeded['variant']}`)",
        f"- runs per timing: {args.repeat} (median; `import kernels`: {args.repeat + 2}; upstream "
        f"lock and download: {args.slow_repeat}; {N_PROCS}-process run: 1); whole benchmark "
        f"{elapsed / 60:.1f} min",
        f"- the kernel's own import (torch already imported, by file location): {ki * 1000:.0f} ms"
        if kernel_import.ok
        else f"- kernel import baseline failed: {kernel_import.error}",
        "",
        "Times are wall seconds around the subprocess(es), median; ratio = upstream / ours "
        "(above 1: ours is faster). Requests are counted at the server.",
    ]
    for latency, res in all_res.items():
        lines += ["", f"### {latency:g} ms added latency per request", ""]
        lines += results_table(res)
        lines += ["", "In-process timings (`child.py`), same runs:", ""]
        lines += inprocess_table(res, ki)
        lines += ["", "Requests of the last run, by kind:", ""]
        lines += kinds_table(res)
    seeded_files = int(str(seeded["files"]))
    lines += ["", "### Targets", "", "| target | measured | |", "|---|---|---|"]
    for c in checks(all_res, ki, seeded_files):
        lines.append(f"| {c.target} | {c.measured} | {'pass' if c.passed else '**miss**'} |")
    return "\n".join(lines) + "\n"


DOC_STUB = f"""# Benchmarks

{BEGIN}
{END}
"""


def save_docs(block: str, page: Path = DOCS, begin: str = BEGIN, end: str = END) -> None:
    """Put ``block`` between the markers ``begin`` and ``end`` of ``page`` (keeping the prose;
    missing markers are added at the end), written atomically."""
    text = page.read_text(encoding="utf-8") if page.exists() else DOC_STUB
    if begin not in text or end not in text:
        text = text.rstrip() + f"\n\n{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    page.parent.mkdir(parents=True, exist_ok=True)
    tmp = page.with_name(f".{page.name}.tmp")
    tmp.write_text(f"{head}{begin}\n{block}{end}{tail}", encoding="utf-8")
    tmp.replace(page)


def publish(block: str, *, save: bool, begin: str = BEGIN, end: str = END) -> None:
    """Print ``block``; with ``save``, also put it between its markers in docs/benchmarks.md."""
    print(block)
    if save:
        save_docs(block, DOCS, begin, end)
        print(f"saved to {DOCS.relative_to(ROOT)}", file=sys.stderr)


# ---- main ----------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Seed a local Hub, run every scenario for both implementations, print and save the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (median; default 3)")
    parser.add_argument(
        "--slow-repeat",
        type=int,
        default=1,
        help="runs of upstream's lock and download (tens of seconds each; default 1)",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.slow_repeat < 1:
        parser.error("--repeat and --slow-repeat must be >= 1")

    started = time.perf_counter()
    ours, upstream = implementations()
    os.environ.setdefault("KERNELS_BUILD_CACHE", str(ROOT / ".cache" / "bench" / "builds"))
    sys.path.insert(0, str(EXAMPLES))
    from kernels.server import HubServer

    work = Path(tempfile.mkdtemp(prefix="kernels-bench-"))
    # Both implementations refuse untrusted publishers: the seeded org is marked trusted.
    hub = HubServer(work / "hub", trusted_orgs=[ORG]).start()
    try:

        def log(msg: str) -> None:
            print(msg, file=sys.stderr)

        log(f"seeding {N_DEPS} repos on {hub.endpoint} ...")
        seeded = seed(hub.endpoint, work)
        b = Bench(work, hub, args.repeat, args.slow_repeat)
        states = {ours.key: State(), upstream.key: State()}
        for impl in (ours, upstream):
            prepare_locked(b, impl, states[impl.key])
        all_res: dict[float, dict[tuple[str, str], Measure]] = {}
        kernel_import = Measure(error="not measured")
        for latency in LATENCIES:
            hub.latency_ms = latency
            res: dict[tuple[str, str], Measure] = {}
            for n, (key, title) in enumerate(SCENARIOS):
                t = time.perf_counter()
                ms = run_scenario(
                    b, key, [ours, upstream], states, str(seeded["commit"]), n + len(all_res)
                )
                for impl_key, m in ms.items():
                    res[key, impl_key] = m
                    state = f"{m.wall:.2f} s, {m.requests_text()} requests" if m.ok else m.error
                    log(f"  {latency:g} ms | {title} | {impl_key}: {state}")
                log(f"  ({time.perf_counter() - t:.0f} s)")
                if key == "cold" and latency == LATENCIES[0]:
                    warm = states[ours.key].warm_cache
                    variant = (
                        next(iter(warm.glob(f"*/snapshots/*/build/{seeded['variant']}")), None)
                        if warm
                        else None
                    )
                    if warm is not None and variant is not None:
                        kernel_import = Measure()
                        for _ in range(args.repeat + 2):
                            b.once(
                                kernel_import,
                                ours,
                                [str(ours.python), str(CHILD), "import-folder", str(variant)],
                                cache=warm,
                            )
            all_res[latency] = res
        block = report(
            machine_facts(upstream),
            seeded,
            all_res,
            kernel_import,
            args,
            time.perf_counter() - started,
        )
    finally:
        hub.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    publish(block, save=not args.no_docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
