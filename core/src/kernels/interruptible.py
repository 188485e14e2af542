"""A thread pool that Ctrl-C stops at once: its workers are daemon threads that check for a stop.

``concurrent.futures.ThreadPoolExecutor`` cannot be abandoned: leaving its ``with`` block, and
the interpreter's exit, wait for every running task, so Ctrl-C during a download would wait for
every transfer (minutes on a slow link) and then let them write their completion records.
:class:`InterruptiblePool` has the same ``submit``/``with`` shape, but when the block is left by
``KeyboardInterrupt`` (or any other non-``Exception``) it tells its workers to stop and returns at
once. Work checks :func:`check_interrupted` between steps (a chunk, a file); pools started inside
a worker inherit the stop, and daemon threads never hold the process's exit up.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, wait
from types import TracebackType
from typing import Any, TypeVar

from kernels.errors import Interrupted

R = TypeVar("R")

_local = threading.local()


def _stops() -> tuple[threading.Event, ...]:
    stops: tuple[threading.Event, ...] = getattr(_local, "stops", ())
    return stops


def check_interrupted() -> None:
    """Raise :class:`~kernels.errors.Interrupted` when a pool this work runs in was interrupted."""
    if any(stop.is_set() for stop in _stops()):
        raise Interrupted("interrupted: the download was stopped")


class InterruptiblePool:
    """Run submitted calls on up to ``max_workers`` daemon threads (see the module docs).

    Leaving the ``with`` block normally, or by an ``Exception``, cancels nothing that runs and
    waits for it (not-yet-started calls are cancelled on an exception); leaving it by
    ``KeyboardInterrupt`` stops the workers at their next :func:`check_interrupted` and waits
    for nothing.
    """

    def __init__(self, max_workers: int, *, name: str = "kernels-worker") -> None:
        self._max = max(1, max_workers)
        self._name = name
        self._stop = threading.Event()
        self._inherited = (*_stops(), self._stop)
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._futures: list[Future[Any]] = []

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        """Schedule ``fn(*args, **kwargs)``; return its future."""
        fut: Future[R] = Future()
        self._futures.append(fut)
        self._queue.put((fut, lambda: fn(*args, **kwargs)))
        if len(self._threads) < self._max:
            t = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
            )
            self._threads.append(t)
            t.start()
        return fut

    def _work(self) -> None:
        _local.stops = self._inherited
        while (item := self._queue.get()) is not None:
            fut, call = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(call())
            except BaseException as err:  # delivered to whoever waits on the future
                fut.set_exception(err)

    def _close(self) -> None:
        for _ in self._threads:
            self._queue.put(None)

    def _abandon(self) -> None:
        self._stop.set()
        for fut in self._futures:
            fut.cancel()
        self._close()

    def __enter__(self) -> InterruptiblePool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and not issubclass(exc_type, Exception):
            self._abandon()
            return
        if exc_type is not None:
            for fut in self._futures:
                fut.cancel()
        self._close()
        try:
            wait(self._futures)
        except BaseException:
            self._abandon()
            raise
