"""Run-time controls of a server: simulated latency, a rate limit, request accounting and fault
injection."""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass

#: Records kept by the request log (the oldest are dropped beyond that).
MAX_LOG_RECORDS = 1_000_000


@dataclass(frozen=True)
class RequestRecord:
    """One answered request."""

    method: str
    path: str  # unquoted URL path, query string included
    status: int
    bytes_sent: int  # body bytes sent (0 for HEAD; fewer than announced when truncated)


class RequestLog:
    """Thread-safe, bounded list of :class:`RequestRecord`, cleared in epochs.

    A record is appended when its request is answered, which can be long after it arrived (latency,
    a delaying fault, a client that went away meanwhile). So that :meth:`clear` is a true barrier,
    a handler takes :meth:`epoch` when its request arrives and passes it to :meth:`append`: a request
    that arrived before the last ``clear()`` is never logged after it.
    """

    def __init__(self, maxlen: int = MAX_LOG_RECORDS) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=maxlen)
        self._lock = threading.Lock()
        self._epoch = 0

    def epoch(self) -> int:
        """The current epoch (the number of ``clear()`` calls so far)."""
        with self._lock:
            return self._epoch

    def append(self, record: RequestRecord, epoch: int | None = None) -> None:
        """Log ``record`` unless its request arrived in an earlier ``epoch`` than the current one."""
        with self._lock:
            if epoch is None or epoch == self._epoch:
                self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget every record, and every request still being answered."""
        with self._lock:
            self._records.clear()
            self._epoch += 1


@dataclass
class Fault:
    """A fault rule; see :meth:`kernels.server.HubServer.add_fault`."""

    path_regex: re.Pattern[str]
    method: str | None = None
    remaining: int | None = 1
    status: int | None = None
    retry_after: float | None = None
    delay_s: float = 0.0
    truncate_at: int | None = None
    corrupt: bool = False

    def matches(self, method: str, paths: tuple[str, ...]) -> bool:
        if self.method is not None and self.method != method:
            return False
        return any(self.path_regex.search(p) for p in paths)


class FaultSet:
    """Fault rules, consulted in the order they were added; a request triggers at most one."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        if fault.remaining is not None and fault.remaining < 1:
            raise ValueError("times must be None or at least 1")
        if fault.truncate_at is not None and fault.truncate_at < 0:
            raise ValueError("truncate_at must be >= 0")
        if fault.delay_s < 0:
            raise ValueError("delay_s must be >= 0")
        if fault.status is not None and not 100 <= fault.status <= 599:
            raise ValueError("status must be an HTTP status code")
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, paths: tuple[str, ...]) -> Fault | None:
        """The first rule matching the request, consuming one of its uses."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, paths):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining <= 0:
                            self._faults.remove(fault)
                    return fault
        return None


class RateLimiter:
    """A token bucket over every request: ``rate`` per second, bursts of up to one second's worth.

    ``rate`` ``None`` lets everything through. Refused requests take no token, so a client that
    keeps asking is held to the rate, not starved.
    """

    def __init__(self, rate: float | None = None) -> None:
        self._lock = threading.Lock()
        self._rate: float | None = None
        self._tokens = 0.0
        self._stamp = 0.0
        self.rate = rate

    @property
    def rate(self) -> float | None:
        """Requests per second allowed, or ``None`` (no limit). Setting it refills the bucket."""
        return self._rate

    @rate.setter
    def rate(self, value: float | None) -> None:
        if value is not None and not (value > 0 and math.isfinite(value)):
            raise ValueError("rate_limit must be a positive number of requests per second")
        with self._lock:
            self._rate = None if value is None else float(value)
            self._tokens = self.capacity
            self._stamp = time.monotonic()

    @property
    def capacity(self) -> float:
        """The largest burst: one second's worth of requests (at least one)."""
        return max(1.0, self._rate or 0.0)

    def take(self) -> float | None:
        """Let one request through (``None``), or return the seconds until it would be let through."""
        with self._lock:
            if self._rate is None:
                return None
            now = time.monotonic()
            self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return (1.0 - self._tokens) / self._rate

    def headers(self, wait: float) -> list[tuple[str, str]]:
        """``Retry-After`` and the IETF ``RateLimit`` headers the Hub sends with a 429."""
        rate = self._rate or 1.0
        # The Hub states its policy as q requests per w seconds, both integers.
        quota, window = (round(rate), 1) if rate >= 1 else (1, round(1 / rate))
        seconds = max(1, math.ceil(wait))
        return [
            ("Retry-After", str(seconds)),
            ("RateLimit", f'"requests";r=0;t={seconds}'),
            ("RateLimit-Policy", f'"token bucket";"requests";q={quota};w={window}'),
        ]


class ServerControls:
    """The settings a running server reads on every request."""

    def __init__(self, latency_ms: float = 0.0, rate_limit: float | None = None) -> None:
        self.latency_ms = float(latency_ms)
        self.page_size = 1000
        self.log = RequestLog()
        self.faults = FaultSet()
        self.limiter = RateLimiter(rate_limit)
