"""Bare git repositories, one per Hub repo, read and written through the ``git`` command.

Layout: ``ROOT/{models,datasets,spaces,kernels}/{org}/{name}.git``. Reads go through a small pool of
long-lived ``git cat-file --batch`` processes per repository, plus caches of immutable data keyed by
object id (a commit's tree never changes, nor does a blob). Refs are read from the filesystem
(loose refs and ``packed-refs``) on every call, so changes made by other git processes show at once.
Writes build commits with plumbing (``hash-object``, a temporary index, ``write-tree``,
``commit-tree``) and move refs with ``update-ref NEW OLD``, serialized per repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Literal, TypeVar

from kernels.server.names import TYPE_DIRS, is_sha

ZERO_OID = "0" * 40
IDENTITY_NAME = "kernels-server"
IDENTITY_EMAIL = "kernels-server@localhost"

#: Blobs up to this size are read through ``cat-file --batch`` and cached; larger ones are streamed.
STREAM_THRESHOLD = 16 * 1024 * 1024
#: Total size of the blob cache (shared by all repositories: blobs are content-addressed).
BLOB_CACHE_BYTES = 256 * 1024 * 1024
#: ``cat-file --batch`` processes per repository (concurrent readers beyond that wait).
CATFILE_PROCESSES = 4
_CHUNK = 1024 * 1024

K = TypeVar("K")
V = TypeVar("V")


class GitError(Exception):
    """A git command failed."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr: str = "") -> None:
        super().__init__(f"{message}: {stderr.strip()}" if stderr.strip() else message)
        self.returncode = returncode
        self.stderr = stderr


class CommitError(Exception):
    """A commit, branch or tag operation was refused (the message is meant for the client)."""


class BranchNotFound(CommitError):
    pass


class ParentMismatch(CommitError):
    pass


class MissingPath(CommitError):
    pass


class PathConflict(CommitError):
    pass


class RefConflict(CommitError):
    """The ref exists already, or moved while we worked."""


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every git command: no user or system config, fixed identity."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k == "GIT_EXEC_PATH"}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
        GIT_AUTHOR_NAME=IDENTITY_NAME,
        GIT_AUTHOR_EMAIL=IDENTITY_EMAIL,
        GIT_COMMITTER_NAME=IDENTITY_NAME,
        GIT_COMMITTER_EMAIL=IDENTITY_EMAIL,
    )
    if extra:
        env.update(extra)
    return env


