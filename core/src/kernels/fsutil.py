"""Small file-system helpers: atomic writes and path checks."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from kernels.errors import KernelsError


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def temp_file_in(directory: Path, name: str) -> Iterator[Path]:
    """A temporary path in ``directory`` (same file system, so ``os.replace`` is atomic); removed after."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".incomplete")
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def safe_relpath(path: str, *, what: str) -> PurePosixPath:
    """Return ``path`` as a relative POSIX path that cannot leave its base folder, or raise.

    Refuses absolute paths, ``..`` and ``.`` parts, backslashes, NUL and empty parts.
    """
    if not path or "\x00" in path or "\\" in path or path.startswith("/") or len(path) > 4096:
        raise KernelsError(f"refusing unsafe path {path!r} in {what}")
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts) or ":" in parts[0]:
        raise KernelsError(f"refusing unsafe path {path!r} in {what}")
    return PurePosixPath(path)
