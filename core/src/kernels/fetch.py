"""Downloading one build variant into the cache: parallel, verified, resumable, all-or-nothing.

Each file is fetched with a single GET of its ``resolve/<commit>/<path>`` URL (no HEAD: the tree
listing already gave its size and content id), streamed to a temporary file beside its blob,
checked against the listing's size and content id, then moved into place. Files download in
parallel, as many at once as the host's throttle allows (:mod:`kernels.throttle`), and report to
the current progress display (:mod:`kernels.progress`). Only when every file of the
variant is in place does the completion record appear; an inter-process lock makes concurrent
processes download each file once.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kernels import http, progress
from kernels.cache import RepoCache
from kernels.errors import HubError, IntegrityError, KernelsError
from kernels.fsutil import safe_relpath, temp_file_in
from kernels.hashing import content_id, variant_hash
from kernels.hub import RemoteFile, endpoint
from kernels.progress import Progress
from kernels.throttle import concurrency

_CHUNK = 1 << 20


def max_file_size() -> int:
    """The largest file accepted from a listing (``KERNELS_MAX_FILE_SIZE``, default 16 GiB)."""
    return int(os.environ.get("KERNELS_MAX_FILE_SIZE", str(16 << 30)))


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
    os.replace(tmp, rc.blob(f.digest))


def has_blob(rc: RepoCache, f: RemoteFile) -> bool:
    """True when ``f``'s blob is in the cache with its listed size."""
    blob = rc.blob(f.digest)
    return blob.is_file() and blob.stat().st_size == f.size


def _download_one(batch: _Batch, f: RemoteFile) -> None:
    """Put one verified blob in place (no-op when a verified blob is already there).

    A dropped connection resumes with a Range request from the bytes already received; failures
    are retried and refusals waited out as :class:`kernels.http.Retry` decides.
    """
    rc, commit = batch.rc, batch.commit
    if has_blob(rc, f):
        batch.progress.advance(files=1, nbytes=f.size)
        return
    url = file_url(rc, commit, f.path)
    where = f"{f.path} from {rc.repo_id}@{commit}"
    retry = http.Retry(url, f"download of {where}", since=batch.since, cancel=batch.stop)
    transport = http.transport_errors()
    with temp_file_in(rc.blob(f.digest).parent, f.digest) as tmp:
        have = best = 0
        while True:
            extra = {"Range": f"bytes={have}-"} if have else {}
            with retry.attempt():
                try:
                    with http.stream(url, extra_headers=extra, user_agent=batch.user_agent) as r:
                        if not retry.answered(r.status_code, r.headers):
                            continue
                        if r.status_code >= 400:
                            if retry.failures:
                                raise HubError(retry.give_up_message())
                            raise HubError(f"{retry.what} failed: HTTP {r.status_code} from {url}")
                        if have and r.status_code != 206:
                            batch.progress.advance(nbytes=-have)
                            have = 0  # the server ignored the Range header: start over
                        with open(tmp, "r+b" if have else "wb") as out:
                            out.seek(have)
                            out.truncate()
                            for chunk in r.iter_bytes(_CHUNK):
                                have += len(chunk)
                                if have > f.size:
                                    raise IntegrityError(
                                        f"{where} is larger than its listed size {f.size}; "
                                        f"refusing it ({url})"
                                    )
                                out.write(chunk)
                                batch.progress.advance(nbytes=len(chunk))
                                if have > best:  # only new bytes count as progress
                                    best = have
                                    retry.progressed()
                except transport as err:  # dropped or refused: resume from what we have
                    if retry.failed(f"{type(err).__name__}: {err}"):
                        continue
                    raise HubError(retry.give_up_message()) from err
            if have < f.size:
                if retry.failed(f"connection closed after {have} of {f.size} bytes"):
                    continue
                raise HubError(retry.give_up_message())
            break
        store_blob(rc, f, tmp, where=where, source=url)
    batch.progress.advance(files=1)


def download_files(
    rc: RepoCache,
    commit: str,
    files: list[RemoteFile],
    *,
    user_agent: str | dict[str, str] | None = None,
    label: str = "",
) -> None:
    """Fetch and verify the blobs of ``files`` in parallel (as many at once as the host's throttle
    allows), reporting to the current progress; the first failure stops the rest and is raised."""
    if not files:
        return
    with progress.for_download(label or rc.repo_id) as shown:
        shown.add_total(len(files), sum(f.size for f in files))
        batch = _Batch(rc, commit, user_agent, shown, time.monotonic(), threading.Event())
        with ThreadPoolExecutor(max_workers=min(concurrency(), len(files))) as pool:
            futures = [pool.submit(_download_one, batch, f) for f in files]
            try:
                for fut in as_completed(futures):
                    fut.result()
            except BaseException:
                batch.stop.set()
                for fut in futures:
                    fut.cancel()
                raise


def _link(rc: RepoCache, commit: str, path: str, digest: str) -> None:
    dest = rc.snapshot(commit) / safe_relpath(path, what=f"{rc.repo_id}@{commit}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    target = os.path.relpath(rc.blob(digest), dest.parent)
    if dest.is_symlink() and os.readlink(dest) == target:
        return
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.link")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink(target, tmp)
    os.replace(tmp, dest)


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
    }
    rc.mark_complete(commit, variant, record)
