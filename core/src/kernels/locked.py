"""Loading kernels pinned by a ``kernels.lock``: ``get_locked_kernel`` and ``load_kernel``.

Both use the locked commit and verify the variant's files against the lock's hash before importing
(a changed byte is refused, naming the file). ``load_kernel`` never touches the network. Entries from
upstream 0.17 locks carry no hashes: they load by commit, checked only against the listing's content
ids at download time. Kernels a locked kernel depends on load first, at the commits the lock records
for them (``depends`` of its entry).
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from kernels.errors import IntegrityError, KernelsError, LockfileError, NotInCacheError
from kernels.importer import import_folder
from kernels.kerneldeps import load_dependencies
from kernels.lockfile import Lock, LockedKernel, parse_lock, read_lock
from kernels.metadata import KernelDependency
from kernels.trust import TrustRemoteCode, validate_trust_remote_code


def _locate(repo_id: str, lockfile: str | Path | None) -> tuple[Lock, LockedKernel, Path | None]:
    """The lock, its entry for ``repo_id`` and the project folder it belongs to (if known)."""
    if lockfile is not None:
        lock = read_lock(Path(lockfile))
        return lock, lock.get(repo_id), Path(lockfile).parent
    from kernels.distmeta import find_caller, lock_for_caller

    caller = find_caller()
    found = lock_for_caller(caller)
    if found is None:
        where = (
            f"; or run it from the project folder (none above {Path.cwd()})"
            if caller.module == "__main__" and caller.file is None
            else ""
        )
        raise LockfileError(
            f"no kernels.lock found for module {caller.module!r}: install its project (the build "
            f"embeds kernels.lock in the package metadata) or pass lockfile={where}"
        )
    lock = parse_lock(found.text, where=found.where)
    return lock, lock.get(repo_id), found.project


def locked_entry(repo_id: str, lockfile: str | Path | None) -> LockedKernel:
    """The lock entry for ``repo_id`` from ``lockfile`` or from the calling package's metadata."""
    return _locate(repo_id, lockfile)[1]


def download_hint(project: Path | None) -> str:
    """The command that fills the cache for ``project``'s lock, in the tool that manages it."""
    from kernels_lockembed import project_tool, tool_command

    if project is not None:
        return tool_command(project, "download")
    # A lock from an installed distribution: the running tool may still say how to download.
    tool = project_tool(Path.cwd()) if (Path.cwd() / "pyproject.toml").is_file() else None
    return tool_command(Path.cwd(), "download") if tool else "kernels download"


def load_entry(
    entry: LockedKernel,
    *,
    backend: str | None,
    cache_only: bool,
    hint: str,
    user_agent: str | dict[str, str] | None = None,
    trust_remote_code: TrustRemoteCode | None = None,
    lock: Lock | None = None,
    chain: tuple[str, ...] = (),
) -> ModuleType:
    """Import the kernel ``entry`` pins, verified against its hash, after the locked kernels it
    depends on (found in its ``depends``, else in ``lock``); download it unless ``cache_only``
    (then a miss names ``hint``, the command that fills the cache). ``trust_remote_code=None``
    checks no publisher."""
    from kernels.cache import RepoCache
    from kernels.loader import choose_variant, install
    from kernels.verify import verify_variant

    variant: str | None = None
    expected: str | None = None
    if entry.variants:
        variant = choose_variant(entry.repo_id, entry.commit, sorted(entry.variants), backend)
        expected = entry.variants[variant]
    try:
        inst = install(
            entry.repo_id,
            revision=entry.commit,
            backend=backend,
            variant=variant,
            expected_hash=expected,
            cache_only=cache_only,
            user_agent=user_agent,
            trust_remote_code=trust_remote_code,
        )
    except NotInCacheError:
        rc = RepoCache(entry.repo_id, entry.repo_type or "kernel")
        damage = rc.damage(entry.commit, variant) if variant else None
        if damage is not None and damage[1] == "changed size":
            raise IntegrityError(
                f"cached files of {entry.repo_id}@{entry.commit[:12]} do not match the lock "
                f"({damage[0]} changed size); refusing to import. Run `{hint}` to fetch a clean copy"
            ) from None
        raise NotInCacheError(
            f"{entry.repo_id}@{entry.commit[:12]} is not in the cache"
            f"{rc.damage_note(entry.commit, variant) if variant else ''}; run `{hint}` "
            "(or use get_locked_kernel, which downloads)"
        ) from None
    if expected is not None:
        verify_variant(
            RepoCache(entry.repo_id, inst.repo_type), inst.commit, inst.variant, expected
        )

    def one(dep: KernelDependency, sub: tuple[str, ...]) -> ModuleType:
        dep_entry = (lock or Lock({})).dependency(entry, dep.repo_id, dep.spec())
        return load_entry(
            dep_entry,
            backend=backend,
            cache_only=cache_only,
            hint=hint,
            user_agent=user_agent,
            trust_remote_code=trust_remote_code,
            lock=lock,
            chain=sub,
        )

    deps = load_dependencies(inst.metadata, chain=chain or (entry.repo_id,), load_one=one)
    return import_folder(
        inst.path,
        repo_id=entry.repo_id,
        commit=inst.commit,
        variant=inst.variant,
        deps=deps,
        metadata=inst.metadata,
    )


def _locked(
    repo_id: str,
    lockfile: str | Path | None,
    *,
    backend: str | None,
    cache_only: bool,
    user_agent: str | dict[str, str] | None = None,
    trust_remote_code: TrustRemoteCode | None = None,
) -> ModuleType:
    try:
        lock, entry, project = _locate(repo_id, lockfile)
        return load_entry(
            entry,
            backend=backend,
            cache_only=cache_only,
            hint=download_hint(project),
            user_agent=user_agent,
            trust_remote_code=trust_remote_code,
            lock=lock,
        )
    except KernelsError:
        # Raised at import time of the caller's package, a traceback hides the one line that
        # matters; an uncaught one prints as that line.
        from kernels.excepthook import install as one_line_when_uncaught

        one_line_when_uncaught()
        raise


def load_kernel(
    repo_id: str, *, lockfile: str | Path | None = None, backend: str | None = None
) -> ModuleType:
    """Import the locked kernel (and the locked kernels it depends on) from the cache only; never
    makes a request, and checks no publisher (the lock is that decision).

    Fails with :class:`~kernels.errors.NotInCacheError` naming the download command (``kernels
    download``, or the project's tool's: ``uv run kernels download``, ``pdm kernels download``, ...)
    when the variant is not cached, and with :class:`~kernels.errors.IntegrityError` when cached
    files changed. Uncaught, these errors print as one line, not a traceback.
    """
    return _locked(repo_id, lockfile, backend=backend, cache_only=True)


def get_locked_kernel(
    repo_id: str,
    *,
    lockfile: str | Path | None = None,
    backend: str | None = None,
    trust_remote_code: TrustRemoteCode = False,
    user_agent: str | dict[str, str] | None = None,
) -> ModuleType:
    """Import the locked kernel, downloading the locked commit's variant first when needed.

    ``trust_remote_code`` has the meaning it has for :func:`~kernels.get_kernel`.
    """
    trc = validate_trust_remote_code(trust_remote_code)
    return _locked(
        repo_id,
        lockfile,
        backend=backend,
        cache_only=False,
        user_agent=user_agent,
        trust_remote_code=trc,
    )
