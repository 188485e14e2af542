"""Checking a cached variant's files against the hash in ``kernels.lock`` before import.

Every file under the variant folder counts (an added, removed or changed file changes the hash). A
successful check is remembered in ``<repo>/.kernels/verified/`` together with each file's size,
mtime and inode, and trusted again only while none of them changed. The memo is best-effort: a
read-only cache is verified on every load instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from kernels.cache import RepoCache
from kernels.errors import IntegrityError
from kernels.fsutil import try_write
from kernels.hashing import content_id, variant_hash


def _walk(folder: Path) -> list[tuple[str, Path]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            p = Path(dirpath) / name
            out.append((p.relative_to(folder).as_posix(), p))
    return sorted(out)


def _kind_hint(path: Path, known: dict[str, str], rel: str) -> str:
    """A content id of the right kind (sha1 or sha256) to compare this file with."""
    if rel in known:
        return known[rel]
    if path.is_symlink():
        name = os.path.basename(os.readlink(path))
        if len(name) in (40, 64):
            return name
    return "0" * 40


def _stat(p: Path) -> list[int]:
    st = p.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def verify_variant(rc: RepoCache, commit: str, variant: str, expected: str) -> None:
    """Raise ``IntegrityError`` naming the file unless the cached variant hashes to ``expected``."""
    folder = rc.variant_dir(commit, variant)
    files = _walk(folder)
    memo_path = rc.meta / "verified" / commit / f"{variant}.json"
    stats = {rel: _stat(p) for rel, p in files}
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
        if memo.get("hash") == expected and memo.get("stats") == stats:
            return
    except (OSError, ValueError):
        pass
    record = rc.completion_record(commit, variant) or {}
    known: dict[str, str] = record.get("files", {}) if isinstance(record.get("files"), dict) else {}
    digests = {rel: content_id(p, _kind_hint(p, known, rel)) for rel, p in files}
    actual = variant_hash(digests.items())
    if actual != expected:
        changed = sorted(
            rel for rel in set(digests) | set(known) if digests.get(rel) != known.get(rel)
        )
        culprit = ", ".join(changed[:5]) or "unknown file"
        rc.clear_complete(commit, variant)
        raise IntegrityError(
            f"cached files of {rc.repo_id}@{commit[:12]} build/{variant} do not match the lock "
            f"(changed: {culprit}); refusing to import. Run `kernels download` (online) to fetch "
            "a clean copy of what changed"
        )
    # Only saves the next load the hashing: a read-only or full cache loads without it.
    try_write(memo_path, json.dumps({"hash": expected, "stats": stats}, sort_keys=True))
