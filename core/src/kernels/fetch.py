"""Downloading one build variant into the cache: parallel, verified, resumable, all-or-nothing.

Each file is fetched with a single GET of its ``resolve/<commit>/<path>`` URL (no HEAD: the tree
listing already gave its size and content id), streamed to a temporary file beside its blob,
checked against the listing's size and content id, then moved into place. Only when every file of the
variant is in place does the completion record appear; an inter-process lock makes concurrent
processes download each file once.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

from kernels import http
from kernels.cache import RepoCache
from kernels.errors import HubError, IntegrityError, KernelsError
from kernels.fsutil import safe_relpath, temp_file_in
from kernels.hashing import content_id, variant_hash
from kernels.hub import RemoteFile, endpoint

MAX_WORKERS = 8
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


def _download_one(
    rc: RepoCache, commit: str, f: RemoteFile, user_agent: str | dict[str, str] | None
) -> None:
    """Put one verified blob in place (no-op when a verified blob is already there).

    A dropped connection resumes with a Range request from the bytes already received; 429 and
    5xx answers are retried with bounded backoff (``Retry-After`` honoured).
    """
    blob = rc.blob(f.digest)
    if blob.is_file() and blob.stat().st_size == f.size:
        return
    prefix = "" if rc.repo_type == "model" else f"{rc.repo_type}s/"
    url = f"{endpoint()}/{prefix}{rc.repo_id}/resolve/{commit}/{quote(f.path)}"
    where = f"{f.path} from {rc.repo_id}@{commit}"
    tries = http.attempts()
    transport = http.transport_errors()
    last_error = "no attempt made"
    with temp_file_in(blob.parent, f.digest) as tmp:
        have = 0
        for attempt in range(tries):
            extra = {"Range": f"bytes={have}-"} if have else {}
            try:
                with http.stream(url, extra_headers=extra, user_agent=user_agent) as r:
                    if r.status_code in http.RETRY_STATUSES:
                        last_error = f"HTTP {r.status_code}"
                        time.sleep(http.retry_wait(attempt, r.headers.get("Retry-After")))
                        continue
                    if r.status_code >= 400:
                        raise HubError(
                            f"download of {where} failed: HTTP {r.status_code} from {url}"
                        )
                    if have and r.status_code != 206:
                        have = 0  # the server ignored the Range header: start over
                    with open(tmp, "r+b" if have else "wb") as out:
                        out.seek(have)
                        out.truncate()
                        for chunk in r.iter_bytes(_CHUNK):
                            have += len(chunk)
                            if have > f.size:
                                raise IntegrityError(
                                    f"{where} is larger than its listed size {f.size}; refusing it ({url})"
                                )
                            out.write(chunk)
            except transport as err:  # dropped or refused: resume from what we have
                last_error = f"{type(err).__name__}: {err}"
                time.sleep(http.retry_wait(attempt))
                continue
            if have < f.size:
                last_error = f"connection closed after {have} of {f.size} bytes"
                continue
            break
        else:
            raise HubError(
                f"download of {where} failed after {tries} attempts ({last_error}): {url}"
            )
        actual = content_id(tmp, f.digest)
        if actual != f.digest:
            raise IntegrityError(
                f"{where} does not match its listed content id ({actual} != {f.digest}); "
                f"refusing it ({url})"
            )
        os.replace(tmp, blob)


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
        todo = list(files.values())
        with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(todo))) as pool:
            for fut in [pool.submit(_download_one, rc, commit, f, user_agent) for f in todo]:
                fut.result()
        for f in todo:
            _link(rc, commit, f.path, f.digest)
        record: dict[str, Any] = {
            "hash": vhash,
            "files": {rel: f.digest for rel, f in sorted(files.items())},
        }
        rc.mark_complete(commit, variant, record)
    return rc.variant_dir(commit, variant)


def fetch_file(
    rc: RepoCache, commit: str, f: RemoteFile, *, user_agent: str | dict[str, str] | None = None
) -> Path:
    """Download one listed file into the blob store (verified against its content id) and return
    the blob's path; a verified blob already there costs nothing. ``ensure_variant`` later reuses it.
    """
    _download_one(rc, commit, f, user_agent)
    return rc.blob(f.digest)
