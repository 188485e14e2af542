"""The Hub API: routes a :class:`Request` to the git store and builds the :class:`Response`.

Paths are split on ``/`` first and each segment is unquoted afterwards: revisions and tree paths
arrive quoted with ``safe=""`` (``refs%2Fheads%2Fv1``), file paths of ``resolve`` URLs with ``/`` kept.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from kernels.server import names
from kernels.server.gitstore import (
    BranchNotFound,
    FileOp,
    GitRepo,
    GitStore,
    MissingPath,
    ParentMismatch,
    PathConflict,
    RefConflict,
    TreeEntry,
)
from kernels.server.responses import (
    HubError,
    Response,
    StreamBody,
    entry_not_found,
    json_response,
    repo_not_found,
    revision_not_found,
)

DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")
_SHORT_SHA = re.compile(r"[0-9a-f]{7,40}")


@dataclass
class Request:
    """An HTTP request, body fully read."""

    method: str
    path: str  # the URL path as sent (still quoted), without the query string
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    base_url: str  # "http://host:port", from the Host header


def format_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime(DATE_FORMAT)


def _flag(query: Mapping[str, list[str]], name: str) -> bool:
    values = query.get(name)
    return values is not None and len(values) > 0 and values[-1].lower() in ("1", "true", "yes")


def _int_param(query: Mapping[str, list[str]], name: str, default: int) -> int:
    values = query.get(name)
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise HubError(400, f"Invalid {name}: {values[-1]!r}") from None
    if value < 0:
        raise HubError(400, f"Invalid {name}: {value}")
    return value


def _unquote(segment: str) -> str:
    try:
        return unquote(segment, errors="strict")
    except UnicodeDecodeError:
        raise HubError(400, "Invalid URL encoding") from None


def _json_body(req: Request) -> dict[str, Any]:
    if not req.body.strip():
        return {}
    try:
        data = json.loads(req.body)
    except (ValueError, UnicodeDecodeError):
        raise HubError(400, "Invalid JSON body") from None
    if not isinstance(data, dict):
        raise HubError(400, "Expected a JSON object")
    return data


def _entry_json(entry: TreeEntry) -> dict[str, Any]:
    if entry.kind == "tree":
        return {"type": "directory", "oid": entry.oid, "size": 0, "path": entry.path}
    return {"type": "file", "oid": entry.oid, "size": entry.size, "path": entry.path}


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """``(start, end)`` (inclusive) of a single ``bytes=`` range; ``None`` to ignore the header.

    Raises a 416 when the range cannot be satisfied.
    """
    m = _RANGE.fullmatch(value)
    if m is None or (not m[1] and not m[2]):
        return None
    unsatisfiable = HubError(
        416, "Range not satisfiable", headers=[("Content-Range", f"bytes */{size}")]
    )
    if not m[1]:
        suffix = int(m[2])
        if suffix == 0 or size == 0:
            raise unsatisfiable
        return max(0, size - suffix), size - 1
    start = int(m[1])
    end = int(m[2]) if m[2] else size - 1
    if start >= size:
        raise unsatisfiable
    if end < start:
        return None
    return start, min(end, size - 1)


class HubApp:
    """The routes of the Hub API over a :class:`GitStore`."""

    def __init__(
        self,
        store: GitStore,
        *,
        page_size: Callable[[], int],
        trusted: Callable[[str], bool] = lambda org: False,
    ) -> None:
        self.store = store
        self._page_size = page_size
        self._trusted = trusted

    def dispatch(self, req: Request) -> Response:
        try:
            return self._route(req)
        except HubError as e:
            return e.to_response()

    # ---------------------------------------------------------------- routing

    def _route(self, req: Request) -> Response:
        if not req.path.startswith("/"):
            raise HubError(400, "Invalid request path")
        segs = [_unquote(s) for s in req.path[1:].split("/")]
        if segs[0] == "api":
            return self._api(req, segs[1:])
        return self._files(req, segs)

    def _api(self, req: Request, s: list[str]) -> Response:
        method = req.method
        read = method in ("GET", "HEAD")
        if s == ["repos", "create"] and method == "POST":
            return self._create_repo(req)
        if s == ["repos", "delete"] and method == "DELETE":
            return self._delete_repo(req)
        if s == ["validate-yaml"] and method == "POST":
            return json_response({"errors": [], "warnings": []})
        if s == ["agent-harnesses"] and read:
            # huggingface_hub >= 1.20 asks this once a day to build its user agent; an empty
            # registry (which it caches) detects no agent and spares every new process the request.
            return json_response({"standardEnvVars": [], "harnesses": {}})
        if len(s) == 3 and s[0] == "organizations" and s[2] == "overview" and read:
            org = names.check_repo_part(s[1])
            return json_response(
                {
                    "name": org,
                    "fullname": org,
                    "type": "org",
                    "avatarUrl": "",
                    "isVerified": False,
                    "trustedKernelPublisher": self._trusted(org),
                }
            )
        if len(s) >= 3 and s[0] in names.API_PLURALS:
            repo_type = names.API_PLURALS[s[0]]
            repo_id = names.check_repo_id(s[1], s[2])
            return self._repo_api(req, repo_type, repo_id, s[3:])
        raise HubError(404, f"Not found: {req.path}")

    def _repo_api(self, req: Request, repo_type: str, repo_id: str, rest: list[str]) -> Response:
        method = req.method
        read = method in ("GET", "HEAD")
        action = rest[0] if rest else ""
        if not rest and read:
            return self._info(req, repo_type, repo_id, None)
        if action == "revision" and len(rest) == 2 and read:
            return self._info(req, repo_type, repo_id, rest[1])
        if action == "refs" and len(rest) == 1 and read:
            return self._refs(req, repo_type, repo_id)
        if action == "tree" and len(rest) >= 2 and read:
            return self._tree(req, repo_type, repo_id, rest[1], "/".join(rest[2:]))
        if action == "paths-info" and len(rest) == 2 and method == "POST":
            return self._paths_info(req, repo_type, repo_id, rest[1])
        if action == "preupload" and len(rest) == 2 and method == "POST":
            return self._preupload(req, repo_type, repo_id, rest[1])
        if action == "commit" and len(rest) == 2 and method == "POST":
            return self._commit(req, repo_type, repo_id, rest[1])
        if action == "commits" and len(rest) == 2 and read:
            return self._commits(req, repo_type, repo_id, rest[1])
        if action == "tag" and len(rest) == 2 and method == "POST":
            return self._create_tag(req, repo_type, repo_id, rest[1])
        if action == "tag" and len(rest) == 2 and method == "DELETE":
            return self._delete_tag(repo_type, repo_id, rest[1])
        if action == "branch" and len(rest) == 2 and method == "POST":
            return self._create_branch(req, repo_type, repo_id, rest[1])
        if action == "branch" and len(rest) == 2 and method == "DELETE":
            return self._delete_branch(repo_type, repo_id, rest[1])
        raise HubError(404, f"Not found: {req.path}")

    # ---------------------------------------------------------------- helpers

    def _repo(self, repo_type: str, repo_id: str) -> GitRepo:
        repo = self.store.get(repo_type, repo_id)
        if repo is None:
            raise repo_not_found(repo_id)
        return repo

    def _resolve(self, repo: GitRepo, revision: str) -> str:
        commit = repo.resolve(names.check_revision(revision))
        if commit is None:
            raise revision_not_found(revision)
        return commit

    def _url(self, req: Request, repo_type: str, repo_id: str) -> str:
        return f"{req.base_url}/{names.URL_PREFIXES[repo_type]}{repo_id}"

    # ---------------------------------------------------------------- repos

    def _repo_from_body(self, body: dict[str, Any]) -> tuple[str, str]:
        repo_type = names.repo_type_from(body.get("type"))
        name, org = body.get("name"), body.get("organization")
        if isinstance(name, str) and org is None and "/" in name:
            org, name = name.split("/", 1)
        if not isinstance(name, str) or not isinstance(org, str):
            raise HubError(400, "A repo id must be 'org/name' (no user namespace on this server)")
        return repo_type, names.check_repo_id(org, name)

    def _create_repo(self, req: Request) -> Response:
        repo_type, repo_id = self._repo_from_body(_json_body(req))
        url = self._url(req, repo_type, repo_id)
        if not self.store.create(repo_type, repo_id):
            return json_response(
                {"error": f"You already created this {repo_type} repo", "url": url}, 409
            )
        return json_response({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self, req: Request) -> Response:
        repo_type, repo_id = self._repo_from_body(_json_body(req))
        if not self.store.delete(repo_type, repo_id):
            raise repo_not_found(repo_id)
        return json_response({})

    def _info(self, req: Request, repo_type: str, repo_id: str, revision: str | None) -> Response:
        repo = self._repo(repo_type, repo_id)
        if revision is None:
            commit = repo.refs().branches.get(repo.default_branch())
        else:
            commit = self._resolve(repo, revision)
        org = repo_id.split("/")[0]
        data: dict[str, Any] = {
            "_id": hashlib.sha1(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
            "id": repo_id,
            "author": org,
            "sha": commit,
            "private": False,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [],
        }
        if repo_type == "model":
            data["modelId"] = repo_id
        if commit is not None:
            meta = repo.commit_meta(commit)
            if meta is not None:
                data["lastModified"] = format_date(meta.timestamp)
            data["siblings"] = [
                {"rfilename": e.path, "blobId": e.oid, "size": e.size}
                for e in repo.tree(commit).files()
            ]
        return json_response(data)

    # ---------------------------------------------------------------- refs

    def _refs(self, req: Request, repo_type: str, repo_id: str) -> Response:
        refs = self._repo(repo_type, repo_id).refs()
        data: dict[str, Any] = {
            "branches": [
                {"name": n, "ref": f"refs/heads/{n}", "targetCommit": c}
                for n, c in sorted(refs.branches.items())
            ],
            "tags": [
                {"name": n, "ref": f"refs/tags/{n}", "targetCommit": c}
                for n, c in sorted(refs.tags.items())
            ],
            "converts": [],
        }
        if _flag(req.query, "include_prs"):
            data["pullRequests"] = []
        return json_response(data)

    def _create_branch(self, req: Request, repo_type: str, repo_id: str, branch: str) -> Response:
        repo = self._repo(repo_type, repo_id)
        names.check_ref_name(branch, "branch")
        body = _json_body(req)
        if body.get("emptyBranch"):
            raise HubError(400, "emptyBranch is not supported by this server")
        start = body.get("startingPoint")
        if start is None:
            start = repo.default_branch()
        if not isinstance(start, str):
            raise HubError(400, "startingPoint must be a string")
        commit = self._resolve(repo, start)
        try:
            repo.create_branch(branch, commit)
        except RefConflict as e:
            return json_response({"error": str(e)}, 409)
        return json_response({"name": branch, "targetCommit": commit})

    def _delete_branch(self, repo_type: str, repo_id: str, branch: str) -> Response:
        repo = self._repo(repo_type, repo_id)
        names.check_revision(branch)
        if branch == repo.default_branch():
            raise HubError(403, f"Cannot delete the default branch {branch}")
        try:
            deleted = repo.delete_branch(branch)
        except RefConflict as e:
            return json_response({"error": str(e)}, 409)
        if not deleted:
            raise revision_not_found(branch)
        return json_response({})

    def _create_tag(self, req: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo(repo_type, repo_id)
        commit = self._resolve(repo, revision)
        body = _json_body(req)
        tag, message = body.get("tag"), body.get("message")
        if not isinstance(tag, str) or not (message is None or isinstance(message, str)):
            raise HubError(400, "Expected {'tag': str, 'message'?: str}")
        names.check_ref_name(tag, "tag")
        try:
            repo.create_tag(tag, commit, message)
        except RefConflict as e:
            return json_response({"error": str(e)}, 409)
        return json_response({"name": tag, "targetCommit": commit})

    def _delete_tag(self, repo_type: str, repo_id: str, tag: str) -> Response:
        repo = self._repo(repo_type, repo_id)
        names.check_revision(tag)
        try:
            deleted = repo.delete_tag(tag)
        except RefConflict as e:
            return json_response({"error": str(e)}, 409)
        if not deleted:
            raise revision_not_found(tag)
        return json_response({})

    # ---------------------------------------------------------------- trees

    def _tree(
        self, req: Request, repo_type: str, repo_id: str, revision: str, path: str
    ) -> Response:
        repo = self._repo(repo_type, repo_id)
        commit = self._resolve(repo, revision)
        path = names.check_file_path(path[:-1] if path.endswith("/") else path, allow_empty=True)
        entries = repo.tree(commit).listing(path, _flag(req.query, "recursive"))
        if entries is None:
            raise entry_not_found(path, commit)
        cursor = _int_param(req.query, "cursor", 0)
        limit = max(1, min(self._page_size(), _int_param(req.query, "limit", self._page_size())))
        page = entries[cursor : cursor + limit]
        headers: list[tuple[str, str]] = []
        if cursor + limit < len(entries):
            params = {
                "recursive": "true" if _flag(req.query, "recursive") else "false",
                "expand": "true" if _flag(req.query, "expand") else "false",
                "cursor": str(cursor + limit),
            }
            if "limit" in req.query:
                params["limit"] = str(limit)
            plural = names.TYPE_DIRS[repo_type]
            # The next pages name the commit, so that they list the same tree even if the branch moves.
            url = f"{req.base_url}/api/{plural}/{repo_id}/tree/{commit}"
            if path:
                url += "/" + quote(path, safe="")
            headers.append(("Link", f'<{url}?{urlencode(params)}>; rel="next"'))
        return json_response([_entry_json(e) for e in page], headers=headers)

    def _paths_info(self, req: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo(repo_type, repo_id)
        commit = self._resolve(repo, revision)
        content_type = req.headers.get("content-type", "")
        paths: list[str]
        if "json" in content_type:
            raw = _json_body(req).get("paths", [])
            paths = [raw] if isinstance(raw, str) else raw
        else:
            try:
                paths = parse_qs(req.body.decode(), keep_blank_values=True).get("paths", [])
            except UnicodeDecodeError:
                raise HubError(400, "Invalid form body") from None
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise HubError(400, "paths must be a list of strings")
        tree = repo.tree(commit)
        found = []
        for path in paths:
            entry = tree.get(names.check_file_path(path.rstrip("/")))
            if entry is not None and entry.kind != "commit":
                found.append(_entry_json(entry))
        return json_response(found)

    def _commits(self, req: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo(repo_type, repo_id)
        commit = self._resolve(repo, revision)
        history = repo.history(commit)
        cursor = _int_param(req.query, "cursor", 0)
        limit = max(1, min(self._page_size(), _int_param(req.query, "limit", self._page_size())))
        items = []
        for sha in history[cursor : cursor + limit]:
            meta = repo.commit_meta(sha)
            if meta is None:
                continue
            title, _, message = meta.message.partition("\n")
            items.append(
                {
                    "id": sha,
                    "title": title,
                    "message": message.strip("\n"),
                    "authors": [{"user": meta.author}],
                    "date": format_date(meta.timestamp),
                }
            )
        headers: list[tuple[str, str]] = []
        if cursor + limit < len(history):
            params = {"cursor": str(cursor + limit), "limit": str(limit)}
            url = f"{req.base_url}/api/{names.TYPE_DIRS[repo_type]}/{repo_id}/commits/{commit}"
            headers.append(("Link", f'<{url}?{urlencode(params)}>; rel="next"'))
        return json_response(items, headers=headers)

    # ---------------------------------------------------------------- uploads

    def _preupload(self, req: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo(repo_type, repo_id)
        names.check_revision(revision)
        commit = repo.resolve(revision)
        if commit is None and repo.refs().branches:
            raise revision_not_found(revision)
        files = _json_body(req).get("files", [])
        if not isinstance(files, list):
            raise HubError(400, "files must be a list")
        tree = repo.tree(commit) if commit is not None else None
        answer = []
        for item in files:
            path = item.get("path") if isinstance(item, dict) else None
            if not isinstance(path, str):
                raise HubError(400, "Each file needs a path")
            names.check_file_path(path)
            entry = tree.get(path) if tree is not None else None
            answer.append(
                {
                    "path": path,
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": entry.oid if entry is not None and entry.kind == "blob" else None,
                }
            )
        return json_response({"files": answer, "commitOid": commit})

    def _commit(self, req: Request, repo_type: str, repo_id: str, revision: str) -> Response:
        repo = self._repo(repo_type, repo_id)
        if _flag(req.query, "create_pr"):
            raise HubError(400, "Pull requests are not supported by this server")
        names.check_revision(revision)
        branch = revision[len("refs/heads/") :] if revision.startswith("refs/heads/") else revision
        summary, description, parent = "", "", None
        ops: list[FileOp] = []
        for line in req.body.splitlines():
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except (ValueError, UnicodeDecodeError):
                raise HubError(400, "Invalid NDJSON line in commit payload") from None
            if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
                raise HubError(400, "Invalid commit payload item")
            key, value = item.get("key"), item["value"]
            if key == "header":
                summary = str(value.get("summary") or "")
                description = str(value.get("description") or "")
                parent = value.get("parentCommit")
                if parent is not None and (
                    not isinstance(parent, str) or not _SHORT_SHA.fullmatch(parent)
                ):
                    raise HubError(400, "Invalid parentCommit")
                continue
            path = value.get("path")
            if not isinstance(path, str):
                raise HubError(400, "Each operation needs a path")
            if key == "file":
                ops.append(FileOp("add", names.check_file_path(path), _decode_content(value)))
            elif key == "deletedFile":
                ops.append(FileOp("delete_file", names.check_file_path(path)))
            elif key == "deletedFolder":
                ops.append(FileOp("delete_folder", names.check_file_path(path.rstrip("/"))))
            elif key == "lfsFile":
                raise HubError(400, "LFS files are not supported by this server: upload as regular")
            else:
                raise HubError(400, f"Unsupported commit operation: {key!r}")
        message = summary or "Commit"
        if description:
            message += "\n\n" + description
        try:
            new = repo.commit_files(branch, ops, message, parent_commit=parent)
        except BranchNotFound:
            if repo.resolve(revision) is not None:
                raise HubError(400, f"Can only commit to a branch, not to {revision}") from None
            raise revision_not_found(revision) from None
        except ParentMismatch as e:
            raise HubError(412, str(e)) from None
        except MissingPath as e:
            raise HubError(404, str(e), code="EntryNotFound") from None
        except PathConflict as e:
            raise HubError(400, str(e)) from None
        except RefConflict as e:
            raise HubError(409, str(e)) from None
        return json_response(
            {
                "success": True,
                "commitOid": new,
                "commitUrl": f"{self._url(req, repo_type, repo_id)}/commit/{new}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    # ---------------------------------------------------------------- files

    def _files(self, req: Request, segs: list[str]) -> Response:
        if len(segs) >= 6 and segs[0] in ("datasets", "spaces", "kernels") and segs[3] == "resolve":
            repo_type = names.API_PLURALS[segs[0]]
            segs = segs[1:]
        elif len(segs) >= 5 and segs[2] == "resolve":
            repo_type = "model"
        else:
            raise HubError(404, f"Not found: {req.path}")
        if req.method not in ("GET", "HEAD"):
            raise HubError(405, "Method not allowed", headers=[("Allow", "GET, HEAD")])
        repo_id = names.check_repo_id(segs[0], segs[1])
        revision = segs[3]
        path = names.check_file_path("/".join(segs[4:]))
        repo = self._repo(repo_type, repo_id)
        commit = self._resolve(repo, revision)
        entry = repo.tree(commit).get(path)
        if entry is None or entry.kind != "blob":
            raise entry_not_found(path, commit)
        size = entry.size
        headers = [
            ("Content-Type", "application/octet-stream"),
            ("X-Repo-Commit", commit),
            ("ETag", f'"{entry.oid}"'),
            ("Accept-Ranges", "bytes"),
        ]
        status, start, length = 200, 0, size
        range_header = req.headers.get("range")
        if range_header:
            span = parse_range(range_header, size)
            if span is not None:
                start, end = span
                status, length = 206, end - start + 1
                headers.append(("Content-Range", f"bytes {start}-{end}/{size}"))
        oid = entry.oid
        body = StreamBody(length, lambda: repo.blob_chunks(oid, size, start, length))
        return Response(status, headers, body)


def _decode_content(value: Mapping[str, Any]) -> bytes:
    content = value.get("content")
    if not isinstance(content, str):
        raise HubError(400, "A file operation needs a content string")
    encoding = value.get("encoding", "base64")
    if encoding == "base64":
        try:
            return base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError):
            raise HubError(400, "Invalid base64 content") from None
    if encoding in ("utf-8", "utf8"):
        return content.encode()
    raise HubError(400, f"Unsupported encoding: {encoding!r}")
