"""``get_kernel`` and friends: find the right build variant on a Hub, cache it, import it.

A cold load costs at most F + 2 requests for a variant of F files (resolve the revision, list
``build/`` once, one GET per file, in parallel); a load of a cached commit, or any load with
``HF_HUB_OFFLINE=1`` that the cache can serve, costs none.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from kernels.cache import RepoCache
from kernels.errors import NoCompatibleVariantError, NotInCacheError
from kernels.fetch import ensure_variant
from kernels.hub import RemoteFile, is_offline, list_files
from kernels.importer import LoadedKernel, import_folder, loaded_kernels
from kernels.platform import detect_platform
from kernels.resolve import Resolved, make_request, resolve
from kernels.variants import VariantVerdict, rank_variants

TrustRemoteCode = bool | list[str]
"""``True`` trusts every repository; a list trusts those repository ids besides trusted publishers."""


@dataclass(frozen=True)
class Installed:
    """A variant in the cache, ready to import."""

    repo_id: str
    repo_type: str
    commit: str
    variant: str
    path: Path


def variant_names(listing: list[RemoteFile]) -> list[str]:
    """The build variant folders present in a ``build/`` listing."""
    return sorted({f.path.split("/")[1] for f in listing if f.path.count("/") >= 2})


def listing_for(
    resolved: Resolved, *, cache_only: bool = False
) -> tuple[RepoCache, list[RemoteFile]]:
    """The ``build/`` listing at the resolved commit: from the cache, else one request."""
    repo_types = [resolved.repo_type] if resolved.repo_type else ["kernel", "model"]
    for repo_type in repo_types:
        rc = RepoCache(resolved.request.repo_id, repo_type)
        cached = rc.load_listing(resolved.commit)
        if cached is not None:
            return rc, cached
    if cache_only or is_offline():
        raise NotInCacheError(
            f"the file listing of {resolved.request.repo_id}@{resolved.commit} is not cached and "
            "HF_HUB_OFFLINE is set; load it once online (or run `kernels download`)"
        )
    if not resolved.repo_type:
        files, repo_type = list_files(resolved.request.repo_id, resolved.commit)
        rc = RepoCache(resolved.request.repo_id, repo_type)
        rc.save_listing(resolved.commit, files)
        return rc, files
    rc = RepoCache(resolved.request.repo_id, resolved.repo_type)
    # Processes starting together list the tree once: the others wait, then read the cached copy.
    with rc.lock(f"listing-{resolved.commit}"):
        cached = rc.load_listing(resolved.commit)
        if cached is not None:
            return rc, cached
        files, _ = list_files(resolved.request.repo_id, resolved.commit)
        rc.save_listing(resolved.commit, files)
    return rc, files


def choose_variant(repo_id: str, commit: str, names: list[str], backend: str | None) -> str:
    """The best variant among ``names`` for this interpreter; raise listing every verdict if none."""
    verdicts = rank_variants(names, detect_platform(backend))
    if verdicts and verdicts[0].accepted:
        return verdicts[0].name
    plat = detect_platform(backend)
    lines = "\n".join(f"  {v.name}: {v.reason}" for v in verdicts) or "  (no build/ folder)"
    raise NoCompatibleVariantError(
        f"{repo_id}@{commit[:12]} has no build variant for this interpreter "
        f"({plat.variant}); its variants:\n{lines}"
    )


def install(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    user_agent: str | dict[str, str] | None = None,
    variant: str | None = None,
    expected_hash: str | None = None,
    cache_only: bool = False,
) -> Installed:
    """Resolve, choose a variant (or use ``variant``), and make it complete in the cache.

    With ``cache_only`` (or ``HF_HUB_OFFLINE=1``) no request is made: a variant that is not cached
    raises :class:`~kernels.errors.NotInCacheError`.
    """
    resolved = resolve(
        make_request(repo_id, revision=revision, version=version), cache_only=cache_only
    )
    rc, listing = listing_for(resolved, cache_only=cache_only)
    chosen = variant or choose_variant(repo_id, resolved.commit, variant_names(listing), backend)
    done = rc.completion(resolved.commit, chosen)
    if done is None and (cache_only or is_offline()):
        raise NotInCacheError(
            f"build/{chosen} of {repo_id}@{resolved.commit[:12]} is not in the cache; "
            "load it once online (or run `kernels download`)"
        )
    path = (
        rc.variant_dir(resolved.commit, chosen)
        if done is not None and expected_hash in (None, done.get("hash"))
        else ensure_variant(
            rc, resolved.commit, chosen, listing, expected_hash=expected_hash, user_agent=user_agent
        )
    )
    return Installed(repo_id, rc.repo_type, resolved.commit, chosen, path)


def install_kernel(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    user_agent: str | dict[str, str] | None = None,
    trust_remote_code: TrustRemoteCode = False,
) -> Path:
    """Download the best build variant of ``repo_id`` into the cache and return its folder.

    ``version`` is an int (branch ``vN``) or a PEP 440 specifier over ``v<version>`` tags;
    ``revision`` a branch, tag or commit; with neither, ``main``.
    """
    return install(
        repo_id, revision=revision, version=version, backend=backend, user_agent=user_agent
    ).path


def get_kernel(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    user_agent: str | dict[str, str] | None = None,
    trust_remote_code: TrustRemoteCode = False,
    check_arch: bool = True,
) -> ModuleType:
    """Download (if needed) and import the kernel ``repo_id``; return its module.

    Loading the same variant again returns the same module; different versions of one kernel are
    imported side by side under distinct module names. ``trust_remote_code`` and ``check_arch``
    take the values 0.17.2 takes (see :doc:`compatibility`).
    """
    inst = install(
        repo_id, revision=revision, version=version, backend=backend, user_agent=user_agent
    )
    return import_folder(inst.path, repo_id=repo_id, commit=inst.commit, variant=inst.variant)


def has_kernel(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    trust_remote_code: TrustRemoteCode = False,
    check_arch: bool = True,
) -> bool:
    """True when ``repo_id`` at that revision has a build variant this interpreter can load."""
    verdicts = get_kernel_variants(repo_id, revision=revision, version=version, backend=backend)
    return bool(verdicts) and verdicts[0].accepted


def get_kernel_variants(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
) -> list[VariantVerdict]:
    """Every build variant of ``repo_id`` with whether it was accepted and why; best first."""
    resolved = resolve(make_request(repo_id, revision=revision, version=version))
    _, listing = listing_for(resolved)
    return rank_variants(variant_names(listing), detect_platform(backend))


def get_local_kernel(path: str | Path) -> ModuleType:
    """Import a kernel from a local folder: a variant folder, or a repo checkout with ``build/``."""
    folder = Path(path)
    build = folder / "build"
    if build.is_dir() and not (folder / "__init__.py").is_file():
        names = [p.name for p in build.iterdir() if p.is_dir()]
        folder = build / choose_variant(str(path), "local" + " " * 8, names, None)
    return import_folder(folder)


def get_loaded_kernels() -> list[LoadedKernel]:
    """Every kernel this process imported (module name, folder, repo, commit, variant)."""
    return loaded_kernels()
