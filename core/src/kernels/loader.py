"""``get_kernel`` and friends: find the right build variant on a Hub, cache it, import it.

A cold load costs at most F + 3 requests for a variant of F files (resolve the revision, list
``build/`` once, ask once whether the organisation is a trusted publisher, one GET per file, in
parallel); a load of a cached commit, or any load with ``HF_HUB_OFFLINE=1`` that the cache can
serve, costs none.

Before anything but the variant's ``metadata.json`` is downloaded, a load checks, in order: the
publisher (:mod:`kernels.trust`), that the build covers this GPU (:mod:`kernels.archs`; a build that
does not is passed over for the next acceptable variant), and the metadata
(:mod:`kernels.checks`: ``python-depends``, ``kernels-minver``, a dirty build). Kernels the kernel
depends on (:mod:`kernels.kerneldeps`) are loaded first, the same way.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, partial
from pathlib import Path
from types import ModuleType

from kernels.archs import DeviceArch, current_device, mismatch
from kernels.cache import RepoCache
from kernels.checks import check_metadata
from kernels.errors import (
    InvalidArgumentError,
    NoCompatibleVariantError,
    NotInCacheError,
    UnsupportedDeviceError,
)
from kernels.fetch import ensure_variant, fetch_file, variant_files
from kernels.hub import RemoteFile, is_offline, list_files
from kernels.importer import LoadedKernel, import_folder, loaded_kernels
from kernels.kerneldeps import load_dependencies
from kernels.metadata import KernelDependency, Metadata, read_variant_metadata
from kernels.platform import Platform, detect_platform
from kernels.resolve import Resolved, make_request, resolve
from kernels.trust import TrustRemoteCode, require_trusted, validate_trust_remote_code
from kernels.variants import (
    VariantRejected,
    VariantVerdict,
    accept,
    looks_like_variant,
    order,
    rank_variants,
)

UserAgent = str | dict[str, str] | None


@dataclass(frozen=True)
class Installed:
    """A variant in the cache, ready to import."""

    repo_id: str
    repo_type: str
    commit: str
    variant: str
    path: Path
    metadata: Metadata = field(default_factory=Metadata)


@dataclass(frozen=True)
class Options:
    """How a load goes; a kernel's dependencies are loaded with the same options."""

    backend: str | None = None
    user_agent: UserAgent = None
    trust_remote_code: TrustRemoteCode | None = None
    """``None``: no publisher check (locked loads and downloads: the lock is the decision)."""
    check_arch: bool = False
    cache_only: bool = False


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


@dataclass(frozen=True)
class ArchRejected(VariantRejected):
    """A variant whose name fits but whose declared GPU architectures do not cover the device."""


def _no_variant(where: str, verdicts: list[VariantVerdict], plat: Platform) -> Exception:
    lines = "\n".join(f"  {v.name}: {v.reason}" for v in verdicts) or "  (no build/ folder)"
    if any(isinstance(v, ArchRejected) for v in verdicts):
        return UnsupportedDeviceError(
            f"{where}: no build variant supports this device; the builds that fit this "
            f"interpreter declare other GPU architectures:\n{lines}\nThe declared list can be "
            "incomplete (a kernel with a Triton fallback, say): pass check_arch=False to load "
            "it anyway; it may then fail or crash the process at its first launch"
        )
    return NoCompatibleVariantError(
        f"{where} has no build variant for this interpreter ({plat.variant}); its variants:\n{lines}"
    )


def choose_variant(repo_id: str, commit: str, names: list[str], backend: str | None) -> str:
    """The best variant among ``names`` for this interpreter; raise listing every verdict if none."""
    if set(names) == {"torch-universal"}:
        # A pure-Python build fits every interpreter: choosing it needs no torch (a download in an
        # environment without torch works; importing the kernel says what it lacks).
        return "torch-universal"
    plat = detect_platform(backend)
    verdicts = rank_variants(names, plat)
    if verdicts and verdicts[0].accepted:
        return verdicts[0].name
    raise _no_variant(f"{repo_id}@{commit[:12]}", verdicts, plat)


