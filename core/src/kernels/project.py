"""The framework-neutral project workflow: lock, check, download.

This is the API the package-manager adapters call (they stay thin):

- :func:`lock_project` resolves ``[tool.kernels.dependencies]`` and writes ``kernels.lock``;
- :func:`stale_reasons` says, offline, why a lock no longer matches the dependencies;
- :func:`download_locked` fills the cache for this interpreter (or all variants), verified;
- :func:`download_in_interpreter` runs that download in another Python (the project's own).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from packaging.version import InvalidVersion, Version

from kernels.cache import RepoCache
from kernels.config import Dependency, read_config
from kernels.errors import KernelsError, LockfileError
from kernels.fetch import listing_hash, variant_files
from kernels.hub import RemoteFile
from kernels.interruptible import InterruptiblePool
from kernels.lockfile import LOCK_NAME, Lock, LockedKernel, read_lock
from kernels.metadata import KernelDependency
from kernels.resolve import parse_specifier

MAX_PARALLEL = 8


def lock_path(project_dir: Path) -> Path:
    """Where a project's lock lives: ``<project_dir>/kernels.lock``."""
    return Path(project_dir) / LOCK_NAME


def _still_satisfies(dep: Dependency, entry: LockedKernel) -> bool:
    """True when an existing lock entry is still a valid answer for ``dep`` (no network)."""
    if not entry.variants:
        return False  # upstream 0.17 entries carry no hashes: re-lock them
    if entry.spec == dep.spec_json():
        return True
    if isinstance(dep.version, str) and entry.ref and entry.ref.startswith("v"):
        try:
            return Version(entry.ref[1:]) in parse_specifier(dep.version, where=dep.repo_id)
        except InvalidVersion:
            return False
    return False


def kernel_depends_of(
    rc: RepoCache, commit: str, files: list[RemoteFile], variants: Iterable[str]
) -> list[KernelDependency]:
    """The kernels the variants depend on, from one ``metadata.json`` per backend among them.

    kernel-builder writes a kernel's ``kernel-depends`` per backend (its general dependencies plus
    those of the backend), so every variant of one backend declares the same list: reading one per
    backend (in parallel, kept in the cache) finds them all at a fraction of the requests. One spec
    per repo, or a ``KernelsError`` naming the two variants that disagree.
    """
    from kernels.fetch import fetch_file
    from kernels.loader import variant_metadata
    from kernels.variants import variant_backend

    one_per_backend: dict[str, str] = {}
    for v in sorted(variants):
        one_per_backend.setdefault(variant_backend(v) or v, v)
    entries = {
        v: e
        for v in one_per_backend.values()
        if (e := variant_files(files, v).get("metadata.json"))
    }
    distinct = list({e.digest: e for e in entries.values()}.values())
    if distinct:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(distinct))) as pool:
            list(pool.map(partial(fetch_file, rc, commit), distinct))
    found: dict[str, tuple[KernelDependency, str]] = {}
    for variant in sorted(entries):
        for dep in variant_metadata(rc, commit, variant, files).kernel_depends:
            prev = found.setdefault(dep.repo_id, (dep, variant))
            if prev[0] != dep:
                raise KernelsError(
                    f"{rc.repo_id}@{commit[:12]}: build/{prev[1]} depends on {prev[0].describe()} "
                    f"but build/{variant} on {dep.describe()}; one lock cannot hold both"
                )
    return [dep for dep, _ in found.values()]


