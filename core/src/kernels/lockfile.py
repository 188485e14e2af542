"""The ``kernels.lock`` format: reading (ours and upstream's two formats) and writing.

Ours is a JSON object, written with sorted keys and two-space indents so that diffs are one line per
change::

    {
      "hash-type": "git_lfs_concat",
      "kernels": {
        "org/name": {
          "commit": "<40 hex>",
          "ref": "v1",
          "repo-type": "kernel",
          "spec": {"version": 1},
          "variants": {"torch213-cxx11-cpu-x86_64-linux": {"hash": "sha256-<hex>"}}
        }
      },
      "lock-version": 1
    }

A kernel that depends on other kernels (``kernel-depends`` in its metadata) carries their entries,
of the same form, under ``"depends": {"org/dep": {...}}``.

Upstream <= 0.16 wrote ``[{"repo_id", "sha", "variants": {v: {"hash", "hash_type"}}}]`` and 0.17
``[{"dependency": {"repo-id", "version"|"revision"}, "lock": {"commit"}}]`` (no hashes: such entries
load unverified by hash, only by the listing's content ids).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernels.errors import KernelsError, LockfileError
from kernels.fsutil import atomic_write
from kernels.hashing import HASH_TYPE
from kernels.hub import is_commit_sha, validate_repo_id

LOCK_NAME = "kernels.lock"
LOCK_VERSION = 1


@dataclass(frozen=True)
class LockedKernel:
    """One locked dependency."""

    repo_id: str
    commit: str
    spec: dict[str, Any] = field(default_factory=dict)
    """The requested spec: ``{"version": 1}``, ``{"version": ">=0.1"}`` or ``{"revision": "main"}``."""
    variants: dict[str, str] = field(default_factory=dict)
    """Variant name -> ``sha256-<hex>`` hash; empty for upstream 0.17 locks (no hashes)."""
    ref: str | None = None
    repo_type: str | None = None
    depends: dict[str, LockedKernel] = field(default_factory=dict)
    """The locked kernels this one depends on (``kernel-depends``), by repo id."""

    def to_json(self) -> dict[str, Any]:
        """Our on-disk form of the entry."""
        d: dict[str, Any] = {
            "commit": self.commit,
            "spec": self.spec,
            "variants": {v: {"hash": h} for v, h in sorted(self.variants.items())},
        }
        if self.ref is not None:
            d["ref"] = self.ref
        if self.repo_type is not None:
            d["repo-type"] = self.repo_type
        if self.depends:
            d["depends"] = {r: k.to_json() for r, k in sorted(self.depends.items())}
        return d

    def tree(self) -> list[LockedKernel]:
        """This entry and, recursively, the entries it depends on (depth first)."""
        out = [self]
        for dep in self.depends.values():
            out.extend(dep.tree())
        return out


@dataclass(frozen=True)
class Lock:
    """A parsed ``kernels.lock``."""

    kernels: dict[str, LockedKernel]
    path: Path | None = None
    format: str = "kernels-1"
    """``kernels-1`` (ours), ``upstream-0.16`` or ``upstream-0.17``."""

    def get(self, repo_id: str) -> LockedKernel:
        """The entry for ``repo_id`` (a dependency of the project, else of one of its kernels);
        raise ``LockfileError`` naming the lock and what it holds."""
        entry = self.kernels.get(repo_id)
        if entry is None:
            nested = [e for top in self.kernels.values() for e in top.tree()[1:]]
            entry = next((e for e in nested if e.repo_id == repo_id), None)
        if entry is None:
            held = ", ".join(sorted(self.kernels)) or "nothing"
            where = self.path or "the lock"
            raise LockfileError(
                f"{repo_id} is not in {where} (it locks: {held}); add it to "
                "[tool.kernels.dependencies] and run `kernels lock`"
            )
        return entry

    def dependency(self, parent: LockedKernel, repo_id: str, spec: dict[str, Any]) -> LockedKernel:
        """The entry locking ``repo_id`` (asked for with ``spec``) as a dependency of ``parent``:
        ``parent``'s own ``depends``, else (upstream locks are flat) the lock's entry for it."""
        entry = parent.depends.get(repo_id) or self.kernels.get(repo_id)
        if entry is None or (entry.spec and entry.spec != spec):
            where = self.path or "the lock"
            raise LockfileError(
                f"{parent.repo_id} depends on {repo_id} {spec}, which {where} does not lock; "
                f"run `kernels lock --upgrade {parent.repo_id}` to lock the kernels it depends on"
            )
        return entry

    def dumps(self) -> str:
        """Our deterministic JSON text for this lock."""
        doc = {
            "hash-type": HASH_TYPE,
            "kernels": {r: k.to_json() for r, k in sorted(self.kernels.items())},
            "lock-version": LOCK_VERSION,
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def write(self, path: Path) -> None:
        """Write atomically (readers see the old or the new file, never a mix)."""
        atomic_write(path, self.dumps())


def _fail(where: str, msg: str) -> LockfileError:
    return LockfileError(f"{where}: {msg}; fix it or run `kernels lock` to rewrite it")


def _commit(value: object, where: str) -> str:
    if not isinstance(value, str) or not is_commit_sha(value):
        raise _fail(where, f"commit must be 40 lowercase hex digits, got {value!r}")
    return value


def _repo(value: object, where: str) -> str:
    try:
        return validate_repo_id(value)
    except KernelsError as err:
        raise _fail(where, str(err)) from None


def _hash(value: object, where: str) -> str:
    ok = isinstance(value, str) and value.startswith("sha256-") and len(value) == 71
    if not ok or any(c not in "0123456789abcdef" for c in str(value)[7:]):
        raise _fail(where, f"hash must be 'sha256-' and 64 hex digits, got {value!r}")
    return str(value)


def _parse_ours(doc: dict[str, Any], where: str) -> dict[str, LockedKernel]:
    if doc.get("lock-version") != LOCK_VERSION:
        raise _fail(
            where,
            f"unsupported lock-version {doc.get('lock-version')!r} (this library reads {LOCK_VERSION})",
        )
    if doc.get("hash-type", HASH_TYPE) != HASH_TYPE:
        raise _fail(where, f"unsupported hash-type {doc.get('hash-type')!r}")
    kernels = doc.get("kernels")
    if not isinstance(kernels, dict):
        raise _fail(where, "'kernels' must be an object")
    return _parse_entries(kernels, f"{where} kernels")


def _parse_entries(kernels: dict[str, Any], path: str) -> dict[str, LockedKernel]:
    out: dict[str, LockedKernel] = {}
    for repo_id, e in kernels.items():
        w = f"{path}[{repo_id!r}]"
        _repo(repo_id, w)
        if not isinstance(e, dict):
            raise _fail(w, "entry must be an object")
        unknown = sorted(set(e) - {"commit", "spec", "variants", "ref", "repo-type", "depends"})
        if unknown:
            raise _fail(w, f"unknown field(s) {', '.join(unknown)}")
        spec = e.get("spec", {})
        if (
            not isinstance(spec, dict)
            or len(spec) != 1
            or next(iter(spec)) not in ("version", "revision")
        ):
            raise _fail(w, f"spec must be {{'version': ...}} or {{'revision': ...}}, got {spec!r}")
        variants = e.get("variants", {})
        if not isinstance(variants, dict):
            raise _fail(w, "variants must be an object")
        hashes: dict[str, str] = {}
        for v, vd in variants.items():
            if not isinstance(vd, dict):
                raise _fail(f"{w} variants[{v!r}]", "must be an object with 'hash'")
            hashes[v] = _hash(vd.get("hash"), f"{w} variants[{v!r}]")
        ref, repo_type = e.get("ref"), e.get("repo-type")
        if ref is not None and not isinstance(ref, str):
            raise _fail(w, "ref must be a string")
        if repo_type not in (None, "kernel", "model"):
            raise _fail(w, f"repo-type must be 'kernel' or 'model', got {repo_type!r}")
        depends = e.get("depends", {})
        if not isinstance(depends, dict):
            raise _fail(w, "depends must be an object of 'org/name' entries")
        nested = _parse_entries(depends, f"{w} depends")
        out[repo_id] = LockedKernel(
            repo_id, _commit(e.get("commit"), w), spec, hashes, ref, repo_type, nested
        )
    return out


def _parse_upstream(doc: list[Any], where: str) -> tuple[dict[str, LockedKernel], str]:
    out: dict[str, LockedKernel] = {}
    fmt = "upstream-0.16"
    for i, e in enumerate(doc):
        w = f"{where} entry {i}"
        if not isinstance(e, dict):
            raise _fail(w, "must be an object")
        if "dependency" in e or "lock" in e:
            fmt = "upstream-0.17"
            dep, lock = e.get("dependency"), e.get("lock")
            if not isinstance(dep, dict) or not isinstance(lock, dict):
                raise _fail(w, "needs 'dependency' and 'lock' objects")
            repo_id = _repo(dep.get("repo-id"), w)
            spec = {k: dep[k] for k in ("version", "revision") if k in dep}
            out[repo_id] = LockedKernel(repo_id, _commit(lock.get("commit"), w), spec, {})
        else:
            repo_id = _repo(e.get("repo_id"), w)
            variants = e.get("variants", {})
            if not isinstance(variants, dict):
                raise _fail(w, "variants must be an object")
            hashes = {}
            for v, vd in variants.items():
                if not isinstance(vd, dict) or vd.get("hash_type", HASH_TYPE) != HASH_TYPE:
                    raise _fail(f"{w} variants[{v!r}]", f"needs hash and hash_type {HASH_TYPE!r}")
                hashes[v] = _hash(vd.get("hash"), f"{w} variants[{v!r}]")
            out[repo_id] = LockedKernel(repo_id, _commit(e.get("sha"), w), {}, hashes)
    return out, fmt


def parse_lock(text: str, *, where: str = LOCK_NAME, path: Path | None = None) -> Lock:
    """Parse lock text in any supported format; ``LockfileError`` names ``where`` and the entry."""
    try:
        doc = json.loads(text)
    except ValueError as err:
        raise _fail(where, f"not valid JSON ({err})") from None
    if isinstance(doc, dict):
        return Lock(_parse_ours(doc, where), path, "kernels-1")
    if isinstance(doc, list):
        kernels, fmt = _parse_upstream(doc, where)
        return Lock(kernels, path, fmt)
    raise _fail(where, "must be a JSON object (or an upstream list)")


def read_lock(path: Path) -> Lock:
    """Read and parse the lock at ``path``; ``LockfileError`` when missing or malformed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockfileError(
            f"{path} does not exist; run `kernels lock {Path(path).parent}`"
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise LockfileError(f"{path}: cannot read it ({err})") from None
    return parse_lock(text, where=str(path), path=Path(path))