def arch_verdict(
    verdict: VariantVerdict, meta: Callable[[str], Metadata], device: DeviceArch | None
) -> VariantVerdict:
    """``verdict``, or a rejection when the variant's declared architectures miss ``device``."""
    if not verdict.accepted or device is None:
        return verdict
    m = meta(verdict.name)
    why = mismatch(m.backend.backend_type, m.backend.archs, device)
    if why is None:
        return verdict
    return ArchRejected(verdict.name, False, f"does not support this device: {why}")


def variant_metadata(
    rc: RepoCache,
    commit: str,
    variant: str,
    listing: list[RemoteFile],
    *,
    user_agent: UserAgent = None,
    cache_only: bool = False,
) -> Metadata:
    """The ``metadata.json`` of one variant: from the cache, else its blob alone (one request).

    An absent ``metadata.json`` gives an empty :class:`~kernels.metadata.Metadata`.
    """
    if rc.completion(commit, variant) is not None:
        return read_variant_metadata(rc.variant_dir(commit, variant))
    entry = variant_files(listing, variant).get("metadata.json")
    if entry is None:
        return Metadata()
    where = f"build/{variant}/metadata.json of {rc.repo_id}@{commit[:12]}"
    blob = rc.blob(entry.digest)
    if not (blob.is_file() and blob.stat().st_size == entry.size):
        if cache_only or is_offline():
            raise NotInCacheError(
                f"{where} is not in the cache; load it once online (or run `kernels download`)"
            )
        fetch_file(rc, commit, entry, user_agent=user_agent)
    return Metadata.from_bytes(blob.read_bytes(), where=where)


UNIVERSAL = accept("torch-universal", "universal (pure Python) build", (4,))


def _has_torch() -> bool:
    return importlib.util.find_spec("torch") is not None


def backend_name(backend: str | None) -> str:
    """The compute backend loads are for: ``backend``, else the detected one (``cpu`` without
    torch, where only pure-Python kernels load and the backend matters for nothing else)."""
    if backend is None and not _has_torch():
        return "cpu"
    return detect_platform(backend).backend


@dataclass(frozen=True)
class Plan:
    """What a load will fetch: the commit, the chosen variant and its metadata (nothing else yet)."""

    rc: RepoCache
    resolved: Resolved
    listing: list[RemoteFile]
    variant: str
    metadata: Metadata


def plan(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    variant: str | None = None,
    opts: Options = Options(),
) -> Plan:
    """Resolve, check the publisher, and choose the variant (checking architectures when asked).

    Downloads at most the chosen (and passed-over) variants' ``metadata.json``.
    """
    resolved = resolve(
        make_request(repo_id, revision=revision, version=version), cache_only=opts.cache_only
    )
    rc, listing = listing_for(resolved, cache_only=opts.cache_only)
    commit = resolved.commit
    names = variant_names(listing)
    if variant is not None:  # named by a lock or `kernels download --all-variants`: taken as is
        verdicts: list[VariantVerdict] = [VariantVerdict(variant, True, "named by the caller")]
    elif set(names) == {"torch-universal"}:  # fits every interpreter: no torch needed to say so
        verdicts = [UNIVERSAL]
    else:
        verdicts = rank_variants(names, detect_platform(opts.backend))
    candidates = [v for v in verdicts if v.accepted]
    if not candidates:
        raise _no_variant(f"{repo_id}@{commit[:12]}", verdicts, detect_platform(opts.backend))
    if opts.trust_remote_code is not None:
        downloading = rc.completion(commit, candidates[0].name) is None
        require_trusted(rc, opts.trust_remote_code, downloading=downloading)
    meta = cache(
        partial(
            variant_metadata,
            rc,
            commit,
            listing=listing,
            user_agent=opts.user_agent,
            cache_only=opts.cache_only,
        )
    )
    compiled = any(c.name != "torch-universal" for c in candidates)
    device = (
        current_device(detect_platform(opts.backend).backend)
        if opts.check_arch and compiled
        else None
    )
    judged: list[VariantVerdict] = []
    for cand in candidates:
        verdict = arch_verdict(cand, meta, device)
        if verdict.accepted:
            return Plan(rc, resolved, listing, cand.name, meta(cand.name))
        judged.append(verdict)
    rest = [v for v in verdicts if not v.accepted]
    raise _no_variant(f"{repo_id}@{commit[:12]}", judged + rest, detect_platform(opts.backend))