def lock_dependency(
    dep: Dependency,
    *,
    trust_remote_code: bool | list[str] = False,
    chain: tuple[str, ...] = (),
) -> LockedKernel:
    """Resolve one dependency, hash every variant from the tree listing, and lock the kernels its
    variants depend on, recursively (two requests, plus one ``metadata.json`` per backend of its
    variants when not in the cache, plus a trust check per organisation)."""
    from kernels.hub import list_files
    from kernels.kerneldeps import load_dependencies
    from kernels.loader import variant_names
    from kernels.metadata import Metadata
    from kernels.resolve import resolve
    from kernels.trust import require_trusted

    resolved = resolve(dep.request(), fresh=True)
    files, repo_type = list_files(dep.repo_id, resolved.commit)
    rc = RepoCache(dep.repo_id, repo_type)
    rc.save_listing(resolved.commit, files)
    require_trusted(rc, trust_remote_code, downloading=True)
    variants = {v: listing_hash(variant_files(files, v)) for v in variant_names(files)}
    if not variants:
        raise KernelsError(
            f"{dep.repo_id}@{resolved.commit[:12]} has no build variants under build/"
        )
    needed = Metadata(kernel_depends=kernel_depends_of(rc, resolved.commit, files, variants))

    def one(kd: KernelDependency, sub: tuple[str, ...]) -> LockedKernel:
        spec = Dependency(kd.repo_id, version=kd.version, revision=kd.revision)
        return lock_dependency(spec, trust_remote_code=trust_remote_code, chain=sub)

    chain = chain or (f"{dep.repo_id} ({dep.describe()})",)
    depends = load_dependencies(needed, chain=chain, load_one=one)
    return LockedKernel(
        dep.repo_id, resolved.commit, dep.spec_json(), variants, resolved.ref, repo_type, depends
    )


@dataclass
class LockResult:
    """What :func:`lock_project` did."""

    lock: Lock
    path: Path
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    written: bool = False
    replaced_unreadable: str | None = None
    """Why the lock that was there could not be read (it was replaced), if it could not."""


def lock_project(project_dir: Path, *, upgrade: Iterable[str] | bool = False) -> LockResult:
    """Resolve the project's kernel dependencies and write ``kernels.lock`` if it changed.

    Entries whose locked commit still satisfies their spec are kept unless ``upgrade`` is ``True``
    or names them. Resolution runs in parallel; nothing is written when any dependency fails.
    """
    config = read_config(project_dir)
    path = lock_path(project_dir)
    old, unreadable = _old_lock(path)
    upgrade_all = upgrade is True
    to_upgrade = set() if isinstance(upgrade, bool) else set(upgrade)
    unknown = to_upgrade - set(config.dependencies)
    if unknown:
        raise KernelsError(
            f"--upgrade names repos that are not dependencies: {', '.join(sorted(unknown))}"
        )
    result = LockResult(lock=Lock({}), path=path, replaced_unreadable=unreadable)
    todo: list[Dependency] = []
    entries: dict[str, LockedKernel] = {}
    for repo, dep in config.dependencies.items():
        entry = old.kernels.get(repo) if old else None
        if entry and not upgrade_all and repo not in to_upgrade and _still_satisfies(dep, entry):
            entries[repo] = LockedKernel(
                repo,
                entry.commit,
                dep.spec_json(),
                entry.variants,
                entry.ref,
                entry.repo_type,
                entry.depends,
            )
            result.kept.append(repo)
        else:
            todo.append(dep)
    errors: list[str] = []
    if todo:
        with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(todo))) as pool:
            trust = config.trust_remote_code
            futures = {
                dep.repo_id: pool.submit(lock_dependency, dep, trust_remote_code=trust)
                for dep in todo
            }
            for repo, fut in futures.items():
                try:
                    entries[repo] = fut.result()
                    result.updated.append(repo)
                except KernelsError as err:
                    errors.append(f"{repo}: {err}")
    if errors:
        if unreadable:
            errors.append(f"(the existing lock cannot be read and would be replaced: {unreadable})")
        raise KernelsError(f"cannot lock {path} (left unchanged):\n  " + "\n  ".join(errors))
    if old:
        result.removed = sorted(set(old.kernels) - set(entries))
    result.lock = Lock(dict(sorted(entries.items())), path)
    text = result.lock.dumps()
    if unreadable or not path.exists() or path.read_text(encoding="utf-8") != text:
        result.lock.write(path)
        result.written = True
    return result


