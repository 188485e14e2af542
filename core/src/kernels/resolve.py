"""Turning what the caller asked for (branch, tag, commit, ``version=N`` or a specifier) into a commit.

``version=N`` means the branch ``vN``. A string ``version`` is a PEP 440 specifier matched against tags
named ``v<version>``; the highest match wins (pre-releases only when the specifier names one). With
neither, ``main`` is used. Online, a commit id costs no request, a branch or tag one, a specifier one;
offline (or from the cache), everything resolves through what earlier online calls recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from kernels.cache import RepoCache, cached_repos
from kernels.errors import InvalidArgumentError, NotInCacheError, ResolutionError
from kernels.hub import (
    Refs,
    commit_of,
    is_commit_sha,
    is_offline,
    known_repo_type,
    list_refs,
    validate_repo_id,
    validate_revision,
)


@dataclass(frozen=True)
class Request:
    """What the caller asked for, normalised: exactly one of ``revision`` and ``specifier``."""

    repo_id: str
    revision: str | None = None
    specifier: SpecifierSet | None = None

    def describe(self) -> str:
        """Human form, e.g. ``org/name@v1`` or ``org/name (version >=0.1,<0.2)``."""
        if self.specifier is not None:
            return f"{self.repo_id} (version {self.specifier})"
        return f"{self.repo_id}@{self.revision}"


def make_request(
    repo_id: str, *, revision: str | None = None, version: int | str | None = None
) -> Request:
    """Validate and normalise a ``get_kernel``-style request; raise ``InvalidArgumentError`` on bad input."""
    validate_repo_id(repo_id)
    if revision is not None and version is not None:
        raise InvalidArgumentError(f"{repo_id}: pass either revision= or version=, not both")
    if isinstance(version, bool):
        raise InvalidArgumentError(
            f"{repo_id}: version must be an int (branch vN) or a specifier string"
        )
    if isinstance(version, int):
        if version < 0:
            raise InvalidArgumentError(f"{repo_id}: version must be >= 0, got {version}")
        return Request(repo_id, revision=f"v{version}")
    if isinstance(version, str):
        return Request(repo_id, specifier=parse_specifier(version, where=repo_id))
    if version is not None:
        raise InvalidArgumentError(f"{repo_id}: version must be an int or a specifier string")
    return Request(repo_id, revision=validate_revision(revision or "main"))


def parse_specifier(text: str, *, where: str) -> SpecifierSet:
    """Parse a PEP 440 specifier (a bare version such as ``0.1.0`` means ``==0.1.0``)."""
    text = text.strip()
    try:
        if text and text[0].isdigit():
            Version(text)
            text = f"=={text}"
        spec = SpecifierSet(text)
    except (InvalidSpecifier, InvalidVersion):
        raise InvalidArgumentError(
            f"{where}: invalid version specifier {text!r} (expected e.g. '>=0.1,<0.2')"
        ) from None
    if not str(spec):
        raise InvalidArgumentError(f"{where}: empty version specifier")
    return spec


def tag_versions(refs: Refs) -> dict[Version, tuple[str, str]]:
    """Tags named ``v<PEP 440 version>``: version -> (tag name, commit)."""
    out: dict[Version, tuple[str, str]] = {}
    for name, sha in refs.tags.items():
        if name.startswith("v"):
            try:
                out[Version(name[1:])] = (name, sha)
            except InvalidVersion:
                continue
    return out


def pick_tag(refs: Refs, spec: SpecifierSet, repo_id: str) -> tuple[str, str]:
    """The (tag, commit) of the highest ``v<version>`` tag matching ``spec``; raise if none."""
    versions = tag_versions(refs)
    matching = list(spec.filter(versions))
    if not matching:
        have = ", ".join(str(v) for v in sorted(versions)) or "none"
        hint = ""
        bare = str(spec).removeprefix("==")
        if bare.isdigit() and str(spec) == f"=={bare}":
            hint = (
                f"; a string is a version of the v<version> tags: for the branch v{bare}, "
                f"pass the int version={bare}"
            )
        raise ResolutionError(
            f"no version of {repo_id} matches {str(spec)!r} (versions available: {have}){hint}"
        )
    return versions[max(matching)]


@dataclass(frozen=True)
class Resolved:
    """A request resolved to a commit."""

    request: Request
    commit: str
    repo_type: str
    ref: str | None
    """The branch or tag name the commit came from, if any."""


def resolve_cached(req: Request) -> Resolved | None:
    """Resolve ``req`` from the cache only (no request); ``None`` when the cache cannot tell."""
    for rc in cached_repos(req.repo_id):
        if req.specifier is not None:
            refs = rc.load_refs()
            if refs is None:
                continue
            try:
                tag, sha = pick_tag(refs, req.specifier, req.repo_id)
            except ResolutionError:
                continue
            return Resolved(req, sha, rc.repo_type, tag)
        assert req.revision is not None
        if is_commit_sha(req.revision):
            if rc.load_listing(req.revision) is not None:
                return Resolved(req, req.revision, rc.repo_type, None)
            continue
        ref_sha = rc.read_ref(req.revision)
        if ref_sha is not None:
            return Resolved(req, ref_sha, rc.repo_type, req.revision)
    return None


def ref_max_age() -> float:
    """Seconds a branch or tag resolved online is reused without asking the Hub again
    (``KERNELS_REF_MAX_AGE``, default 300; 0 asks on every load)."""
    try:
        return max(0.0, float(os.environ.get("KERNELS_REF_MAX_AGE", "300")))
    except ValueError:
        return 300.0


def resolve_recent(req: Request, max_age: float) -> Resolved | None:
    """A branch or tag that the Hub confirmed less than ``max_age`` seconds ago, from the cache.

    Only used for loads: many processes starting at once then ask the Hub nothing (no 429s), at
    the price of seeing a moved branch up to ``max_age`` seconds late. Locking always asks.
    """
    if req.revision is None:
        return None
    for rc in cached_repos(req.repo_id):
        age = rc.ref_age(req.revision)
        sha = rc.read_ref(req.revision)
        if sha is not None and age is not None and 0 <= age < max_age:
            return Resolved(req, sha, rc.repo_type, req.revision)
    return None


def resolve(req: Request, *, cache_only: bool = False, fresh: bool = False) -> Resolved:
    """Resolve ``req`` to a commit: from the cache when it is a cached commit, when offline, or
    (unless ``fresh``) when the Hub confirmed the branch or tag within ``KERNELS_REF_MAX_AGE``;
    else with one request. Records refs so later offline calls resolve the same way."""
    if req.revision is not None and is_commit_sha(req.revision):
        cached = resolve_cached(req)
        if cached is not None:
            return cached
    if cache_only or is_offline():
        cached = resolve_cached(req)
        if cached is None:
            why = "HF_HUB_OFFLINE is set" if is_offline() else "this call uses the cache only"
            raise NotInCacheError(
                f"{req.describe()} is not in the cache and {why}; "
                "run the same call once online (or `kernels download`) to fetch it"
            )
        return cached
    if not fresh and (max_age := ref_max_age()) > 0:
        recent = resolve_recent(req, max_age)
        if recent is not None:
            return recent
    if req.specifier is not None:
        refs, repo_type = list_refs(req.repo_id)
        RepoCache(req.repo_id, repo_type).save_refs(refs)
        tag, sha = pick_tag(refs, req.specifier, req.repo_id)
        return Resolved(req, sha, repo_type, tag)
    assert req.revision is not None
    if is_commit_sha(req.revision):
        # No request needed: the tree listing that follows fails clearly if the commit is unknown.
        return Resolved(req, req.revision, known_repo_type(req.repo_id) or "", None)
    sha, repo_type = commit_of(req.repo_id, req.revision)
    RepoCache(req.repo_id, repo_type).write_ref(req.revision, sha)
    return Resolved(req, sha, repo_type, req.revision)