def install(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    user_agent: UserAgent = None,
    variant: str | None = None,
    expected_hash: str | None = None,
    cache_only: bool = False,
    trust_remote_code: TrustRemoteCode | None = None,
    check_arch: bool = False,
    check: bool = True,
) -> Installed:
    """Resolve, choose a variant (or use ``variant``), check it, and make it complete in the cache.

    With ``cache_only`` (or ``HF_HUB_OFFLINE=1``) no request is made: a variant that is not cached
    raises :class:`~kernels.errors.NotInCacheError`. ``trust_remote_code=None`` skips the
    publisher check; ``check=False`` the metadata checks (for downloads of variants that other
    machines load).
    """
    opts = Options(backend, user_agent, trust_remote_code, check_arch, cache_only)
    p = plan(repo_id, revision=revision, version=version, variant=variant, opts=opts)
    commit, chosen = p.resolved.commit, p.variant
    done = p.rc.completion(commit, chosen)
    if done is None and (cache_only or is_offline()):
        raise NotInCacheError(
            f"build/{chosen} of {repo_id}@{commit[:12]} is not in the cache"
            f"{p.rc.damage_note(commit, chosen)}; load it once online (or run `kernels download`)"
        )
    if check:
        where = f"{repo_id}@{commit[:12]} ({chosen})"
        check_metadata(p.metadata, where=where, backend=backend_name(backend))
    path = (
        p.rc.variant_dir(commit, chosen)
        if done is not None and expected_hash in (None, done.get("hash"))
        else ensure_variant(
            p.rc, commit, chosen, p.listing, expected_hash=expected_hash, user_agent=user_agent
        )
    )
    return Installed(repo_id, p.rc.repo_type, commit, chosen, path, p.metadata)


# ---- LOCAL_KERNELS and local folders ------------------------------------------------------------


def local_overrides() -> dict[str, Path]:
    """``LOCAL_KERNELS="org/a=/path/a:org/b=/path/b"``: repos loaded from local folders instead."""
    raw = os.environ.get("LOCAL_KERNELS", "").strip()
    out: dict[str, Path] = {}
    for item in filter(None, raw.split(":")):
        repo_id, sep, path = item.partition("=")
        if not sep or not repo_id or not path:
            raise InvalidArgumentError(
                f"LOCAL_KERNELS entry {item!r} is not org/name=/path "
                "(entries are separated by ':', e.g. org/a=/src/a:org/b=/src/b)"
            )
        out[repo_id.strip()] = Path(path).expanduser()
    return out


def local_variant_folder(path: str | Path, backend: str | None = None) -> Path:
    """The variant folder to load from ``path``: a repo root (best variant of its ``build/``), a
    ``build/`` folder (best variant in it), or a variant folder itself."""
    folder = Path(path)
    if not folder.is_dir():
        raise InvalidArgumentError(f"{folder} is not a folder (a kernel repo or a build variant)")
    plat = detect_platform(backend)
    for base in (folder / "build", folder):
        subdirs = [p.name for p in base.iterdir() if p.is_dir()] if base.is_dir() else []
        names = [n for n in subdirs if looks_like_variant(n)]
        if names:
            verdicts = rank_variants(names, plat)
            if verdicts[0].accepted:
                return base / verdicts[0].name
            raise _no_variant(str(base), verdicts, plat)
    if (folder / "metadata.json").is_file() or (folder / "__init__.py").is_file():
        return folder
    raise NoCompatibleVariantError(
        f"{folder} holds no build variant (no build/<variant>/ folder and no metadata.json)"
    )


