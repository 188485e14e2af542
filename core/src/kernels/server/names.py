"""Validation of everything a request names: repo types, repo ids, revisions, file paths, ref names.

Nothing here touches the filesystem. A repo id becomes a folder name only after
:func:`check_repo_id` accepted it; revisions and file paths are only ever looked up in data that git
returned, never used to build a path.
"""

from __future__ import annotations

import re

from kernels.server.responses import HubError

#: URL plural (``/api/{plural}/...``) -> repo type.
API_PLURALS: dict[str, str] = {
    "models": "model",
    "datasets": "dataset",
    "spaces": "space",
    "kernels": "kernel",
}
#: Repo type -> folder under ROOT holding its bare repositories.
TYPE_DIRS: dict[str, str] = {v: k for k, v in API_PLURALS.items()}
#: Repo type -> prefix of its file URLs (``/{prefix}{org}/{name}/resolve/...``).
URL_PREFIXES: dict[str, str] = {
    "model": "",
    "dataset": "datasets/",
    "space": "spaces/",
    "kernel": "kernels/",
}

_REPO_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_HEX40 = re.compile(r"[0-9a-f]{40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")

MAX_PATH_LENGTH = 4096


def is_sha(value: str) -> bool:
    """Whether ``value`` is a full, lower-case hex object id."""
    return _HEX40.fullmatch(value) is not None


def repo_type_from(value: object) -> str:
    """The repo type named by a request body's ``type`` (missing means model)."""
    if value is None or value == "":
        return "model"
    if isinstance(value, str) and value in URL_PREFIXES:
        return value
    raise HubError(400, f"Invalid repo type: {value!r}")


def check_repo_part(part: str) -> str:
    """Accept one half of ``org/name`` or raise a 400."""
    if not isinstance(part, str) or not _REPO_PART.fullmatch(part) or ".." in part or "--" in part:
        raise HubError(400, f"Invalid repo id component: {part!r}")
    return part


def check_repo_id(org: str, name: str) -> str:
    """Return ``org/name`` when both parts are valid, else raise a 400."""
    return f"{check_repo_part(org)}/{check_repo_part(name)}"


def check_revision(rev: str) -> str:
    """Accept a revision (branch, tag, ``refs/...`` or commit sha) syntactically, or raise a 400."""
    if (
        not rev
        or len(rev) > 255
        or _CONTROL.search(rev)
        or "\\" in rev
        or ".." in rev
        or rev.startswith("/")
        or rev.endswith("/")
        or "//" in rev
    ):
        raise HubError(400, f"Invalid revision: {rev!r}")
    return rev


def check_file_path(path: str, *, allow_empty: bool = False) -> str:
    """Accept a path inside a repo (``a/b.txt``) or raise a 400.

    Rejected: empty segments (a leading or doubled ``/``), ``.``, ``..``, ``.git`` segments,
    backslashes and control characters (NUL included).
    """
    if path == "" and allow_empty:
        return path
    if not path or len(path) > MAX_PATH_LENGTH or _CONTROL.search(path) or "\\" in path:
        raise HubError(400, f"Invalid path: {path!r}")
    for segment in path.split("/"):
        if segment in ("", ".", "..") or segment.lower() == ".git":
            raise HubError(400, f"Invalid path: {path!r}")
    return path


def check_ref_name(name: str, kind: str) -> str:
    """Accept a new branch or tag name (git's ``check-ref-format`` rules, a bit stricter)."""
    bad = (
        not name
        or len(name) > 255
        or _REF_FORBIDDEN.search(name) is not None
        or ".." in name
        or "@{" in name
        or name == "@"
        or name.startswith(("/", "-", "refs/"))
        or name.endswith(("/", ".", ".lock"))
        or "//" in name
        or any(seg.startswith(".") or seg.endswith(".lock") for seg in name.split("/"))
        or name == "HEAD"
        or is_sha(name)
    )
    if bad:
        raise HubError(400, f"Invalid {kind} name: {name!r}")
    return name
