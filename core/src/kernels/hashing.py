"""Content ids: git blob ids, sha256, and the per-variant hash recorded in ``kernels.lock``.

The variant hash is upstream's ``git_lfs_concat``: sha256 over every file of the variant, sorted by
its path relative to the variant folder, of the path's UTF-8 bytes followed by the raw bytes of the
file's content id (the LFS sha256 when the file is in LFS, else its git blob sha1). It can be computed
from a tree listing alone, and from the files on disk.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

HASH_TYPE = "git_lfs_concat"
_CHUNK = 1 << 20


def git_blob_sha1(path: Path) -> str:
    """The git blob id (sha1 of ``blob <size>\\0`` + content) of a file."""
    h = hashlib.sha1(usedforsecurity=False)
    h.update(b"blob %d\x00" % path.stat().st_size)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """The sha256 of a file's content (what LFS names it by)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def content_id(path: Path, expected: str) -> str:
    """The content id of ``path`` in the same kind as ``expected`` (64 hex: sha256, else blob sha1)."""
    return file_sha256(path) if len(expected) == 64 else git_blob_sha1(path)


def variant_hash(files: Iterable[tuple[str, str]]) -> str:
    """``sha256-<hex>`` over ``(path relative to the variant, content id hex)`` pairs."""
    m = hashlib.sha256()
    for rel, digest in sorted((rel.encode("utf-8"), d) for rel, d in files):
        m.update(rel)
        m.update(bytes.fromhex(digest))
    return f"sha256-{m.hexdigest()}"