def _load_local(
    path: Path, *, opts: Options, chain: tuple[str, ...], repo_id: str | None = None
) -> ModuleType:
    folder = local_variant_folder(path, opts.backend)
    meta = read_variant_metadata(folder)
    where = f"{repo_id} from {folder}" if repo_id else str(folder)
    check_metadata(meta, where=where, backend=backend_name(opts.backend))
    if opts.check_arch:
        device = current_device(detect_platform(opts.backend).backend)
        why = mismatch(meta.backend.backend_type, meta.backend.archs, device)
        if why is not None:
            raise UnsupportedDeviceError(
                f"{where} does not support this device: {why}; pass check_arch=False to load it "
                "anyway (it may fail or crash at its first launch)"
            )
    deps = load_dependencies(meta, chain=chain, load_one=partial(_load_dependency, opts=opts))
    return import_folder(folder, deps=deps, metadata=meta)


# ---- loading with dependencies --------------------------------------------------------------------


def _install(
    repo_id: str, revision: str | None, version: int | str | None, opts: Options
) -> Installed:
    return install(
        repo_id,
        revision=revision,
        version=version,
        backend=opts.backend,
        user_agent=opts.user_agent,
        cache_only=opts.cache_only,
        trust_remote_code=opts.trust_remote_code,
        check_arch=opts.check_arch,
    )


def _chain_key(repo_id: str, revision: str | None, version: int | str | None) -> str:
    if version is not None and not isinstance(version, str):
        return KernelDependency(repo_id, version=version).describe()
    if version is not None:
        return f"{repo_id} (version {version!r})"
    return KernelDependency(repo_id, revision=revision or "main").describe()


def _load_dependency(dep: KernelDependency, chain: tuple[str, ...], *, opts: Options) -> ModuleType:
    return load(dep.repo_id, revision=dep.revision, version=dep.version, opts=opts, chain=chain)


def load(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    opts: Options,
    chain: tuple[str, ...] = (),
) -> ModuleType:
    """Load ``repo_id`` (or its ``LOCAL_KERNELS`` folder) after its kernel dependencies."""
    chain = chain or (_chain_key(repo_id, revision, version),)
    override = local_overrides().get(repo_id)
    if override is not None:
        return _load_local(override, opts=opts, chain=chain, repo_id=repo_id)
    inst = _install(repo_id, revision, version, opts)
    deps = load_dependencies(
        inst.metadata, chain=chain, load_one=partial(_load_dependency, opts=opts)
    )
    return import_folder(
        inst.path,
        repo_id=repo_id,
        commit=inst.commit,
        variant=inst.variant,
        deps=deps,
        metadata=inst.metadata,
    )


def install_tree(
    repo_id: str,
    *,
    revision: str | None,
    version: int | str | None,
    opts: Options,
    chain: tuple[str, ...] = (),
) -> Installed:
    """Install ``repo_id`` and, recursively, its kernel dependencies; return ``repo_id``'s."""
    chain = chain or (_chain_key(repo_id, revision, version),)
    inst = _install(repo_id, revision, version, opts)

    def one(dep: KernelDependency, sub: tuple[str, ...]) -> Installed:
        return install_tree(
            dep.repo_id, revision=dep.revision, version=dep.version, opts=opts, chain=sub
        )

    load_dependencies(inst.metadata, chain=chain, load_one=one)
    return inst


# ---- the public API -----------------------------------------------------------------------------


def install_kernel(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    local_files_only: bool = False,
    user_agent: UserAgent = None,
    trust_remote_code: TrustRemoteCode = False,
) -> Path:
    """Download the best build variant of ``repo_id`` (and of the kernels it depends on) into the
    cache and return its folder.

    ``version`` is an int (branch ``vN``) or a PEP 440 specifier over ``v<version>`` tags;
    ``revision`` a branch, tag or commit; with neither, ``main``. ``local_files_only`` uses the
    cache only (:class:`~kernels.errors.NotInCacheError` when it cannot serve the call).
    """
    trc = validate_trust_remote_code(trust_remote_code)
    opts = Options(backend, user_agent, trc, False, local_files_only)
    return install_tree(repo_id, revision=revision, version=version, opts=opts).path


