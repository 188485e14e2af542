"""Talking to the Hub through ``huggingface_hub``: refs, commits and tree listings.

The endpoint, token and offline switch are read from the environment at call time (not at import),
so tests and mirrors can change ``HF_ENDPOINT`` freely; requests go through :mod:`kernels.http`. Kernel
repos are ``repo_type="kernel"``; a repo that only exists as a model repo (the older convention) is
found with one extra request and remembered for the rest of the process.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from kernels import http
from kernels.errors import HubError, InvalidArgumentError, KernelsError, NotFoundOnHubError

T = TypeVar("T")

REPO_TYPES = ("kernel", "model")
"""Repo types a kernel may live in, in lookup order."""
_REPO_PART = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_-])?$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_TRUE = {"1", "true", "yes", "on"}


def endpoint() -> str:
    """The Hub endpoint: ``HF_ENDPOINT`` or ``https://huggingface.co``, without a trailing slash."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or "https://huggingface.co"


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set: no request may be made."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE


def is_commit_sha(revision: str) -> bool:
    """True for a full 40-hex git commit id."""
    return bool(_SHA.match(revision))


def validate_repo_id(repo_id: object) -> str:
    """Return ``repo_id`` if it is ``org/name`` made of safe characters; else raise ``InvalidArgumentError``."""
    if not isinstance(repo_id, str):
        raise InvalidArgumentError(
            f"repo id must be a string 'org/name', got {type(repo_id).__name__}"
        )
    parts = repo_id.split("/")
    if len(parts) != 2 or not all(_REPO_PART.match(p) and ".." not in p for p in parts):
        raise InvalidArgumentError(
            f"invalid repo id {repo_id!r}: expected 'org/name' (letters, digits, '-', '_', '.')"
        )
    return repo_id


_REV_BAD = re.compile(r"(^/|\\|\x00|(^|/)\.\.?(/|$)|//|^$)")


def validate_revision(revision: object) -> str:
    """Return ``revision`` if it is a safe branch, tag or commit name; else raise ``InvalidArgumentError``."""
    if not isinstance(revision, str) or _REV_BAD.search(revision) or len(revision) > 255:
        raise InvalidArgumentError(
            f"invalid revision {revision!r}: expected a branch, tag or commit id"
        )
    return revision


_repo_types: dict[tuple[str, str], str] = {}


def api_url(repo_type: str, repo_id: str, *parts: str) -> str:
    """``<endpoint>/api/<type>s/<repo_id>/<parts...>``; each part is quoted whole (``/`` too)."""
    tail = "".join("/" + quote(p, safe="") for p in parts)
    return f"{endpoint()}/api/{repo_type}s/{repo_id}{tail}"


def known_repo_type(repo_id: str) -> str | None:
    """The repo type already found for ``repo_id`` on the current endpoint, if any."""
    return _repo_types.get((endpoint(), repo_id))


def _where(repo_id: str, revision: str | None) -> str:
    at = f" at revision {revision!r}" if revision else ""
    return f"{repo_id}{at} on {endpoint()}"


