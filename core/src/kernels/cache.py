"""The on-disk cache: Hugging Face's hub cache layout, plus this library's small bookkeeping.

Files land exactly where ``huggingface_hub`` puts them (``<repo>/blobs/<content id>``,
``<repo>/snapshots/<commit>/<path>`` as relative symlinks, ``<repo>/refs/<name>``), so its own tools
see them. Bookkeeping lives in ``<repo>/.kernels/`` which ``huggingface_hub`` ignores:
``listings/<commit>.json`` (the ``build/`` tree at that commit), ``refs.json`` (branches and tags, for
resolving versions offline) and ``complete/<commit>/<variant>.json``, written only after every file
of the variant is in place and verified: a variant without it is never imported. A record is only
trusted while every file it lists is still there, readable and of its recorded size (one ``stat``
per file), so a snapshot deleted by ``hf cache rm`` is noticed and repaired. Refs and listings are
memos of Hub answers: a read-only or full cache still loads what it holds without them.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from kernels.errors import KernelsError
from kernels.fsutil import atomic_write, fs_error, safe_relpath, try_write
from kernels.hub import REPO_TYPES, Refs, RemoteFile, is_commit_sha, validate_repo_id


def hub_cache_dir() -> Path:
    """The hub cache folder: ``HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huggingface" / "hub"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


