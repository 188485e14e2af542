"""Downloading one build variant into the cache: parallel, verified, resumable, all-or-nothing.

Each file is fetched with a single GET of its ``resolve/<commit>/<path>`` URL (no HEAD: the tree
listing already gave its size and content id), streamed to ``blobs/<content id>.incomplete``,
checked against the listing's size and content id, then moved into place. Files download in
parallel, as many at once as the host's throttle allows (:mod:`kernels.throttle`), and report to
the current progress display (:mod:`kernels.progress`). Only when every file of the variant is in
place does the completion record appear; an inter-process lock makes concurrent
processes download each file once. Ctrl-C stops the transfers at once and writes no record; what
they received is resumed by the next run. A full or read-only disk is reported as such, and
leaves no partial file.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kernels import http, progress
from kernels.cache import RepoCache
from kernels.envvars import env_number
from kernels.errors import FileSystemError, HubError, IntegrityError, KernelsError
from kernels.fsutil import fs_error, safe_relpath
from kernels.hashing import content_id, variant_hash
from kernels.hub import RemoteFile, endpoint
from kernels.interruptible import InterruptiblePool, check_interrupted
from kernels.progress import Progress
from kernels.throttle import concurrency


def max_file_size() -> int:
    """The largest file accepted from a listing (``KERNELS_MAX_FILE_SIZE``, default 16 GiB)."""
    return int(env_number("KERNELS_MAX_FILE_SIZE", 16 << 30, integer=True))


def variant_files(files: list[RemoteFile], variant: str) -> dict[str, RemoteFile]:
    """The files of ``variant`` in a ``build/`` listing, keyed by path relative to the variant.

    Refuses unsafe paths and absurd sizes, naming the offending entry.
    """
    prefix = f"build/{variant}/"
    out: dict[str, RemoteFile] = {}
    limit = max_file_size()
    for f in files:
        if not f.path.startswith(prefix):
            continue
        rel = str(safe_relpath(f.path[len(prefix) :], what=f"the listing of build/{variant}"))
        if f.size < 0 or f.size > limit:
            raise IntegrityError(f"refusing {f.path}: listed size {f.size} is out of bounds")
        digest = f.digest
        if len(digest) not in (40, 64) or any(c not in "0123456789abcdef" for c in digest):
            raise IntegrityError(f"refusing {f.path}: listed content id {digest!r} is malformed")
        out[rel] = f
    return out


def listing_hash(files: dict[str, RemoteFile]) -> str:
    """The lock hash of a variant from its listing alone."""
    return variant_hash((rel, f.digest) for rel, f in files.items())


def _in_place(blob: Path, f: RemoteFile) -> bool:
    """True when ``blob`` is there, readable and holds ``f``'s content (checked again: the
    variant is being (re)built, perhaps because someone changed the cache)."""
    try:
        if blob.stat().st_size != f.size or not os.access(blob, os.R_OK):
            return False
        return content_id(blob, f.digest) == f.digest
    except OSError:
        return False


@dataclass(frozen=True)
class _Batch:
    """What the files of one variant download share."""

    rc: RepoCache
    commit: str
    user_agent: str | dict[str, str] | None
    progress: Progress
    since: float
    """Monotonic start of the download: refusals are timed from it (or from later progress)."""
    stop: threading.Event
    """Set when another file failed: the others give up too."""


def file_url(rc: RepoCache, commit: str, path: str) -> str:
    """The ``resolve`` URL of ``path`` at ``commit``."""
    prefix = "" if rc.repo_type == "model" else f"{rc.repo_type}s/"
    return f"{endpoint()}/{prefix}{rc.repo_id}/resolve/{commit}/{quote(path)}"


def store_blob(rc: RepoCache, f: RemoteFile, tmp: Path, *, where: str, source: str) -> None:
    """Move ``tmp`` into place as ``f``'s blob if it has ``f``'s content id; else raise naming
    ``where`` (the file) and ``source`` (where its bytes came from)."""
    actual = content_id(tmp, f.digest)
    if actual != f.digest:
        raise IntegrityError(
            f"{where} does not match its listed content id ({actual} != {f.digest}); "
            f"refusing it ({source})"
        )
    blob = rc.blob(f.digest)
    _on_disk(blob, os.replace, tmp, blob)


def has_blob(rc: RepoCache, f: RemoteFile) -> bool:
    """True when ``f``'s blob is in the cache, readable, with ``f``'s content."""
    return _in_place(rc.blob(f.digest), f)


def _download_one(batch: _Batch, f: RemoteFile) -> None:
    """Put one verified blob in place (no-op when the right one is already there).

    The bytes go to ``blobs/<content id>.incomplete`` (``huggingface_hub``'s name, under its
    per-blob lock), so a transfer cut short by a crash, a kill or Ctrl-C is resumed by the next
    run; a leftover that turns out wrong is dropped and fetched again from the start.
    """
    rc = batch.rc
    blob = rc.blob(f.digest)
    if _in_place(blob, f):
        batch.progress.advance(files=1, nbytes=f.size)
        return
    with rc.blob_lock(f.digest):
        if blob.exists() and _in_place(blob, f):
            batch.progress.advance(files=1, nbytes=f.size)
            return
        part = blob.with_name(f"{f.digest}.incomplete")
        try:
            blob.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise fs_error(err, blob.parent) from err
        for stale in blob.parent.glob(f".{f.digest}.*.incomplete"):  # older releases' names
            with contextlib.suppress(OSError):
                stale.unlink()
        url = file_url(rc, batch.commit, f.path)
        where = f"{f.path} from {rc.repo_id}@{batch.commit}"
        try:
            resumed = _fetch_part(batch, f, part, url, where)
            if resumed and content_id(part, f.digest) != f.digest:
                part.unlink()  # a leftover from another run went wrong: start from scratch
                _fetch_part(batch, f, part, url, where)
            store_blob(rc, f, part, where=where, source=url)
        except (IntegrityError, FileSystemError):
            # Nothing half-written: wrong bytes, or bytes a full or read-only disk cut short.
            with contextlib.suppress(OSError):
                part.unlink()
            raise
    batch.progress.advance(files=1)


def _fetch_part(batch: _Batch, f: RemoteFile, part: Path, url: str, where: str) -> bool:
    """Complete ``part`` to ``f.size`` bytes, resuming from what it holds; ``True`` if it held
    bytes from before this call.

    A dropped connection resumes with a Range request from the bytes already received; failures
    are retried and refusals waited out as :class:`kernels.http.Retry` decides. A failed write is
    a :class:`~kernels.errors.FileSystemError` ("no space left on ..."), never a retry.
    """
    try:
        have = part.stat().st_size
    except FileNotFoundError:
        have = 0
    if have > f.size:
        have = 0
    resumed = have > 0
    batch.progress.advance(nbytes=have)
    if have == f.size and have:
        return resumed
    retry = http.Retry(url, f"download of {where}", since=batch.since, cancel=batch.stop)
    transport = http.transport_errors()
    best = have

    def received(total: int, n: int) -> None:
        nonlocal best
        batch.progress.advance(nbytes=n)
        if total > best:  # only new bytes count as progress
            best = total
            retry.progressed()

    while True:
        check_interrupted()
        extra = {"Range": f"bytes={have}-"} if have else {}
        with retry.attempt():
            try:
                with http.stream(url, extra_headers=extra, user_agent=batch.user_agent) as r:
                    if not retry.answered(r.status_code, r.headers):
                        continue
                    if r.status_code >= 400:
                        if retry.failures:
                            raise HubError(retry.give_up_message())
                        raise HubError(
                            f"{retry.what} failed: HTTP {r.status_code} from {url}"
                            + http.refusal_hint(r.status_code)
                        )
                    if have and r.status_code != 206:
                        batch.progress.advance(nbytes=-have)
                        have = 0  # the server ignored the Range header: start over
                    have = _receive(r, part, have, f.size, where, url, received)
            except KernelsError:
                raise
            except transport as err:  # dropped or refused: resume from what we have
                if retry.failed(f"{type(err).__name__}: {err}"):
                    continue
                raise HubError(retry.give_up_message()) from err
        if have < f.size:
            if retry.failed(f"connection closed after {have} of {f.size} bytes"):
                continue
            raise HubError(retry.give_up_message())
        return resumed


def _receive(
    r: Any,
    part: Path,
    have: int,
    size: int,
    where: str,
    url: str,
    received: Callable[[int, int], None],
) -> int:
    """Append the body of ``r`` to ``part`` from offset ``have``; return the new length.

    Only bytes actually written count (each chunk is reported as ``received(total, n)``), so a
    failed write is never resumed past; writes are unbuffered, so no failure surfaces later (at
    close) disguised as a dropped connection.
    """
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT, 0o666)
    except OSError as err:
        raise fs_error(err, part) from err
    try:
        _on_disk(part, os.ftruncate, fd, have)
        _on_disk(part, os.lseek, fd, have, os.SEEK_SET)
        for chunk in r.iter_bytes():
            check_interrupted()
            if have + len(chunk) > size:
                raise IntegrityError(
                    f"{where} is larger than its listed size {size}; refusing it ({url})"
                )
            view = memoryview(chunk)
            while view:
                view = view[_on_disk(part, os.write, fd, view) :]
            have += len(chunk)
            received(have, len(chunk))
        # On disk before the blob is moved into place, so that a completion record written later
        # never outlives its bytes (a crash would otherwise leave a torn blob of the right name).
        _on_disk(part, os.fsync, fd)
    finally:
        with contextlib.suppress(OSError):  # nothing is buffered: closing loses nothing
            os.close(fd)
    return have


def download_files(
    rc: RepoCache,
    commit: str,
    files: list[RemoteFile],
    *,
    user_agent: str | dict[str, str] | None = None,
    label: str = "",
) -> None:
    """Fetch and verify the blobs of ``files`` in parallel (as many at once as the host's throttle
    allows), reporting to the current progress; the first failure stops the rest and is raised.
    Ctrl-C stops them all at once."""
    if not files:
        return
    with progress.for_download(label or rc.repo_id) as shown:
        shown.add_total(len(files), sum(f.size for f in files))
        batch = _Batch(rc, commit, user_agent, shown, time.monotonic(), threading.Event())
        with InterruptiblePool(min(concurrency(), len(files))) as pool:
            futures = [pool.submit(_download_one, batch, f) for f in files]
            try:
                for fut in as_completed(futures):
                    fut.result()
            except BaseException:
                batch.stop.set()
                for fut in futures:
                    fut.cancel()
                raise


def _on_disk(path: Path, op: Any, *args: Any) -> Any:
    """``op(*args)``, its failure as a ``FileSystemError`` naming ``path``."""
    try:
        return op(*args)
    except OSError as err:
        raise fs_error(err, path) from err


def _link(rc: RepoCache, commit: str, path: str, digest: str) -> None:
    dest = rc.snapshot(commit) / safe_relpath(path, what=f"{rc.repo_id}@{commit}")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        target = os.path.relpath(rc.blob(digest), dest.parent)
        if dest.is_symlink() and os.readlink(dest) == target:
            return
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.link")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, dest)
    except OSError as err:
        raise fs_error(err, dest) from err


def ensure_variant(
    rc: RepoCache,
    commit: str,
    variant: str,
    listing: list[RemoteFile],
    *,
    expected_hash: str | None = None,
    user_agent: str | dict[str, str] | None = None,
) -> Path:
    """Make ``build/<variant>`` of ``commit`` complete in the cache and return its folder.

    With ``expected_hash`` (from a lock), the listing must hash to it before anything is fetched.
    Downloads happen at most once across threads and processes; a failure leaves no completion
    record, so the variant is never imported half-written.
    """
    files = variant_files(listing, variant)
    if not files:
        raise KernelsError(f"{rc.repo_id}@{commit} has no files in build/{variant}")
    vhash = listing_hash(files)
    if expected_hash is not None and vhash != expected_hash:
        raise IntegrityError(
            f"build/{variant} of {rc.repo_id}@{commit} on the Hub hashes to {vhash}, "
            f"but the lock says {expected_hash}; refusing it"
        )
    done = rc.completion(commit, variant)
    if done is not None and done.get("hash") == vhash:
        return rc.variant_dir(commit, variant)
    with rc.lock(f"{commit}-{variant}"):
        done = rc.completion(commit, variant)
        if done is not None and done.get("hash") == vhash:
            return rc.variant_dir(commit, variant)
        download_files(
            rc,
            commit,
            list(files.values()),
            user_agent=user_agent,
            label=f"{rc.repo_id} {variant}",
        )
        check_interrupted()
        finish_variant(rc, commit, variant, files)
    return rc.variant_dir(commit, variant)


def finish_variant(rc: RepoCache, commit: str, variant: str, files: dict[str, RemoteFile]) -> None:
    """Link the variant's blobs into the snapshot and write its completion record (the caller
    holds the variant's lock and has every blob in place, verified)."""
    for f in files.values():
        _link(rc, commit, f.path, f.digest)
    record: dict[str, Any] = {
        "hash": listing_hash(files),
        "files": {rel: f.digest for rel, f in sorted(files.items())},
        "sizes": {rel: f.size for rel, f in sorted(files.items())},
    }
    damage = rc.damaged_file(commit, variant, record)
    if damage is not None:
        raise KernelsError(
            f"{damage[0]} of {rc.repo_id}@{commit[:12]} {damage[1]} right after its download; "
            f"check the owner and mode of {rc.dir}"
        )
    check_interrupted()  # Ctrl-C since: the record is not written
    rc.mark_complete(commit, variant, record)


def fetch_file(
    rc: RepoCache, commit: str, f: RemoteFile, *, user_agent: str | dict[str, str] | None = None
) -> Path:
    """Download one listed file into the blob store (verified against its content id) and return
    the blob's path; a verified blob already there costs nothing. ``ensure_variant`` later reuses it.
    """
    # Silent: the file is counted (as already there) when its variant is downloaded.
    batch = _Batch(rc, commit, user_agent, Progress(), time.monotonic(), threading.Event())
    _download_one(batch, f)
    return rc.blob(f.digest)
