"""HTTP plumbing shared by every Hub request: headers, timeouts, retries, error mapping.

Requests go through ``huggingface_hub``'s own session (``get_session()``) with its headers (token,
user agent) and its error classes (``hf_raise_for_status``), but with an explicit timeout (the
client's default is none, so a silent server would hang forever), paced by
:mod:`kernels.throttle`, and retried (:class:`Retry`) by two rules:

- a refusal to serve now (429 or 503) is retried after the wait the server asks for, for as long
  as the host makes progress: the request fails only after ``KERNELS_HTTP_STALL_TIMEOUT`` seconds
  in which the host sent nothing useful to this process, so a load never fails while the server
  keeps serving;
- a failure (a dropped or refused connection, 408, 500, 502, 504) is retried
  ``KERNELS_HTTP_RETRIES`` times with exponential backoff, counted afresh after any bytes arrive.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from kernels import __version__
from kernels.envvars import env_number
from kernels.errors import HubError
from kernels.throttle import stall_timeout, throttle_for

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
REFUSAL_STATUSES = frozenset({429, 503})
"""Answers that mean "not now": retried by time without progress, not by count."""


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


def retry_wait(attempt: int) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): from 0.25 s, doubling, at most 8."""
    return float(min(0.25 * 2**attempt, 8.0))


_RATELIMIT_RESET = re.compile(r";\s*t\s*=\s*(\d+)")
_POLICY = re.compile(r"q\s*=\s*(\d+).*?w\s*=\s*(\d+)")


def asked_wait(headers: Mapping[str, str]) -> float | None:
    """The seconds a refusal asks to wait: ``Retry-After`` (seconds), else the reset time of the
    IETF ``RateLimit`` header the Hub sends; ``None`` when it says nothing usable."""
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            wait = float(retry_after)
            if math.isfinite(wait):
                return max(0.0, wait)
        except ValueError:
            pass  # an HTTP date: rare from the Hub; fall back to the other header or backoff
    m = _RATELIMIT_RESET.search(headers.get("RateLimit", ""))
    return float(m[1]) if m else None


def stated_limit(headers: Mapping[str, str]) -> str | None:
    """The limit a server states in ``RateLimit-Policy`` (``q=20;w=1``), in words, or ``None``."""
    m = _POLICY.search(headers.get("RateLimit-Policy", ""))
    if m is None:
        return None
    quota, window = int(m[1]), int(m[2])
    per = "second" if window == 1 else f"{window} s"
    return f"{quota} request{'' if quota == 1 else 's'} per {per}"


class Retry:
    """The attempts of one request: when to try again, and when to give up.

    Use :meth:`attempt` around each try (it waits for a slot and for pauses), then tell it how the
    try went with :meth:`answered`, :meth:`failed` or :meth:`progressed`.
    """

    def __init__(
        self,
        url: str,
        what: str,
        *,
        since: float | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        self.url = url
        self.what = what
        self.cancel = cancel
        """When set (another request of the same job failed), the next attempt raises."""
        self.throttle = throttle_for(url)
        self.started = time.monotonic() if since is None else since
        """Monotonic time refusals are counted from (unless the host made progress since)."""
        self.failures = 0
        """Failures since the last progress (refusals not counted)."""
        self.refusals = 0
        self.last_error = "no attempt made"
        self._not_before = 0.0
        self._attempt_started = self.started

    @contextmanager
    def attempt(self) -> Iterator[None]:
        """Hold a slot of the host's throttle for one try (raises :class:`HubError` once
        ``cancel`` is set)."""
        started = self.throttle.acquire(self._not_before, self.cancel)
        if started is None:
            raise HubError(f"{self.what} stopped: another request failed")
        self._attempt_started = started
        try:
            yield
        finally:
            self.throttle.release()

    def progressed(self) -> None:
        """Bytes arrived: the host is serving; counted failures start over."""
        self.failures = 0
        self.throttle.progressed()

    def answered(self, status: int, headers: Mapping[str, str]) -> bool:
        """True when this answer is the one to use (a success, an error not worth retrying, or the
        last failure allowed); False to try again. Raises :class:`HubError` when refusals went on
        for longer than ``KERNELS_HTTP_STALL_TIMEOUT`` without progress."""
        if status not in RETRY_STATUSES:
            if status < 400:
                self.throttle.succeeded()
            return True
        if status in REFUSAL_STATUSES:
            self._refused(status, headers)
            return False
        return not self.failed(f"HTTP {status}")

    def failed(self, error: str) -> bool:
        """A failed try (``error`` says how); True when another try is allowed."""
        self.last_error = error
        self.failures += 1
        if self.failures >= attempts():
            return False
        self._not_before = time.monotonic() + retry_wait(self.failures - 1)
        return True

    def give_up_message(self) -> str:
        """``<what> failed after N attempts (<last error>): <url>``."""
        tries = f" after {self.failures} attempts" if self.failures > 1 else ""
        return f"{self.what} failed{tries} ({self.last_error}): {self.url}"

    def _refused(self, status: int, headers: Mapping[str, str]) -> None:
        self.refusals += 1
        self.last_error = f"HTTP {status}"
        bound = stall_timeout()
        stalled = time.monotonic() - max(self.throttle.last_progress, self.started)
        asked = asked_wait(headers)
        left = bound - stalled
        # A wait longer than the whole bound can never be met: fail now rather than at the bound.
        if stalled >= bound or (asked is not None and asked > bound):
            limit = stated_limit(headers) or self.throttle.policy
            kind = "429 (too many requests)" if status == 429 else f"{status} (unavailable)"
            said = f"; it states a limit of {limit}" if limit else ""
            ask = (
                f" and asks to wait {asked:g} s more" if asked is not None and asked > left else ""
            )
            raise HubError(
                f"{self.what}: the Hub kept answering HTTP {kind} for {stalled:.0f} s without "
                f"progress{ask}{said}; giving up (KERNELS_HTTP_STALL_TIMEOUT={bound:g} s). "
                f"Try again later, spread the load over time, or raise "
                f"KERNELS_HTTP_STALL_TIMEOUT ({self.url})"
            )
        # The last try happens at the bound, not before it.
        wait = min(asked if asked is not None else retry_wait(self.refusals - 1), left)
        self.throttle.refused(self._attempt_started, wait, stated_limit(headers))


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


def get(url: str, *, params: dict[str, str] | None = None, what: str | None = None) -> Any:
    """GET ``url`` with retries (see :class:`Retry`); return the response, raising the client's
    error classes on 4xx/5xx.

    Raises ``huggingface_hub`` errors (``RepositoryNotFoundError`` ...) for error answers, the
    transport's exception when every try failed to connect, and :class:`HubError` naming ``what``
    (default: the URL) when the Hub refused for longer than ``KERNELS_HTTP_STALL_TIMEOUT``.
    """
    from huggingface_hub import get_session
    from huggingface_hub.utils import hf_raise_for_status  # type: ignore[attr-defined]

    session = get_session()
    errors = transport_errors()
    retry = Retry(url, what or f"GET {url}")
    while True:
        with retry.attempt():
            try:
                r = session.get(
                    url, headers=headers(), params=params, follow_redirects=True, timeout=timeout()
                )
            except errors as err:
                if retry.failed(f"{type(err).__name__}: {err}"):
                    continue
                raise
        if retry.answered(r.status_code, r.headers):
            hf_raise_for_status(r)
            return r
