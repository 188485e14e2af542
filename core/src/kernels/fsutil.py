"""Small file-system helpers: atomic writes, file-system errors in words, path checks.

Every file this library writes goes through :func:`atomic_write` (downloads follow the same
rules in :mod:`kernels.fetch`): a temporary file beside the target, created with mode ``0o666``
so that the umask applies as for any other program's files (``mkstemp``'s ``0o600`` would make a
cache built by root unreadable to the user who runs the app), fsynced, then renamed over the
target. Rewriting a file keeps its mode. A failure leaves the target as it was, no temporary
behind, and a message that says what happened ("no space left on ...")."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from kernels.errors import FileSystemError, KernelsError

_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def describe_os_error(err: OSError, path: Path | str | None = None) -> str:
    """One line saying what went wrong with ``path`` (default: the error's file) and what to do."""
    named = path if path is not None else err.filename
    code = err.errno
    if named is None:
        return str(err.strerror or err)
    where = str(named)
    if code in _NO_SPACE:
        return f"no space left on {where}; free some space and try again"
    if code == errno.EROFS:
        return f"{where} is on a read-only file system; use a writable location"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied for {where}; check its owner and mode (or run as its owner)"
    if code == errno.ENOTDIR:
        return f"{where}: a part of this path is a file, not a folder"
    if code == errno.EISDIR:
        return f"{where} is a folder, not a file"
    if code == errno.ENOENT:
        return f"{where} does not exist"
    return f"{where}: {err.strerror or err}"


def fs_error(err: OSError, path: Path | str | None = None) -> FileSystemError:
    """``err`` as a :class:`~kernels.errors.FileSystemError` whose message names ``path``."""
    if isinstance(err, FileSystemError):
        return err
    return FileSystemError(err.errno, describe_os_error(err, path), str(path or err.filename or ""))


def _new_file(directory: Path, name: str, suffix: str) -> tuple[int, Path]:
    """Create a fresh, empty file beside ``name`` (mode 0o666 less the umask); return its fd."""
    for _ in range(100):
        tmp = directory / f".{name}.{secrets.token_hex(4)}{suffix}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(directory))


@contextlib.contextmanager
def temp_file_in(directory: Path, name: str) -> Iterator[Path]:
    """A fresh empty file in ``directory`` (same file system, so ``os.replace`` of it is atomic;
    mode 0o666 less the umask), removed afterwards unless it was moved away."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = _new_file(directory, name, ".incomplete")
    except OSError as err:
        raise fs_error(err, directory) from err
    os.close(fd)
    try:
        yield tmp
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every file system lets a folder be opened or synced.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _keep_mode_and_owner(fd: int, path: Path, old: os.stat_result) -> None:
    if hasattr(os, "fchmod"):
        os.fchmod(fd, old.st_mode & 0o7777)
    else:  # Windows before 3.13: only the read-only bit exists
        os.chmod(path, old.st_mode & 0o7777)
    if hasattr(os, "fchown") and (old.st_uid, old.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):  # only root may; others keep their own
            os.fchown(fd, old.st_uid, old.st_gid)


def atomic_write(path: Path, data: bytes | str, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    A new file gets the umask's mode (0644 under 022); an existing file keeps its mode (and,
    where allowed, its owner). On any
    failure ``path`` is left byte for byte as it was and a
    :class:`~kernels.errors.FileSystemError` says what went wrong ("no space left on ...").
    ``durable`` (the default, for users' files) fsyncs the data and the rename; cache
    bookkeeping, which a crash can only make incomplete, passes ``False``.
    """
    raw = data.encode("utf-8") if isinstance(data, str) else data
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            old: os.stat_result | None = os.stat(path)
        except FileNotFoundError:
            old = None
        fd, tmp = _new_file(path.parent, path.name, ".tmp")
        with os.fdopen(fd, "wb") as f:
            if old is not None:
                _keep_mode_and_owner(f.fileno(), tmp, old)
            f.write(raw)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        if durable:
            _fsync_dir(path.parent)
    except OSError as err:
        raise fs_error(err, path) from err
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def try_write(path: Path, data: bytes | str) -> bool:
    """:func:`atomic_write` for memos that only save work later: ``False`` instead of raising
    when the folder is read-only, full or not ours."""
    try:
        atomic_write(path, data, durable=False)
    except OSError:
        return False
    return True


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