def run_git(
    git_dir: Path | None,
    args: Sequence[str],
    *,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """Run one git command and return its stdout; raise :class:`GitError` when it fails."""
    cmd = ["git"] if git_dir is None else ["git", "--git-dir", str(git_dir)]
    cmd.extend(args)
    proc = subprocess.run(cmd, input=input, capture_output=True, env=git_env(env), check=False)
    if proc.returncode != 0:
        raise GitError(
            f"git {args[0]} failed",
            returncode=proc.returncode,
            stderr=proc.stderr.decode("utf-8", "replace"),
        )
    return proc.stdout


class LRU(Generic[K, V]):
    """A small thread-safe LRU mapping, bounded by item count and optionally by total weight."""

    def __init__(
        self, max_items: int, *, max_weight: int = 0, weight: Callable[[V], int] | None = None
    ) -> None:
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()
        self._max_items = max_items
        self._max_weight = max_weight
        self._weight = weight
        self._total = 0

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None and self._weight is not None:
                self._total -= self._weight(old)
            self._data[key] = value
            if self._weight is not None:
                self._total += self._weight(value)
            while len(self._data) > self._max_items or (
                self._max_weight and self._total > self._max_weight and len(self._data) > 1
            ):
                _, evicted = self._data.popitem(last=False)
                if self._weight is not None:
                    self._total -= self._weight(evicted)


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One entry of a commit's tree, as ``git ls-tree -r -t -l`` lists it."""

    path: str
    kind: str  # "blob", "tree", or "commit" (a submodule)
    oid: str
    size: int  # 0 for trees
    mode: str


class Tree:
    """All entries of one commit's tree, indexed by path and by folder."""

    def __init__(self, entries: list[TreeEntry]) -> None:
        self.entries = entries
        self._by_path = {e.path: e for e in entries}
        self._children: dict[str, list[TreeEntry]] = {"": []}
        for e in entries:
            if e.kind == "commit":
                continue
            self._children.setdefault(e.path.rpartition("/")[0], []).append(e)

    def get(self, path: str) -> TreeEntry | None:
        return self._by_path.get(path)

    def files(self) -> list[TreeEntry]:
        return [e for e in self.entries if e.kind == "blob"]

    def listing(self, path: str, recursive: bool) -> list[TreeEntry] | None:
        """Entries under folder ``path`` ("" = root); ``None`` when it is not a folder."""
        if path:
            entry = self._by_path.get(path)
            if entry is None or entry.kind != "tree":
                return None
        if not recursive:
            return list(self._children.get(path, []))
        prefix = f"{path}/" if path else ""
        return [e for e in self.entries if e.kind != "commit" and e.path.startswith(prefix)]


@dataclass(frozen=True, slots=True)
class CommitMeta:
    oid: str
    tree: str
    parents: tuple[str, ...]
    author: str
    timestamp: int  # committer time, seconds since the epoch
    message: str


@dataclass(frozen=True)
class Refs:
    branches: dict[str, str]  # name -> commit
    tags: dict[str, str]  # name -> commit (annotated tags peeled)
    raw: dict[str, str]  # full ref name -> object id it stores


@dataclass(frozen=True)
class FileOp:
    """One change of a commit."""

    kind: Literal["add", "delete_file", "delete_folder"]
    path: str
    content: bytes = b""


def _parse_commit(oid: str, data: bytes) -> CommitMeta:
    head, _, message = data.partition(b"\n\n")
    tree = ""
    parents: list[str] = []
    author = ""
    timestamp = 0
    for line in head.decode("utf-8", "replace").split("\n"):
        key, _, value = line.partition(" ")
        if key == "tree":
            tree = value
        elif key == "parent":
            parents.append(value)
        elif key == "author":
            author = value.split(" <", 1)[0]
        elif key == "committer":
            parts = value.rsplit(" ", 2)
            if len(parts) == 3 and parts[1].lstrip("-").isdigit():
                timestamp = int(parts[1])
    return CommitMeta(
        oid, tree, tuple(parents), author, timestamp, message.decode("utf-8", "replace")
    )


class _CatFile:
    """One ``git cat-file --batch`` process."""

    def __init__(self, git_dir: Path) -> None:
        self._proc = subprocess.Popen(
            ["git", "--git-dir", str(git_dir), "cat-file", "--batch"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=git_env(),
        )

    def read(self, oid: str) -> tuple[str, bytes] | None:
        if not is_sha(oid):  # anything else would be parsed as a revision expression
            raise ValueError(f"not an object id: {oid!r}")
        stdin, stdout = self._proc.stdin, self._proc.stdout
        assert stdin is not None and stdout is not None
        stdin.write(oid.encode("ascii") + b"\n")
        stdin.flush()
        header = stdout.readline()
        if not header.endswith(b"\n"):
            raise GitError("git cat-file --batch stopped")
        parts = header.split()
        if len(parts) != 3:
            return None  # "<oid> missing"
        size = int(parts[2])
        data = stdout.read(size)
        if len(data) != size or stdout.read(1) != b"\n":
            raise GitError("git cat-file --batch: short read")
        return parts[1].decode("ascii"), data

    def close(self) -> None:
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()
            self._proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        finally:
            if self._proc.stdout is not None:
                self._proc.stdout.close()


class _CatFilePool:
    """Up to ``size`` ``cat-file --batch`` processes, started on demand."""

    def __init__(self, git_dir: Path, size: int) -> None:
        self._git_dir = git_dir
        self._idle: list[_CatFile] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    def read(self, oid: str, *, retry_missing: bool = False) -> tuple[str, bytes] | None:
        with self._slots:
            with self._lock:
                proc = self._idle.pop() if self._idle else None
            if proc is None:
                proc = _CatFile(self._git_dir)
            try:
                result = proc.read(oid)
                if result is None and retry_missing:
                    # Belt and braces: a fresh process sees objects written since the old one started.
                    proc.close()
                    proc = _CatFile(self._git_dir)
                    result = proc.read(oid)
            except BaseException:
                proc.close()
                raise
            with self._lock:
                if not self._closed:
                    self._idle.append(proc)
                    proc = None
            if proc is not None:
                proc.close()
            return result

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for proc in idle:
            proc.close()


class GitRepo:
    """One bare repository."""

    def __init__(self, path: Path, store: GitStore) -> None:
        self.path = path
        self._store = store
        self.write_lock = threading.Lock()
        self._cat = _CatFilePool(path, CATFILE_PROCESSES)
        self._trees: LRU[str, Tree] = LRU(256)
        self._commits: LRU[str, CommitMeta] = LRU(4096)
        self._peeled: LRU[str, str] = LRU(4096)  # object id -> commit ("" when none)
        self._history: LRU[str, tuple[str, ...]] = LRU(64)

    def git(
        self, *args: str, input: bytes | None = None, env: Mapping[str, str] | None = None
    ) -> bytes:
        return run_git(self.path, args, input=input, env=env)

    def close(self) -> None:
        self._cat.close()

    # ---------------------------------------------------------------- reads

    def read_object(self, oid: str, *, expected: bool = True) -> tuple[str, bytes] | None:
        return self._cat.read(oid, retry_missing=expected)

    def default_branch(self) -> str:
        try:
            head = (self.path / "HEAD").read_text("utf-8").strip()
        except OSError:
            return "main"
        if head.startswith("ref: refs/heads/"):
            return head[len("ref: refs/heads/") :]
        return "main"

    def refs(self) -> Refs:
        """Branches and tags, read from ``packed-refs`` and the loose ref files."""
        raw: dict[str, str] = {}
        packed_peeled: dict[str, str] = {}
        try:
            packed = (self.path / "packed-refs").read_bytes().decode("utf-8", "replace")
        except OSError:
            packed = ""
        last: str | None = None
        for line in packed.splitlines():
            if line.startswith("^") and last is not None:
                packed_peeled[last] = line[1:].strip()
                continue
            oid, _, name = line.partition(" ")
            last = None
            if is_sha(oid) and name.startswith(("refs/heads/", "refs/tags/")):
                raw[name] = oid
                last = name
        loose: dict[str, str] = {}
        for sub in ("heads", "tags"):
            base = self.path / "refs" / sub
            for dirpath, _dirnames, filenames in os.walk(base):
                for filename in filenames:
                    if filename.endswith(".lock"):
                        continue
                    full = os.path.join(dirpath, filename)
                    try:
                        with open(full, "rb") as f:
                            content = f.read(100).decode("ascii", "replace").strip()
                    except OSError:
                        continue
                    if is_sha(content):
                        loose[os.path.relpath(full, self.path).replace(os.sep, "/")] = content
        for name, oid in loose.items():
            if raw.get(name) != oid:
                packed_peeled.pop(name, None)
            raw[name] = oid
        branches: dict[str, str] = {}
        tags: dict[str, str] = {}
        for name, oid in raw.items():
            if name.startswith("refs/heads/"):
                branches[name[len("refs/heads/") :]] = oid
            else:
                commit = packed_peeled.get(name) or self.peel(oid)
                if commit:
                    tags[name[len("refs/tags/") :]] = commit
        return Refs(branches, tags, raw)

    def peel(self, oid: str) -> str | None:
        """The commit an object id designates (following annotated tags), or ``None``."""
        cached = self._peeled.get(oid)
        if cached is not None:
            return cached or None
        current = oid
        result = ""
        for _ in range(10):
            obj = self.read_object(current)
            if obj is None:
                return None
            kind, data = obj
            if kind == "commit":
                result = current
                break
            if kind != "tag":
                break
            first = data.split(b"\n", 1)[0].decode("ascii", "replace")
            if not first.startswith("object ") or not is_sha(first[7:]):
                break
            current = first[7:]
        self._peeled.put(oid, result)
        return result or None

    def resolve(self, revision: str) -> str | None:
        """The commit of a branch, tag, ``refs/heads/x``, ``refs/tags/x`` or full sha."""
        if is_sha(revision):
            return revision if self.commit_meta(revision) is not None else None
        refs = self.refs()
        if revision.startswith("refs/heads/"):
            return refs.branches.get(revision[len("refs/heads/") :])
        if revision.startswith("refs/tags/"):
            return refs.tags.get(revision[len("refs/tags/") :])
        return refs.branches.get(revision) or refs.tags.get(revision)

    def commit_meta(self, oid: str) -> CommitMeta | None:
        meta = self._commits.get(oid)
        if meta is not None:
            return meta
        obj = self.read_object(oid, expected=False)
        if obj is None or obj[0] != "commit":
            return None
        meta = _parse_commit(oid, obj[1])
        self._commits.put(oid, meta)
        return meta

    def tree(self, commit: str) -> Tree:
        """The whole tree of a commit (cached: it never changes)."""
        tree = self._trees.get(commit)
        if tree is not None:
            return tree
        if not is_sha(commit):
            raise ValueError(f"not an object id: {commit!r}")
        out = self.git("ls-tree", "-r", "-t", "-l", "-z", "--full-tree", commit)
        entries: list[TreeEntry] = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, kind, oid, size = meta.decode("ascii").split()
            path = raw_path.decode("utf-8", "surrogateescape")
            entries.append(TreeEntry(path, kind, oid, int(size) if size.isdigit() else 0, mode))
        tree = Tree(entries)
        self._trees.put(commit, tree)
        return tree

    def blob(self, oid: str) -> bytes:
        """A blob's content (whole, in memory; cached)."""
        cache = self._store.blob_cache
        data = cache.get(oid)
        if data is not None:
            return data
        obj = self.read_object(oid)
        if obj is None or obj[0] != "blob":
            raise GitError(f"blob {oid} is missing")
        data = obj[1]
        if len(data) <= STREAM_THRESHOLD:
            cache.put(oid, data)
        return data

    def blob_chunks(self, oid: str, size: int, start: int, length: int) -> Iterator[bytes]:
        """``length`` bytes of a blob of ``size`` bytes, from ``start``."""
        if size <= STREAM_THRESHOLD:
            data = self.blob(oid)
            yield data[start : start + length]
            return
        proc = subprocess.Popen(
            ["git", "--git-dir", str(self.path), "cat-file", "blob", oid],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=git_env(),
        )
        assert proc.stdout is not None
        try:
            skip = start
            while skip:
                chunk = proc.stdout.read(min(skip, _CHUNK))
                if not chunk:
                    raise GitError(f"blob {oid}: short read")
                skip -= len(chunk)
            remaining = length
            while remaining:
                chunk = proc.stdout.read(min(remaining, _CHUNK))
                if not chunk:
                    raise GitError(f"blob {oid}: short read")
                remaining -= len(chunk)
                yield chunk
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.stdout.close()
            proc.wait()

    def history(self, commit: str) -> tuple[str, ...]:
        """Commit ids reachable from ``commit``, newest first."""
        cached = self._history.get(commit)
        if cached is not None:
            return cached
        shas = tuple(self.git("rev-list", commit, "--").decode("ascii").split())
        self._history.put(commit, shas)
        return shas

    # ---------------------------------------------------------------- writes

    def write_blobs(self, contents: Sequence[bytes]) -> list[str]:
        """Store blobs (``git hash-object -w``) and return their ids, in order."""
        if not contents:
            return []
        with tempfile.TemporaryDirectory(dir=self._store.tmp_dir) as tmp:
            paths = []
            for i, content in enumerate(contents):
                path = os.path.join(tmp, str(i))
                with open(path, "wb") as f:
                    f.write(content)
                paths.append(path)
            out = self.git(
                "hash-object",
                "-w",
                "--no-filters",
                "--stdin-paths",
                input="\n".join(paths).encode(),
            )
        oids = out.decode("ascii").split()
        if len(oids) != len(contents):
            raise GitError("git hash-object returned the wrong number of ids")
        return oids

    def write_tree(self, files: Mapping[str, tuple[str, str]]) -> str:
        """Write the tree holding ``files`` (path -> (mode, oid)) through a temporary index."""
        with tempfile.TemporaryDirectory(dir=self._store.tmp_dir) as tmp:
            env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
            if files:
                info = b"".join(
                    f"{mode} {oid}\t{path}".encode("utf-8", "surrogateescape") + b"\0"
                    for path, (mode, oid) in files.items()
                )
                self.git("update-index", "--add", "-z", "--index-info", input=info, env=env)
            return self.git("write-tree", env=env).decode("ascii").strip()

    def commit_tree(self, tree: str, parents: Sequence[str], message: str) -> str:
        args = ["commit-tree", "--no-gpg-sign", tree]
        for parent in parents:
            args += ["-p", parent]
        return self.git(*args, input=message.encode()).decode("ascii").strip()

    def update_ref(self, ref: str, new: str, old: str | None) -> None:
        """Point ``ref`` at ``new`` if it still points at ``old`` (``None``: must not exist)."""
        try:
            self.git("update-ref", "-m", "kernels-server", ref, new, old or ZERO_OID)
        except GitError as e:
            raise RefConflict(f"{ref} could not be updated (it moved or exists)") from e

    def delete_ref(self, ref: str, old: str) -> None:
        try:
            self.git("update-ref", "-d", ref, old)
        except GitError as e:
            raise RefConflict(f"{ref} could not be deleted") from e

    def commit_files(
        self,
        branch: str,
        ops: Sequence[FileOp],
        message: str,
        *,
        parent_commit: str | None = None,
    ) -> str:
        """Commit ``ops`` on top of ``branch`` and move the branch; return the new commit id."""
        adds = [op for op in ops if op.kind == "add"]
        oids = iter(self.write_blobs([op.content for op in adds]))  # objects: safe without the lock
        with self.write_lock:
            refs = self.refs()
            head = refs.branches.get(branch)
            if head is None and (refs.branches or branch != self.default_branch()):
                raise BranchNotFound(branch)
            if parent_commit is not None and (head is None or not head.startswith(parent_commit)):
                raise ParentMismatch(
                    f"parent commit {parent_commit} is not the head of {branch} ({head})"
                )
            files: dict[str, tuple[str, str]] = {}
            if head is not None:
                files = {
                    e.path: (e.mode, e.oid) for e in self.tree(head).entries if e.kind != "tree"
                }
            for op in ops:
                if op.kind == "add":
                    mode = files.get(op.path, ("100644", ""))[0]
                    files[op.path] = (
                        mode if mode in ("100644", "100755") else "100644",
                        next(oids),
                    )
                elif op.kind == "delete_file":
                    if op.path not in files:
                        raise MissingPath(f"A file with this name doesn't exist: {op.path}")
                    del files[op.path]
                else:
                    prefix = op.path + "/"
                    victims = [p for p in files if p.startswith(prefix)]
                    if not victims:
                        raise MissingPath(f"A folder with this name doesn't exist: {op.path}")
                    for p in victims:
                        del files[p]
            folders = {p.rsplit("/", i)[0] for p in files for i in range(1, p.count("/") + 1)}
            clash = sorted(folders.intersection(files))
            if clash:
                raise PathConflict(f"{clash[0]!r} would be both a file and a folder")
            tree = self.write_tree(files)
            new = self.commit_tree(tree, [head] if head else [], message)
            self.update_ref(f"refs/heads/{branch}", new, head)
            return new

    def create_branch(self, name: str, commit: str) -> None:
        with self.write_lock:
            if name in self.refs().branches:
                raise RefConflict(f"Branch {name} already exists")
            self.update_ref(f"refs/heads/{name}", commit, None)

    def delete_branch(self, name: str) -> bool:
        with self.write_lock:
            old = self.refs().raw.get(f"refs/heads/{name}")
            if old is None:
                return False
            self.delete_ref(f"refs/heads/{name}", old)
            return True

    def create_tag(self, name: str, commit: str, message: str | None) -> None:
        with self.write_lock:
            if f"refs/tags/{name}" in self.refs().raw:
                raise RefConflict(f"Tag {name} already exists")
            target = commit
            if message:
                text = (
                    f"object {commit}\ntype commit\ntag {name}\n"
                    f"tagger {IDENTITY_NAME} <{IDENTITY_EMAIL}> {int(time.time())} +0000\n\n"
                    f"{message}" + ("" if message.endswith("\n") else "\n")
                )
                target = self.git("mktag", input=text.encode()).decode("ascii").strip()
            self.update_ref(f"refs/tags/{name}", target, None)

    def delete_tag(self, name: str) -> bool:
        with self.write_lock:
            old = self.refs().raw.get(f"refs/tags/{name}")
            if old is None:
                return False
            self.delete_ref(f"refs/tags/{name}", old)
            return True


class GitStore:
    """All repositories under ``root``."""

    def __init__(self, root: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root.resolve()
        self.tmp_dir = self.root / ".tmp"
        self.tmp_dir.mkdir(exist_ok=True)
        self.blob_cache: LRU[str, bytes] = LRU(100_000, max_weight=BLOB_CACHE_BYTES, weight=len)
        self._repos: dict[tuple[str, str], GitRepo] = {}
        self._lock = threading.Lock()

    def repo_path(self, repo_type: str, repo_id: str) -> Path:
        """The folder of a repo; ``repo_id`` must have passed :func:`names.check_repo_id`."""
        org, name = repo_id.split("/")
        return self.root / TYPE_DIRS[repo_type] / org / f"{name}.git"

    def get(self, repo_type: str, repo_id: str) -> GitRepo | None:
        path = self.repo_path(repo_type, repo_id)
        key = (repo_type, repo_id)
        exists = (path / "objects").is_dir()
        with self._lock:
            repo = self._repos.get(key)
            if not exists:
                if repo is not None:
                    del self._repos[key]
                    repo.close()
                return None
            if repo is None:
                repo = self._repos[key] = GitRepo(path, self)
            return repo

    def create(self, repo_type: str, repo_id: str) -> bool:
        """Create a repo whose ``main`` branch holds one empty commit; ``False`` if it exists."""
        path = self.repo_path(repo_type, repo_id)
        if path.exists():
            return False
        tmp = self.tmp_dir / f"init-{uuid.uuid4().hex}.git"
        run_git(
            None, ["init", "--bare", "--quiet", "--template=", "--initial-branch=main", str(tmp)]
        )
        empty_tree = run_git(tmp, ["mktree"], input=b"").decode("ascii").strip()
        commit = run_git(
            tmp, ["commit-tree", "--no-gpg-sign", empty_tree], input=b"initial commit\n"
        )
        run_git(tmp, ["update-ref", "refs/heads/main", commit.decode("ascii").strip(), ZERO_OID])
        with self._lock:
            if path.exists():
                shutil.rmtree(tmp, ignore_errors=True)
                return False
            path.parent.mkdir(parents=True, exist_ok=True)
            os.rename(tmp, path)
        return True

    def delete(self, repo_type: str, repo_id: str) -> bool:
        path = self.repo_path(repo_type, repo_id)
        trash = self.tmp_dir / f"trash-{uuid.uuid4().hex}"
        with self._lock:
            if not path.is_dir():
                return False
            repo = self._repos.pop((repo_type, repo_id), None)
            os.rename(path, trash)
            try:
                path.parent.rmdir()  # the org folder, when now empty
            except OSError:
                pass
        if repo is not None:
            repo.close()
        shutil.rmtree(trash, ignore_errors=True)
        return True

    def close(self) -> None:
        with self._lock:
            repos, self._repos = list(self._repos.values()), {}
        for repo in repos:
            repo.close()