def get_kernel(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    user_agent: UserAgent = None,
    trust_remote_code: TrustRemoteCode = False,
    check_arch: bool = True,
) -> ModuleType:
    """Download (if needed) and import the kernel ``repo_id``; return its module.

    Loading the same variant again returns the same module; different versions of one kernel are
    imported side by side under distinct module names. Unless ``trust_remote_code`` is ``True`` or
    a list naming ``repo_id``, the repository's organisation must be a trusted kernel publisher
    (:class:`~kernels.errors.UntrustedKernelError`, a ``ValueError``). With ``check_arch`` a build
    whose declared GPU architectures miss this device is passed over, and
    :class:`~kernels.errors.UnsupportedDeviceError` (a ``RuntimeError``) raised when no variant is
    left. Kernels it depends on are loaded first, with the same arguments.
    """
    trc = validate_trust_remote_code(trust_remote_code)
    opts = Options(backend, user_agent, trc, check_arch)
    return load(repo_id, revision=revision, version=version, opts=opts)


def _available(
    repo_id: str,
    revision: str | None,
    version: int | str | None,
    opts: Options,
    chain: tuple[str, ...],
) -> bool:
    override = local_overrides().get(repo_id)
    try:
        if override is not None:
            meta = read_variant_metadata(local_variant_folder(override, opts.backend))
        else:
            meta = plan(repo_id, revision=revision, version=version, opts=opts).metadata
    except (NoCompatibleVariantError, UnsupportedDeviceError):
        return False

    def one(dep: KernelDependency, sub: tuple[str, ...]) -> bool:
        return _available(dep.repo_id, dep.revision, dep.version, opts, sub)

    return all(load_dependencies(meta, chain=chain, load_one=one).values())


def has_kernel(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    trust_remote_code: TrustRemoteCode = False,
    check_arch: bool = True,
) -> bool:
    """True when ``repo_id`` at that revision (and every kernel it depends on) has a build variant
    this interpreter can load; the publisher is checked as for :func:`get_kernel` (an untrusted one
    raises). Downloads nothing but the chosen variants' ``metadata.json``."""
    trc = validate_trust_remote_code(trust_remote_code)
    opts = Options(backend, None, trc, check_arch)
    key = _chain_key(repo_id, revision, version)
    return _available(repo_id, revision, version, opts, (key,))


def get_kernel_variants(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    check_arch: bool = True,
) -> list[VariantVerdict]:
    """Every build variant of ``repo_id``: a ``VariantAccepted`` or ``VariantRejected`` each, with
    the reason; the variant a load would pick first.

    With ``check_arch`` (the default) on a machine with a CUDA or ROCm device, a variant whose
    declared architectures miss the device is rejected saying so (its ``metadata.json`` is read).
    """
    resolved = resolve(make_request(repo_id, revision=revision, version=version))
    rc, listing = listing_for(resolved)
    plat = detect_platform(backend)
    verdicts = rank_variants(variant_names(listing), plat)
    device = current_device(plat.backend) if check_arch else None
    if device is None:
        return verdicts
    meta = partial(variant_metadata, rc, resolved.commit, listing=listing)
    return order([arch_verdict(v, meta, device) for v in verdicts])


def get_local_kernel(
    repo_path: str | Path,
    *,
    backend: str | None = None,
    trust_remote_code: TrustRemoteCode = False,
    user_agent: UserAgent = None,
) -> ModuleType:
    """Import a kernel from a local folder: a repo checkout (its best ``build/`` variant), a
    ``build/`` folder, or a variant folder. Kernels it depends on come from the Hub
    (``trust_remote_code`` and ``user_agent`` apply to them)."""
    trc = validate_trust_remote_code(trust_remote_code)
    opts = Options(backend, user_agent, trc, False)
    return _load_local(Path(repo_path), opts=opts, chain=(str(repo_path),))


def get_loaded_kernels() -> list[LoadedKernel]:
    """Every kernel this process imported: ``metadata``, ``module``, ``repo_info`` (0.17.2's
    fields) and ``module_name``, ``path``, ``repo_id``, ``commit``, ``variant``."""
    return loaded_kernels()
