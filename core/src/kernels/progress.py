"""Download progress: a bar on a terminal (files and bytes), plain lines in logs, nothing otherwise.

Downloads report to the *current* :class:`Progress`: the one a command installed with
:func:`reporting` (``kernels download`` shows one bar for all its kernels), or else, for a load on a
terminal, a bar of its own that appears only when the download lasts more than half a second (a
small kernel loads without one). ``HF_HUB_DISABLE_PROGRESS_BARS=1`` turns bars off, as it does for
``huggingface_hub``'s downloads; commands then print plain lines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

_TRUE = {"1", "true", "yes", "on"}


def bars_disabled() -> bool:
    """True when ``HF_HUB_DISABLE_PROGRESS_BARS`` is set to a true value."""
    return os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS", "").strip().lower() in _TRUE


def human_bytes(n: float) -> str:
    """``512 B``, ``1.5 kB``, ``12.3 MB``, ``1.2 GB`` (decimal units, as huggingface_hub shows)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


class Progress:
    """Counts files and bytes to fetch and fetched; thread-safe. This base class shows nothing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.files_total = 0
        self.bytes_total = 0
        self.files_done = 0
        self.bytes_done = 0
        self.started = time.monotonic()

    def add_total(self, files: int, nbytes: int) -> None:
        """More work became known: ``files`` files of ``nbytes`` bytes in all."""
        with self._lock:
            if not self.files_total:
                self.started = time.monotonic()  # speeds count from the first file, not setup
            self.files_total += files
            self.bytes_total += nbytes
        self._changed()

    def advance(self, *, files: int = 0, nbytes: int = 0) -> None:
        """Files finished and bytes received (negative when a download starts over)."""
        with self._lock:
            self.files_done += files
            self.bytes_done += nbytes
        self._changed()

    def note(self, line: str) -> None:
        """A line of its own (a kernel finished or failed); nothing in the base class."""

    def close(self) -> None:
        """The work is over: finish the display."""

    def _changed(self) -> None:
        pass


class Bar(Progress):
    """One line redrawn in place on a terminal: ``label  45% |####    | 630/1400 files  12.3/27.1
    MB  4.1 MB/s``. Drawn at most ten times a second, and only after ``delay`` seconds."""

    def __init__(self, label: str, stream: TextIO | None = None, *, delay: float = 0.0) -> None:
        super().__init__()
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self._drawn = 0.0
        self._visible = False
        self._closed = False
        self._draw_lock = threading.Lock()
        self._fill = "█" if "utf" in (getattr(self.stream, "encoding", "") or "").lower() else "#"

    def line(self, width: int) -> str:
        """The bar as it reads now, at most ``width`` characters."""
        with self._lock:
            files, files_total = self.files_done, self.files_total
            done, total = self.bytes_done, self.bytes_total
        elapsed = max(time.monotonic() - self.started, 1e-6)
        frac = done / total if total else (files / files_total if files_total else 0.0)
        frac = min(max(frac, 0.0), 1.0)
        speed = f"{human_bytes(done / elapsed)}/s"
        tail = (
            f" {files}/{files_total} files  {human_bytes(done)}/{human_bytes(total)}  {speed}"
            f"  {elapsed:.0f}s"
        )
        head = f"{self.label} {frac * 100:3.0f}% "
        room = width - len(head) - len(tail) - 2
        if room < 10:
            return (head + tail.strip())[:width]
        filled = int(room * frac)
        return f"{head}|{self._fill * filled}{' ' * (room - filled)}|{tail}"

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._closed or (not force and now - self._drawn < 0.1):
            return
        if not self._visible and now - self.started < self.delay:
            return
        # Threads report at once: one draws, the others skip (a forced draw waits its turn).
        if not self._draw_lock.acquire(blocking=force):
            return
        try:
            self._drawn = now
            self._visible = True
            width = max(20, shutil.get_terminal_size((100, 24)).columns - 1)
            self.stream.write("\r" + self.line(width) + "\033[K")
            self.stream.flush()
        finally:
            self._draw_lock.release()

    def _changed(self) -> None:
        self._draw()

    def note(self, line: str) -> None:
        """Print ``line`` above the bar."""
        if self._visible:
            self.stream.write("\r\033[K")
        self.stream.write(line + "\n")
        self._visible = False
        self._drawn = 0.0
        self._draw(force=True)

    def close(self) -> None:
        if self._visible:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
        self._closed = True


class Lines(Progress):
    """Plain lines for logs: one per :meth:`note`, and a summary on :meth:`close`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr

    def note(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.files_total:
            elapsed = time.monotonic() - self.started
            self.note(
                f"fetched {self.files_done}/{self.files_total} files, "
                f"{human_bytes(self.bytes_done)}, in {elapsed:.1f} s"
            )


def is_terminal(stream: TextIO | None) -> bool:
    """True when ``stream`` is an interactive terminal."""
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if isatty is not None else False
    except (OSError, ValueError):  # closed or detached
        return False


def for_command(label: str, stream: TextIO | None = None) -> Progress:
    """What a command shows: a :class:`Bar` on a terminal (unless bars are disabled), else
    :class:`Lines`."""
    out = stream if stream is not None else sys.stderr
    if is_terminal(out) and not bars_disabled():
        return Bar(label, out)
    return Lines(out)


_current: list[Progress] = []


@contextlib.contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Make ``progress`` the one every download in this process reports to, then close it."""
    _current.append(progress)
    try:
        yield progress
    finally:
        _current.remove(progress)
        progress.close()


@contextlib.contextmanager
def for_download(label: str) -> Iterator[Progress]:
    """The progress one variant download reports to: the current one (left open), else a bar of
    its own on a terminal (shown after half a second, closed at the end), else nothing."""
    if _current:
        yield _current[-1]
        return
    if bars_disabled() or not is_terminal(sys.stderr):
        yield Progress()
        return
    bar = Bar(label, delay=0.5)
    try:
        yield bar
    finally:
        bar.close()