def _old_lock(path: Path) -> tuple[Lock | None, str | None]:
    """The lock at ``path`` (``None`` when there is none), or why it cannot be read: a lock that
    cannot be read is re-resolved from scratch and replaced, which is what its error advises."""
    if not path.exists():
        return None, None
    try:
        return read_lock(path), None
    except LockfileError as err:
        return None, str(err).split("; fix it or run", 1)[0]


def stale_reasons(project_dir: Path) -> list[str]:
    """Why ``kernels.lock`` does not match ``[tool.kernels.dependencies]`` (empty: up to date).

    Needs no network. A missing lock is stale when there are dependencies.
    """
    config = read_config(project_dir)
    path = lock_path(project_dir)
    if not path.exists():
        return [f"{path} is missing"] if config.dependencies else []
    lock = read_lock(path)
    reasons = []
    for repo, dep in config.dependencies.items():
        entry = lock.kernels.get(repo)
        if entry is None:
            reasons.append(f"{repo} is a dependency but not locked")
        elif entry.spec != dep.spec_json() or not entry.variants:
            was = entry.spec or {"format": lock.format}
            reasons.append(f"{repo} asks for {dep.describe()} but the lock has {was}")
    for repo in sorted(set(lock.kernels) - set(config.dependencies)):
        reasons.append(f"{repo} is locked but no longer a dependency")
    return reasons


