"""Loading kernels pinned by a ``kernels.lock``: ``get_locked_kernel`` and ``load_kernel``.

Both use the locked commit and verify the variant's files against the lock's hash before importing
(a changed byte is refused, naming the file). ``load_kernel`` never touches the network. Entries from
upstream 0.17 locks carry no hashes: they load by commit, checked only against the listing's content
ids at download time.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from kernels.errors import LockfileError, NotInCacheError
from kernels.importer import import_folder
from kernels.lockfile import LockedKernel, parse_lock, read_lock


def locked_entry(repo_id: str, lockfile: str | Path | None) -> LockedKernel:
    """The lock entry for ``repo_id`` from ``lockfile`` or from the calling package's metadata."""
    if lockfile is not None:
        return read_lock(Path(lockfile)).get(repo_id)
    from kernels.distmeta import find_caller, lock_for_caller

    caller = find_caller()
    found = lock_for_caller(caller)
    if found is None:
        raise LockfileError(
            f"no kernels.lock found for module {caller.module!r}: install its project (the build "
            "embeds kernels.lock in the package metadata) or pass lockfile="
        )
    return parse_lock(found.text, where=found.where).get(repo_id)


def load_entry(
    entry: LockedKernel,
    *,
    backend: str | None,
    cache_only: bool,
    hint: str,
    user_agent: str | dict[str, str] | None = None,
) -> ModuleType:
    """Import the kernel ``entry`` pins, verified against its hash; download it unless
    ``cache_only`` (then a miss names ``hint``, the command that fills the cache)."""
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
    return import_folder(inst.path, repo_id=entry.repo_id, commit=inst.commit, variant=inst.variant)


def load_kernel(
    repo_id: str, *, lockfile: str | Path | None = None, backend: str | None = None
) -> ModuleType:
    """Import the locked kernel from the cache only; never makes a request.

    Fails with :class:`~kernels.errors.NotInCacheError` naming ``kernels download`` when the variant
    is not cached, and with :class:`~kernels.errors.IntegrityError` when cached files changed.
    """
    entry = locked_entry(repo_id, lockfile)
    hint = f"kernels download {Path(lockfile).parent}" if lockfile else "kernels download"
    return load_entry(entry, backend=backend, cache_only=True, hint=hint)


def get_locked_kernel(
    repo_id: str,
    *,
    lockfile: str | Path | None = None,
    backend: str | None = None,
    trust_remote_code: bool | list[str] = False,
    user_agent: str | dict[str, str] | None = None,
) -> ModuleType:
    """Import the locked kernel, downloading the locked commit's variant first when needed.

    ``trust_remote_code`` has the meaning it has for :func:`~kernels.get_kernel`.
    """
    entry = locked_entry(repo_id, lockfile)
    return load_entry(
        entry, backend=backend, cache_only=False, hint="kernels download", user_agent=user_agent
    )
