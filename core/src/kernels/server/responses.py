"""What the Hub routes produce: :class:`Response` values and :class:`HubError` exceptions.

Error answers carry the headers ``huggingface_hub`` maps to its exception classes
(``X-Error-Code``: ``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``) plus a JSON body
``{"error": message}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

JSON_TYPE = "application/json; charset=utf-8"


class StreamBody:
    """A body produced lazily (file contents): nothing is read for a ``HEAD``."""

    def __init__(self, length: int, chunks: Callable[[], Iterator[bytes]]) -> None:
        self.length = length
        self._chunks = chunks

    def chunks(self) -> Iterator[bytes]:
        """Iterate over the body; the iterator yields exactly :attr:`length` bytes."""
        return self._chunks()


@dataclass
class Response:
    """A complete answer: status, headers (without ``Content-Length``) and body."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | StreamBody = b""

    @property
    def length(self) -> int:
        return self.body.length if isinstance(self.body, StreamBody) else len(self.body)

    def chunks(self) -> Iterator[bytes]:
        if isinstance(self.body, StreamBody):
            return self.body.chunks()
        return iter((self.body,)) if self.body else iter(())


def json_response(
    data: object, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> Response:
    """A JSON answer."""
    body = json.dumps(data, separators=(",", ":")).encode()
    return Response(status, [("Content-Type", JSON_TYPE), *(headers or [])], body)


class HubError(Exception):
    """An error answer: raised by routes, turned into a JSON response by the dispatcher."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = list(headers or [])

    def to_response(self) -> Response:
        headers = list(self.headers)
        if self.code is not None:
            headers.append(("X-Error-Code", self.code))
        headers.append(("X-Error-Message", _header_safe(self.message)))
        return json_response({"error": self.message}, self.status, headers)


def _header_safe(text: str) -> str:
    """Header values must be latin-1 and single-line."""
    flat = " ".join(text.split())
    return flat.encode("latin-1", "replace").decode("latin-1")[:1000]


def repo_not_found(repo_id: str) -> HubError:
    return HubError(404, f"Repository not found: {repo_id}", code="RepoNotFound")


def revision_not_found(revision: str) -> HubError:
    return HubError(404, f"Invalid rev id: {revision}", code="RevisionNotFound")


def entry_not_found(path: str, commit: str | None) -> HubError:
    headers = [("X-Repo-Commit", commit)] if commit else []
    return HubError(404, f"Entry not found: {path}", code="EntryNotFound", headers=headers)
