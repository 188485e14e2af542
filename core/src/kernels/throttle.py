"""Pacing the requests to one Hub: adaptive concurrency, shared pauses, and the clock of progress.

Every host gets one :class:`Throttle` per process, which every request to it goes through:

- **Concurrency adapts** (additive increase, multiplicative decrease): at most
  ``KERNELS_HTTP_CONCURRENCY`` requests are in flight; a 429 or 503 answer halves the number
  allowed (once per burst of refusals), and each success adds back a fraction, so that a full
  window of successes adds one.
- **Pauses are honoured and shared**: a ``Retry-After`` stops every request to that host until it
  has passed, in this process and, through a small file under ``<cache>/.locks/kernels-pause/``, in
  every process of the machine that uses the same cache, so that they do not spend the Hub's
  allowance on refused requests.
- **Progress is clocked**: the last moment the host sent something useful; :mod:`kernels.http`
  gives up on refusals only after ``KERNELS_HTTP_STALL_TIMEOUT`` seconds without progress.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit


def concurrency() -> int:
    """Requests in flight to one host from one process, at most (``KERNELS_HTTP_CONCURRENCY``,
    default 16)."""
    try:
        return max(1, int(os.environ.get("KERNELS_HTTP_CONCURRENCY", "16")))
    except ValueError:
        return 16


def stall_timeout() -> float:
    """Seconds a request may keep being refused (429/503) without any progress from the host before
    it fails (``KERNELS_HTTP_STALL_TIMEOUT``, default 300: the Hub's rate-limit window)."""
    try:
        return max(0.0, float(os.environ.get("KERNELS_HTTP_STALL_TIMEOUT", "300")))
    except ValueError:
        return 300.0


def host_of(url: str) -> str:
    """``scheme://host:port`` of ``url``: what requests share a throttle by."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


class SharedPause:
    """A "do not ask before" time for one host, shared by the processes of one cache.

    The file holds a Unix time; it is written atomically and only ever moved later, and read
    again only when its modification time changes. A cache that cannot be written (read-only,
    say) just does not share.
    """

    def __init__(self, host: str) -> None:
        self.name = re.sub(r"[^A-Za-z0-9.-]+", "_", host.split("://", 1)[-1]) or "host"
        self._seen: tuple[str, int] | None = None
        self._until = 0.0

    def path(self) -> Path:
        """The file, under the current cache (read at each use: tests and users may move it)."""
        from kernels.cache import hub_cache_dir

        return hub_cache_dir() / ".locks" / "kernels-pause" / self.name

    def until(self) -> float:
        """The shared pause's end, in Unix time (0 when there is none)."""
        path = self.path()
        try:
            stamp = (str(path), os.stat(path).st_mtime_ns)
        except OSError:
            return 0.0
        if stamp != self._seen:
            try:
                self._until = float(path.read_text(encoding="ascii").strip() or 0)
            except (OSError, ValueError):
                self._until = 0.0
            self._seen = stamp
        return self._until

    def extend(self, until: float) -> None:
        """Make the shared pause last at least until Unix time ``until``."""
        if until <= self.until() + 0.01:
            return
        from kernels.fsutil import atomic_write

        try:
            atomic_write(self.path(), f"{until:.3f}\n")
        except OSError:
            pass


class Throttle:
    """The shared pacing state of every request from this process to one host."""

    def __init__(self, host: str) -> None:
        self.host = host
        self._cond = threading.Condition()
        self._allowed = float(concurrency())
        self._in_flight = 0
        self._pause_until = 0.0  # monotonic
        self._cut_at = -math.inf  # monotonic time of the last decrease
        self._shared = SharedPause(host)
        self.last_progress = time.monotonic()
        """Monotonic time of the last useful answer or body bytes from the host."""
        self.policy: str | None = None
        """The limit the host last stated (``RateLimit-Policy``), in words."""

    @property
    def allowed(self) -> int:
        """Requests allowed in flight right now."""
        return max(1, int(self._allowed))

    def pause_left(self) -> float:
        """Seconds until requests may go out again (0 when not paused)."""
        now = time.monotonic()
        shared = self._shared.until() - time.time()
        # A pause from another process is never trusted for longer than one may wait in all.
        shared = min(shared, stall_timeout())
        return max(0.0, self._pause_until - now, shared)

    def acquire(
        self, not_before: float = 0.0, cancel: threading.Event | None = None
    ) -> float | None:
        """Wait for a free slot, for pauses to pass and until monotonic time ``not_before``; take
        the slot and return the monotonic time the request starts. ``None`` (no slot taken) when
        ``cancel`` is set meanwhile."""
        with self._cond:
            while True:
                if cancel is not None and cancel.is_set():
                    return None
                now = time.monotonic()
                wait = max(self.pause_left(), not_before - now)
                limit = min(self.allowed, concurrency())
                if wait <= 0 and self._in_flight < limit:
                    self._in_flight += 1
                    return now
                # Woken by a released slot; a cancel is noticed within half a second.
                timeout = wait if wait > 0 else None
                if cancel is not None:
                    timeout = 0.5 if timeout is None else min(timeout, 0.5)
                self._cond.wait(timeout)

    def release(self) -> None:
        """Give the slot back."""
        with self._cond:
            self._in_flight -= 1
            self._cond.notify_all()

    def progressed(self) -> None:
        """The host sent something useful (body bytes)."""
        self.last_progress = time.monotonic()

    def succeeded(self) -> None:
        """A request was answered without refusal: progress, and a little more concurrency."""
        with self._cond:
            self.last_progress = time.monotonic()
            before = self.allowed
            self._allowed = min(float(concurrency()), self._allowed + 1.0 / self._allowed)
            if self.allowed > before:
                self._cond.notify_all()

    def refused(self, started: float, wait: float, policy: str | None) -> None:
        """A request that started at monotonic ``started`` was refused and told to wait ``wait`` s.

        Halves the concurrency unless a refusal of a request started after it already did (one
        burst of refusals is one signal), and pauses every request to the host for ``wait`` s.
        """
        with self._cond:
            now = time.monotonic()
            if started > self._cut_at:
                self._allowed = max(1.0, self._allowed / 2)
                self._cut_at = now
            self._pause_until = max(self._pause_until, now + wait)
            if policy:
                self.policy = policy
        self._shared.extend(time.time() + wait)


_throttles: dict[str, Throttle] = {}
_registry_lock = threading.Lock()


def throttle_for(url: str) -> Throttle:
    """The process's throttle for the host of ``url``."""
    host = host_of(url)
    with _registry_lock:
        throttle = _throttles.get(host)
        if throttle is None:
            throttle = _throttles[host] = Throttle(host)
        return throttle