@dataclass
class DownloadResult:
    """What :func:`download_locked` did: variant folders fetched or found, and failures."""

    ok: dict[str, list[Path]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    unhashed: list[str] = field(default_factory=list)
    """Entries without variant hashes (upstream 0.17 locks): checked against the listing only."""


def variants_to_fetch(
    entry: LockedKernel, *, all_variants: bool, backend: str | None = None
) -> list[str | None]:
    """The variants of ``entry`` to download: all of them, or the one this interpreter loads.

    ``None`` stands for "the best for this interpreter" of an entry that locks no variant names
    (upstream 0.17); with ``all_variants`` such an entry's variants come from its cached listing.
    """
    from kernels.loader import choose_variant, listing_for, variant_names
    from kernels.resolve import make_request, resolve

    names: list[str | None]
    if not entry.variants:
        if not all_variants:
            return [None]
        resolved = resolve(make_request(entry.repo_id, revision=entry.commit))
        names = [*variant_names(listing_for(resolved)[1])]
    elif all_variants:
        names = [*sorted(entry.variants)]
    else:
        names = [choose_variant(entry.repo_id, entry.commit, sorted(entry.variants), backend)]
    return names


def download_entry(
    entry: LockedKernel, *, all_variants: bool = False, backend: str | None = None
) -> list[Path]:
    """Fetch one locked kernel's variant(s), and those of the kernels it depends on, into the cache.

    Files are verified against the lock's hash; for an entry without hashes (an upstream 0.17 lock)
    each file is verified against the content id in the tree listing of the locked commit.
    """
    from kernels.loader import install

    paths = []
    for e in entry.tree():
        for variant in variants_to_fetch(e, all_variants=all_variants, backend=backend):
            inst = install(
                e.repo_id,
                revision=e.commit,
                backend=backend,
                variant=variant,
                expected_hash=e.variants.get(variant) if variant else None,
                check=False,
            )
            paths.append(inst.path)
    return paths


def download_locked(
    lock: Lock,
    *,
    all_variants: bool = False,
    backend: str | None = None,
    progress: Callable[[str, str | None], None] | None = None,
) -> DownloadResult:
    """Download every locked kernel in parallel; failures are collected, successes kept.

    ``progress(repo_id, error_or_None)`` is called as each kernel finishes.
    """
    result = DownloadResult()
    if not lock.kernels:
        return result
    todo = list(lock.kernels.values())
    result.unhashed = sorted({e.repo_id for t in todo for e in t.tree() if not e.variants})
    # Ctrl-C returns at once: the transfers stop and write no completion record.
    with InterruptiblePool(min(MAX_PARALLEL, len(todo))) as pool:
        futures = {
            e.repo_id: pool.submit(download_entry, e, all_variants=all_variants, backend=backend)
            for e in todo
        }
        for repo, fut in futures.items():
            try:
                result.ok[repo] = fut.result()
                if progress:
                    progress(repo, None)
            except KernelsError as err:
                result.failed[repo] = str(err)
                if progress:
                    progress(repo, str(err))
    return result


def download_in_interpreter(
    python: str | Path, project_dir: Path, *, all_variants: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``<python> -m kernels download <project_dir>`` (for managers whose own Python lacks torch).

    Returns the completed process; its stdout/stderr hold the summary or the error line.
    """
    cmd = [str(python), "-m", "kernels", "download", str(project_dir)]
    if all_variants:
        cmd.append("--all-variants")
    return subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), check=False)


# ---- CLI commands -------------------------------------------------------------------------------


def lock_command(project_dir: Path, *, upgrade: list[str] | None) -> int:
    """``kernels lock``: exit 0 after writing (or confirming) the lock."""
    up: bool | list[str] = False if upgrade is None else (upgrade or True)
    result = lock_project(project_dir, upgrade=up)
    if result.replaced_unreadable:
        print(
            f"note: replaced a lock that could not be read ({result.replaced_unreadable})",
            file=sys.stderr,
        )
    state = "wrote" if result.written else "unchanged"
    print(
        f"{state} {result.path}: {len(result.lock.kernels)} kernel(s) "
        f"({len(result.updated)} resolved, {len(result.kept)} kept, {len(result.removed)} removed)"
    )
    return 0


def check_command(project_dir: Path) -> int:
    """``kernels check``: exit 0 when the lock is up to date, 1 naming what changed."""
    reasons = stale_reasons(project_dir)
    if reasons:
        print(f"{lock_path(project_dir)} is out of date:", file=sys.stderr)
        for r in reasons:
            print(f"  - {r}", file=sys.stderr)
        from kernels_lockembed import tool_command

        print(f"run `{tool_command(project_dir, 'lock')}` to update it", file=sys.stderr)
        return 1
    print(f"{lock_path(project_dir)} is up to date")
    return 0


def download_command(project_dir: Path, *, all_variants: bool) -> int:
    """``kernels download``: exit 0 when every locked kernel is in the cache, else 1 naming failures.

    On a terminal a bar shows files and bytes as they arrive; otherwise each kernel gets a line.
    """
    from kernels.progress import for_command, reporting

    lock = read_lock(lock_path(project_dir))
    total = len(lock.kernels)
    done = [0]
    shown = for_command("kernels download")

    def progress(repo: str, error: str | None) -> None:
        done[0] += 1
        shown.note(f"[{done[0]}/{total}] {repo} {'failed' if error else 'ok'}")

    with reporting(shown):
        result = download_locked(lock, all_variants=all_variants, progress=progress)
    files = sum(len(p) for p in result.ok.values())
    print(
        f"downloaded {len(result.ok)}/{total} locked kernel(s) ({files} variant(s)) into the cache"
    )
    for repo in result.unhashed:
        print(
            f"note: {lock_path(project_dir)} locks {repo} without hashes (a kernels 0.17 lock): "
            "its files were verified against the tree listing of the locked commit only; run "
            "`kernels lock` to record their hashes",
            file=sys.stderr,
        )
    if result.failed:
        for repo, err in sorted(result.failed.items()):
            print(f"error: {repo}: {err}", file=sys.stderr)
        return 1
    return 0


__all__ = [
    "DownloadResult",
    "LockResult",
    "download_in_interpreter",
    "download_locked",
    "lock_path",
    "lock_project",
    "stale_reasons",
]