def translate_error(err: BaseException, repo_id: str, revision: str | None) -> KernelsError:
    """Turn a ``huggingface_hub``/HTTP exception into a one-line ``KernelsError`` naming repo and URL."""
    from huggingface_hub.errors import (
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    if isinstance(err, KernelsError):
        return err
    if isinstance(err, RevisionNotFoundError):
        return NotFoundOnHubError(
            f"revision {revision!r} not found in kernel repo {repo_id} on {endpoint()}; "
            f"run `kernels versions {repo_id}` to see what it offers"
        )
    status = getattr(getattr(err, "response", None), "status_code", 0) or 0
    if isinstance(err, RepositoryNotFoundError) and status in (401, 403):
        return NotFoundOnHubError(
            f"kernel repo {repo_id} on {endpoint()} answered HTTP {status}: it does not exist, or "
            f"it is private or gated{http.refusal_hint(status)}"
        )
    if isinstance(err, RepositoryNotFoundError):
        return NotFoundOnHubError(
            f"kernel repo {repo_id} not found on {endpoint()} (check the name, HF_ENDPOINT and HF_TOKEN)"
        )
    if isinstance(err, OfflineModeIsEnabled):
        return HubError(f"HF_HUB_OFFLINE is set, cannot reach {_where(repo_id, revision)}")
    url = ""
    response = getattr(err, "response", None)
    if response is not None:
        url = f" ({getattr(response, 'status_code', '?')} from {getattr(response.request, 'url', '')})"
    if isinstance(err, HfHubHTTPError):
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        hint = http.refusal_hint(status)
        return HubError(f"Hub request for {_where(repo_id, revision)} failed{url}: {first}{hint}")
    if isinstance(err, (ValueError, KeyError, TypeError)):
        return HubError(f"invalid answer from the Hub for {_where(repo_id, revision)}: {err}")
    request = getattr(err, "request", None)
    at = f" ({request.url})" if request is not None and hasattr(request, "url") else ""
    return HubError(f"cannot reach {_where(repo_id, revision)}{at}: {type(err).__name__}: {err}")


def call(repo_id: str, revision: str | None, fn: Callable[[str], T]) -> T:
    """Run ``fn(repo_type)`` for the repo's type, trying kernel then model repos on first contact.

    Errors come back as :class:`~kernels.errors.KernelsError` naming the repo, revision and endpoint.
    """
    from huggingface_hub.errors import RepositoryNotFoundError

    key = (endpoint(), repo_id)
    known = _repo_types.get(key)
    candidates = (known,) if known else REPO_TYPES
    last: RepositoryNotFoundError | None = None
    for repo_type in candidates:
        try:
            result = fn(repo_type)
        except RepositoryNotFoundError as err:
            if last is None or getattr(last.response, "status_code", 0) not in (401, 403):
                last = err  # keep a refusal of the token over a later "not found"
            continue
        except Exception as err:
            raise translate_error(err, repo_id, revision) from err
        _repo_types[key] = repo_type
        return result
    assert last is not None
    raise translate_error(last, repo_id, revision) from last


def _sha(value: object, repo_id: str) -> str:
    if not isinstance(value, str) or not is_commit_sha(value):
        raise HubError(f"the Hub answered an invalid commit id {value!r} for {repo_id}")
    return value


@dataclass(frozen=True)
class Refs:
    """A repo's branches and tags, each mapped to its commit id."""

    branches: dict[str, str]
    tags: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (see :meth:`from_json`)."""
        return {"branches": self.branches, "tags": self.tags}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Refs:
        """Inverse of :meth:`to_json`."""
        return cls(dict(data.get("branches", {})), dict(data.get("tags", {})))


def list_refs(repo_id: str) -> tuple[Refs, str]:
    """One request: the repo's branches and tags, and its repo type."""

    def go(repo_type: str) -> tuple[Refs, str]:
        data = http.get(api_url(repo_type, repo_id, "refs"), what=f"the refs of {repo_id}").json()
        refs = Refs(
            {b["name"]: _sha(b["targetCommit"], repo_id) for b in data.get("branches", [])},
            {t["name"]: _sha(t["targetCommit"], repo_id) for t in data.get("tags", [])},
        )
        return refs, repo_type

    return call(repo_id, None, go)


def commit_of(repo_id: str, revision: str) -> tuple[str, str]:
    """One request: the commit id that ``revision`` (branch, tag or commit) names, and the repo type."""

    def go(repo_type: str) -> tuple[str, str]:
        url = api_url(repo_type, repo_id, "revision", revision)
        data = http.get(url, what=f"resolving {repo_id}@{revision}").json()
        return _sha(data.get("sha"), repo_id), repo_type

    return call(repo_id, revision, go)


@dataclass(frozen=True)
class RemoteFile:
    """One file of a tree listing."""

    path: str
    """Path in the repo, ``/``-separated."""
    size: int
    blob_id: str
    """Git blob sha1 (hex)."""
    lfs_sha256: str | None = None

    @property
    def digest(self) -> str:
        """The content id the Hub serves it under (and its ETag): LFS sha256, else the git blob id."""
        return self.lfs_sha256 or self.blob_id

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (see :meth:`from_json`)."""
        d: dict[str, Any] = {"path": self.path, "size": self.size, "blob_id": self.blob_id}
        if self.lfs_sha256:
            d["lfs_sha256"] = self.lfs_sha256
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RemoteFile:
        """Inverse of :meth:`to_json`."""
        return cls(str(d["path"]), int(d["size"]), str(d["blob_id"]), d.get("lfs_sha256"))


def list_files(repo_id: str, commit: str, path: str = "build") -> tuple[list[RemoteFile], str]:
    """One request (more only for paginated, very large trees): every file under ``path`` at
    ``commit``. A missing ``path`` is an empty listing."""
    from huggingface_hub.errors import EntryNotFoundError

    def go(repo_type: str) -> tuple[list[RemoteFile], str]:
        url: str | None = api_url(repo_type, repo_id, "tree", commit) + "/" + quote(path)
        params: dict[str, str] | None = {"recursive": "true", "expand": "false"}
        files: list[RemoteFile] = []
        while url:
            try:
                r = http.get(url, params=params, what=f"the file listing of {repo_id}@{commit}")
            except EntryNotFoundError:
                return [], repo_type
            for e in r.json():
                if e.get("type") != "file":
                    continue
                lfs = e.get("lfs") or {}
                files.append(
                    RemoteFile(str(e["path"]), int(e["size"]), str(e["oid"]), lfs.get("oid"))
                )
            url = r.links.get("next", {}).get("url")
            params = None  # the next link carries them
        return files, repo_type

    return call(repo_id, commit, go)
