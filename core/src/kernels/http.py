"""HTTP plumbing shared by every Hub request: headers, timeouts, bounded retries, error mapping.

Requests go through ``huggingface_hub``'s own session (``get_session()``) with its headers (token,
user agent) and its error classes (``hf_raise_for_status``), but with an explicit timeout (the
client's default is none, so a silent server would hang forever) and retries of 429 and 5xx answers
and dropped connections, honouring ``Retry-After``, with a bounded total wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kernels import __version__
from kernels.envvars import env_number

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def timeout() -> float:
    """Seconds to wait for a connection or a read (``KERNELS_HTTP_TIMEOUT``, default 30).

    A value that is not a positive number raises ``KernelsError`` naming the variable.
    """
    return env_number("KERNELS_HTTP_TIMEOUT", 30.0, positive=True)


def attempts() -> int:
    """How many times a request is tried (``KERNELS_HTTP_RETRIES`` + 1; default 5 tries).

    A value that is not a whole number >= 0 raises ``KernelsError`` naming the variable.
    """
    return 1 + int(env_number("KERNELS_HTTP_RETRIES", 4, integer=True))


def retry_wait(attempt: int, retry_after: str | None = None) -> float:
    """Seconds to sleep before retry number ``attempt`` (0-based): ``Retry-After`` capped at 30 s,
    else exponential from 0.25 s, capped at 8 s."""
    if retry_after:
        try:
            wait = float(retry_after)
            return max(0.0, wait if wait < 30.0 else 30.0)
        except ValueError:
            pass
    return float(min(0.25 * 2**attempt, 8.0))


def pause_before_retry(attempt: int, retry_after: str | None = None) -> None:
    """Sleep :func:`retry_wait` before retry number ``attempt`` + 1; not after the last attempt
    (nothing follows it, so the wait would only delay the error)."""
    if attempt + 1 < attempts():
        time.sleep(retry_wait(attempt, retry_after))


def refusal_hint(status: int) -> str:
    """What to do about an answer with ``status``: for 401 and 403, the token; else nothing."""
    if status == 401:
        return "; the Hub did not accept the token: set HF_TOKEN (or run `hf auth login`)"
    if status == 403:
        return (
            "; the token has no access to it: use a token that does (HF_TOKEN or `hf auth login`)"
        )
    return ""


def headers(user_agent: str | dict[str, str] | None = None) -> dict[str, str]:
    """The client's headers: its user agent with ours added, and the token when one is set."""
    from huggingface_hub.utils import build_hf_headers  # type: ignore[attr-defined]

    out: dict[str, str] = build_hf_headers(
        library_name="kernels", library_version=__version__, user_agent=user_agent
    )
    return out


def transport_errors() -> tuple[type[BaseException], ...]:
    """Exception classes that mean the connection failed (whichever httpx the client uses)."""
    from huggingface_hub import get_session

    mod = type(get_session()).__module__.split(".")[0]
    lib: Any = __import__(mod)
    return (lib.TransportError, lib.StreamError, OSError)


@contextmanager
def stream(
    url: str,
    *,
    extra_headers: dict[str, str] | None = None,
    user_agent: str | dict[str, str] | None = None,
) -> Iterator[Any]:
    """One streamed GET of ``url`` with the client's session (no retry here: callers resume)."""
    from huggingface_hub import get_session

    with get_session().stream(
        "GET",
        url,
        headers={**headers(user_agent), **(extra_headers or {})},
        follow_redirects=True,
        timeout=timeout(),
    ) as r:
        yield r


def get(url: str, *, params: dict[str, str] | None = None) -> Any:
    """GET ``url`` with retries; return the response (raising the client's error classes on 4xx/5xx).

    Raises ``huggingface_hub`` errors (``RepositoryNotFoundError`` ...) for error answers and the
    transport's exception when every try failed to connect.
    """
    from huggingface_hub import get_session
    from huggingface_hub.utils import hf_raise_for_status  # type: ignore[attr-defined]

    session = get_session()
    errors = transport_errors()
    for attempt in range(attempts()):
        last = attempt == attempts() - 1
        try:
            r = session.get(
                url, headers=headers(), params=params, follow_redirects=True, timeout=timeout()
            )
        except errors:
            if last:
                raise
            time.sleep(retry_wait(attempt))
            continue
        if r.status_code in RETRY_STATUSES and not last:
            time.sleep(retry_wait(attempt, r.headers.get("Retry-After")))
            continue
        hf_raise_for_status(r)
        return r
    raise AssertionError("unreachable")