class RepoCache:
    """The cache folder of one repo of one type."""

    def __init__(self, repo_id: str, repo_type: str, root: Path | None = None) -> None:
        validate_repo_id(repo_id)
        self.repo_id = repo_id
        self.repo_type = repo_type
        self.root = root or hub_cache_dir()
        self.folder_name = "--".join([f"{repo_type}s", *repo_id.split("/")])
        self.dir = self.root / self.folder_name
        self.meta = self.dir / ".kernels"

    def __repr__(self) -> str:
        return f"RepoCache({self.repo_id!r}, {self.repo_type!r}, {str(self.dir)!r})"

    def exists(self) -> bool:
        """True when anything of this repo is cached."""
        return self.dir.is_dir()

    def snapshot(self, commit: str) -> Path:
        """The snapshot folder of ``commit``."""
        if not is_commit_sha(commit):
            raise ValueError(f"not a commit id: {commit!r}")
        return self.dir / "snapshots" / commit

    def blob(self, digest: str) -> Path:
        """Where the content with id ``digest`` is stored."""
        if not all(c in "0123456789abcdef" for c in digest) or len(digest) not in (40, 64):
            raise ValueError(f"not a content id: {digest!r}")
        return self.dir / "blobs" / digest

    def read_ref(self, name: str) -> str | None:
        """The commit a cached ref points at, or ``None``."""
        try:
            sha = (self.dir / "refs" / safe_relpath(name, what="a ref name")).read_text().strip()
        except (OSError, ValueError):
            return None
        return sha if is_commit_sha(sha) else None

    def write_ref(self, name: str, commit: str) -> None:
        """Record that ref ``name`` points at ``commit`` (as ``huggingface_hub`` does).

        Best-effort: a read-only or full cache keeps what it has.
        """
        path = self.dir / "refs" / safe_relpath(name, what="a ref name")
        if self.read_ref(name) != commit:
            try_write(path, commit)
        else:
            try:
                os.utime(path)  # confirmed by the Hub just now: restarts its KERNELS_REF_MAX_AGE
            except OSError:
                pass

    def ref_age(self, name: str) -> float | None:
        """Seconds since ref ``name`` was last confirmed by the Hub, or ``None`` if not cached."""
        try:
            path = self.dir / "refs" / safe_relpath(name, what="a ref name")
            return time.time() - path.stat().st_mtime
        except (OSError, KernelsError):
            return None

    def save_refs(self, refs: Refs) -> None:
        """Keep the branches and tags for offline version resolution; also write ``refs/<name>``.

        Best-effort, like :meth:`write_ref`.
        """
        try_write(self.meta / "refs.json", json.dumps(refs.to_json(), indent=1, sort_keys=True))
        for name, sha in {**refs.branches, **refs.tags}.items():
            try:
                self.write_ref(name, sha)
            except Exception:
                continue  # a ref name that is not a safe path is only kept in refs.json

    def load_refs(self) -> Refs | None:
        """The branches and tags saved by :meth:`save_refs`, or ``None``."""
        data = _read_json(self.meta / "refs.json")
        return Refs.from_json(data) if isinstance(data, dict) else None

    def save_listing(self, commit: str, files: list[RemoteFile]) -> None:
        """Keep the ``build/`` listing of ``commit`` (immutable, so cached for good); best-effort."""
        payload = json.dumps([f.to_json() for f in files], indent=0, sort_keys=True)
        try_write(self.meta / "listings" / f"{self.snapshot(commit).name}.json", payload)

    def load_listing(self, commit: str) -> list[RemoteFile] | None:
        """The listing saved for ``commit``, or ``None``."""
        data = _read_json(self.meta / "listings" / f"{self.snapshot(commit).name}.json")
        if not isinstance(data, list):
            return None
        try:
            return [RemoteFile.from_json(d) for d in data]
        except (KeyError, TypeError, ValueError):
            return None

    def _marker(self, commit: str, variant: str) -> Path:
        return (
            self.meta / "complete" / commit / f"{safe_relpath(variant, what='a variant name')}.json"
        )

    def completion_record(self, commit: str, variant: str) -> dict[str, Any] | None:
        """The completion record as written, without checking the files it lists, or ``None``."""
        data = _read_json(self._marker(self.snapshot(commit).name, variant))
        return data if isinstance(data, dict) else None

    def damaged_file(
        self, commit: str, variant: str, record: dict[str, Any]
    ) -> tuple[str, str] | None:
        """The first file ``record`` lists that is not as it was written, and how: ``("build/<v>/x",
        "is gone" | "is unreadable" | "changed size")``; ``None`` when all are in place.

        Cheap (a ``stat`` and an access check per file, no hashing): content is checked when the
        file is downloaded, and against the lock by :mod:`kernels.verify`.
        """
        files, sizes = record.get("files"), record.get("sizes", {})
        if not isinstance(files, dict) or not files or not isinstance(sizes, dict):
            return f"build/{variant}", "is gone"
        # Plain strings: this runs on every load, and pathlib's joins would cost more than the
        # stats. The paths are only stat'ed, never opened, so the record's names need no check.
        folder = str(self.variant_dir(commit, variant))
        for rel in sorted(files):
            path = os.path.join(folder, rel)
            try:
                size = os.stat(path).st_size
            except (OSError, ValueError):
                return f"build/{variant}/{rel}", "is gone"
            if size != sizes.get(rel, size):
                return f"build/{variant}/{rel}", "changed size"
            if not os.access(path, os.R_OK):
                return f"build/{variant}/{rel}", "is unreadable"
        return None

    def completion(self, commit: str, variant: str) -> dict[str, Any] | None:
        """The completion record of a downloaded, verified variant whose files are all still in
        place (see :meth:`damaged_file`), or ``None``."""
        record = self.completion_record(commit, variant)
        if record is None or self.damaged_file(commit, variant, record) is not None:
            return None
        return record

    def damage(self, commit: str, variant: str) -> tuple[str, str] | None:
        """What :meth:`damaged_file` says about the variant's recorded files, if it has a record."""
        record = self.completion_record(commit, variant)
        return None if record is None else self.damaged_file(commit, variant, record)

    def damage_note(self, commit: str, variant: str) -> str:
        """For messages about a variant that is not usable from the cache: which of its files
        changed since it was complete (e.g. `` (build/x/_ops.py is gone since ...)``), or ``""``."""
        damage = self.damage(commit, variant)
        if damage is None:
            return ""
        return f" ({damage[0]} {damage[1]} since it was downloaded: the cache was changed)"

    def mark_complete(self, commit: str, variant: str, record: dict[str, Any]) -> None:
        """Record that every file of ``variant`` at ``commit`` is in place and verified."""
        atomic_write(
            self._marker(self.snapshot(commit).name, variant), json.dumps(record, sort_keys=True)
        )

    def clear_complete(self, commit: str, variant: str) -> None:
        """Forget a completion record (its files changed); best-effort on a read-only cache."""
        try:
            self._marker(self.snapshot(commit).name, variant).unlink()
        except OSError:
            pass

    def variant_dir(self, commit: str, variant: str) -> Path:
        """The variant's folder inside the snapshot of ``commit``."""
        return self.snapshot(commit) / "build" / safe_relpath(variant, what="a variant name")

    def blob_lock(self, digest: str) -> AbstractContextManager[None]:
        """The inter-process lock ``huggingface_hub`` takes to write blob ``digest`` (its own
        path, so both libraries can fill one cache at once)."""
        return self._file_lock(f"{self.blob(digest).name}.lock")

    def lock(self, name: str) -> AbstractContextManager[None]:
        """An inter-process lock for ``name`` under ``<cache>/.locks/<repo folder>/``.

        A cache where it cannot be taken (read-only, not ours) raises ``FileSystemError``.
        """
        return self._file_lock(f"kernels-{name}.lock")

    @contextlib.contextmanager
    def _file_lock(self, name: str) -> Iterator[None]:
        from filelock import FileLock

        path = self.root / ".locks" / self.folder_name / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = FileLock(str(path))
            lock.acquire()
        except OSError as err:
            raise fs_error(err, path.parent) from err
        try:
            yield
        finally:
            lock.release()


def cached_repos(repo_id: str) -> list[RepoCache]:
    """The cache folders that exist for ``repo_id``, kernel repos first."""
    return [rc for t in REPO_TYPES if (rc := RepoCache(repo_id, t)).exists()]
