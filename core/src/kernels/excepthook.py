"""One line instead of a traceback when a ``load_kernel`` error is never caught.

A package that calls ``load_kernel`` at import time turns a missing download into an uncaught
:class:`~kernels.errors.NotInCacheError` deep inside ``import``; its traceback runs through importlib
and this library, while the message alone says what to run. :func:`install` wraps ``sys.excepthook``
(once, only after such an error was raised) so that an uncaught ``KernelsError`` prints as
``NotInCacheError: <message> (<file>:<line>)``, naming the line that called the library; every other
exception keeps the previous hook. The exit status stays 1. ``KERNELS_TRACEBACK=1`` keeps
tracebacks.
"""

from __future__ import annotations

import os
import sys
import threading
from types import TracebackType

from kernels.errors import KernelsError

_lock = threading.Lock()
_installed = False


def _calling_line(tb: TracebackType | None) -> str:
    """``file:line`` of the innermost frame outside this library (the caller of ``load_kernel``)."""
    where = ""
    while tb is not None:
        name = str(tb.tb_frame.f_globals.get("__name__", ""))
        if name != "kernels" and not name.startswith("kernels."):
            where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def install() -> None:
    """Print uncaught ``KernelsError`` s as one line from now on (idempotent; see the module)."""
    global _installed
    if os.environ.get("KERNELS_TRACEBACK", "") not in ("", "0"):
        return
    with _lock:
        if _installed:
            return
        previous = sys.excepthook

        def hook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
            if not isinstance(value, KernelsError):
                previous(kind, value, tb)
                return
            where = _calling_line(tb)
            suffix = f" ({where})" if where else ""
            print(f"{kind.__name__}: {value}{suffix}", file=sys.stderr)

        sys.excepthook = hook
        _installed = True
