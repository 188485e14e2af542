"""Loading kernels pinned by a ``kernels.lock``: ``get_locked_kernel`` and ``load_kernel``.

Both use the locked commit and verify the variant's files against the lock's hash before importing
(a changed byte is refused, naming the file). ``load_kernel`` never touches the network. Entries from
upstream 0.17 locks carry no hashes: they load by commit, checked only against the listing's content
ids at download time. Kernels a locked kernel depends on load first, at the commits the lock records
for them (``depends`` of its entry).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import ModuleType

from kernels.errors import LockfileError, NotInCacheError
from kernels.importer import import_folder
from kernels.kerneldeps import load_dependencies
from kernels.lockfile import Lock, LockedKernel, parse_lock, read_lock
from kernels.metadata import KernelDependency
from kernels.trust import TrustRemoteCode, validate_trust_remote_code


def locked_entry(repo_id: str, lockfile: str | Path | None) -> LockedKernel:
    """The entry for ``repo_id`` of the lock ``lockfile`` or of the calling package's metadata."""
    return find_lock(repo_id, lockfile)[1]


def find_lock(repo_id: str, lockfile: str | Path | None) -> tuple[Lock, LockedKernel]:
    """The lock (from ``lockfile`` or the calling package's metadata) and its entry for ``repo_id``."""
    if lockfile is not None:
        lock = read_lock(Path(lockfile))
        return lock, lock.get(repo_id)
    from kernels.distmeta import find_caller, lock_for_caller

    caller = find_caller()
    found = lock_for_caller(caller)
    if found is None:
        raise LockfileError(
            f"no kernels.lock found for module {caller.module!r}: install its project (the build "
            "embeds kernels.lock in the package metadata) or pass lockfile="
        )
    lock = parse_lock(found.text, where=found.where)
    return lock, lock.get(repo_id)


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
        raise NotInCacheError(
            f"{entry.repo_id}@{entry.commit[:12]} is not in the cache; run `{hint}` "
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
            lock=lock,
            backend=backend,
            cache_only=cache_only,
            hint=hint,
            user_agent=user_agent,
            trust_remote_code=trust_remote_code,
            chain=sub,
        )

    chain = chain or (entry.repo_id,)
    deps = load_dependencies(inst.metadata, chain=chain, load_one=one)
    return import_folder(
        inst.path,
        repo_id=entry.repo_id,
        commit=inst.commit,
        variant=inst.variant,
        deps=deps,
        metadata=inst.metadata,
    )


def load_kernel(
    repo_id: str, *, lockfile: str | Path | None = None, backend: str | None = None
) -> ModuleType:
    """Import the locked kernel (and the locked kernels it depends on) from the cache only; never
    makes a request, and checks no publisher (the lock is that decision).

    Fails with :class:`~kernels.errors.NotInCacheError` naming ``kernels download`` when the variant
    is not cached, and with :class:`~kernels.errors.IntegrityError` when cached files changed.
    """
    lock, entry = find_lock(repo_id, lockfile)
    hint = f"kernels download {Path(lockfile).parent}" if lockfile else "kernels download"
    return load_entry(entry, lock=lock, backend=backend, cache_only=True, hint=hint)


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
    lock, entry = find_lock(repo_id, lockfile)
    load = partial(
        load_entry, lock=lock, backend=backend, cache_only=False, hint="kernels download"
    )
    return load(entry, user_agent=user_agent, trust_remote_code=trc)
