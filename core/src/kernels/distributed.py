"""Cluster loading on ``torch.distributed``: one rank asks the Hub, every node gets the bytes over the
process group, every rank loads with no request.

::

    import torch.distributed as dist
    import kernels.distributed

    dist.init_process_group("nccl")  # or "gloo"; torchrun sets the rest
    activation = kernels.distributed.get_kernel("kernels-community/activation", version=1)

:func:`download` (and :func:`get_kernel`, which imports afterwards) is a *collective*: every rank of
the group calls it with the same arguments. What happens:

1. Ranks are grouped into *nodes*: ranks on one host using one cache folder. The lowest rank of
   each node is its writer.
2. The group's first rank resolves what was asked (from a lock, no request; from a branch or tag,
   as :func:`kernels.get_kernel` would) and tells every rank.
3. Each writer looks in its cache. When every node has everything, the call ends here: no request,
   no byte moved.
4. Otherwise the first rank fetches what is missing from the Hub and verifies it (each file once for
   the whole job), then broadcasts the bytes to the writers that lack them (over NCCL between GPUs
   when the group is NCCL, else over gloo). Each writer checks every file against the listing and
   puts it into its cache atomically, under the cache's usual lock.
5. Every rank then finds the variant in its node's cache; nothing more is asked of the Hub.

Failures never hang: control messages go over a gloo group of this module's own with a timeout
(``KERNELS_DIST_TIMEOUT``, default 300 s), and ranks busy with work (the first rank's download, a
writer's checks) report that they are alive every half second, so an exception on any rank
reaches every rank at the next report, and a rank that died or never called is noticed within the
timeout. Either way every rank raises :class:`DistributedDownloadError`.

Without an initialised process group, the functions load as :func:`kernels.get_kernel` does.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from kernels.cache import RepoCache, hub_cache_dir
from kernels.errors import KernelsError
from kernels.fetch import finish_variant, has_blob, listing_hash, store_blob, variant_files
from kernels.fsutil import temp_file_in
from kernels.hub import REPO_TYPES, Refs, RemoteFile
from kernels.loader import Installed

T = TypeVar("T")

CHUNK_BYTES = 32 << 20
"""Bytes per broadcast: large enough to keep the links busy, small enough to keep memory flat."""
_BEAT = 0.5


class DistributedDownloadError(KernelsError):
    """A collective download failed on some rank (the message names which and why), or a rank did
    not answer in time; raised on every rank."""


def dist_timeout() -> float:
    """Seconds a rank waits for the others at any step (``KERNELS_DIST_TIMEOUT``, default 300)."""
    try:
        return max(1.0, float(os.environ.get("KERNELS_DIST_TIMEOUT", "300")))
    except ValueError:
        return 300.0


@dataclass(frozen=True)
class Target:
    """One variant the job needs, as the first rank resolved it."""

    repo_id: str
    commit: str
    variant: str
    hash: str
    repo_type: str | None = None
    ref: str | None = None
    """Branch or tag name the commit came from, recorded in every node's cache."""

    def describe(self) -> str:
        """``org/name@<commit12> build/<variant>``."""
        return f"{self.repo_id}@{self.commit[:12]} build/{self.variant}"


@dataclass(frozen=True)
class Downloaded:
    """What a collective :func:`download` did, the same on every rank except ``kernels``' paths."""

    kernels: dict[str, Installed]
    """Repo id -> the variant in this rank's cache."""
    fetched: tuple[str, ...] = ()
    """The variants some node lacked (fetched by the first rank and broadcast)."""
    bytes_moved: int = 0
    """File bytes broadcast over the process group (0 when every cache had everything)."""
    nodes: int = 1
    """Nodes (host and cache folder) in the group."""


def installed_in_cache(t: Target) -> Installed | None:
    """``t``'s variant in this process's cache, complete and with the expected hash, or ``None``."""
    for repo_type in [t.repo_type] if t.repo_type else list(REPO_TYPES):
        rc = RepoCache(t.repo_id, repo_type)
        done = rc.completion(t.commit, t.variant)
        if done is not None and done.get("hash") == t.hash:
            path = rc.variant_dir(t.commit, t.variant)
            return Installed(t.repo_id, repo_type, t.commit, t.variant, path)
    return None


# ---- planning (first rank only) ---------------------------------------------------------------------


def plan_targets(
    repos: Sequence[str],
    *,
    lockfile: str | Path | None,
    revision: str | None,
    version: int | str | None,
    backend: str | None,
) -> list[Target]:
    """Resolve what was asked into variants: from the lock (no request), else as a load would."""
    from kernels.loader import choose_variant, listing_for, variant_names
    from kernels.resolve import make_request, resolve

    if lockfile is not None:
        from kernels.lockfile import read_lock

        lock = read_lock(Path(lockfile))
        entries = [lock.get(r) for r in repos] if repos else list(lock.kernels.values())
        out = []
        for e in entries:
            if not e.variants:
                raise KernelsError(
                    f"the lock has no variant hashes for {e.repo_id} (upstream 0.17 format); "
                    "run `kernels lock` to add them"
                )
            variant = choose_variant(e.repo_id, e.commit, sorted(e.variants), backend)
            out.append(Target(e.repo_id, e.commit, variant, e.variants[variant], e.repo_type))
        return out
    out = []
    for repo in repos:
        resolved = resolve(make_request(repo, revision=revision, version=version))
        rc, listing = listing_for(resolved)
        variant = choose_variant(repo, resolved.commit, variant_names(listing), backend)
        vhash = listing_hash(variant_files(listing, variant))
        out.append(Target(repo, resolved.commit, variant, vhash, rc.repo_type, resolved.ref))
    return out


@dataclass
class _Payload:
    """What a writer needs besides the bytes: the listing (saved in its cache) and the refs."""

    repo_type: str
    listing: list[dict[str, Any]]
    refs: dict[str, Any] | None = None


def fetch_targets(targets: Sequence[Target], backend: str | None) -> list[_Payload]:
    """On the first rank: make each target complete and verified in its own cache (downloading
    what is missing, as a load does), and return what writers need to store it."""
    from kernels.loader import install

    out = []
    for t in targets:
        inst = install(
            t.repo_id, revision=t.commit, variant=t.variant, expected_hash=t.hash, backend=backend
        )
        rc = RepoCache(t.repo_id, inst.repo_type)
        listing = rc.load_listing(t.commit)
        if listing is None:
            raise KernelsError(f"the listing of {t.describe()} vanished from the cache")
        refs = rc.load_refs() if t.ref is not None else None
        out.append(
            _Payload(
                inst.repo_type, [f.to_json() for f in listing], refs.to_json() if refs else None
            )
        )
    return out


# ---- the byte stream --------------------------------------------------------------------------------


@dataclass
class _Entry:
    """One file of the stream: where it goes in a writer's cache (``rc`` None: not written here)."""

    file: RemoteFile
    rc: RepoCache | None
    where: str


class _Source:
    """Reads the files of the stream, in order, from the first rank's cache."""

    def __init__(self, entries: list[_Entry]) -> None:
        self._entries = iter(entries)
        self._fh: Any = None
        self._left = 0
        self.error: str | None = None

    def fill(self, view: memoryview) -> None:
        pos = 0
        while pos < len(view):
            if self._left == 0:
                self._next()
                continue
            n = min(len(view) - pos, self._left)
            got = 0
            if self._fh is not None:
                got = self._fh.readinto(view[pos : pos + n]) or 0
            if got < n:  # a blob shorter than listed: the writers' checks will refuse it
                self.error = self.error or "a cached blob on the first rank is shorter than listed"
                view[pos + got : pos + n] = bytes(n - got)
            pos += n
            self._left -= n

    def _next(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        e = next(self._entries)
        self._left = e.file.size
        assert e.rc is not None
        try:
            self._fh = open(e.rc.blob(e.file.digest), "rb")  # noqa: SIM115 (closed in _next/close)
        except OSError as err:
            self.error = self.error or f"cannot read {e.where} on the first rank: {err}"

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


class _Sink:
    """Writes the stream's files into this writer's cache, each verified then moved into place.

    A failure (a full disk, bytes that do not match) is kept, and the rest of the stream is still
    received, so that every rank goes through the same collectives.
    """

    def __init__(self, entries: list[_Entry]) -> None:
        self._entries = entries
        self._i = 0
        self._got = 0
        self._fh: Any = None
        self._tmp: Path | None = None
        self._stack = contextlib.ExitStack()
        self.error: str | None = None
        self._open()

    def feed(self, data: memoryview) -> None:
        pos = 0
        while pos < len(data):
            e = self._entries[self._i]
            n = min(len(data) - pos, e.file.size - self._got)
            if self._fh is not None:
                try:
                    self._fh.write(data[pos : pos + n])
                except OSError as err:
                    self._fail(f"cannot write {e.where}: {err}")
            self._got += n
            pos += n
            if self._got == e.file.size:
                self._done()

    def _open(self) -> None:
        """Start the next file; files of no bytes are finished at once."""
        while self._i < len(self._entries):
            e = self._entries[self._i]
            self._got = 0
            if e.rc is not None and self.error is None and not has_blob(e.rc, e.file):
                try:
                    self._tmp = self._stack.enter_context(
                        temp_file_in(e.rc.blob(e.file.digest).parent, e.file.digest)
                    )
                    self._fh = open(self._tmp, "wb")  # noqa: SIM115 (closed in _done/close)
                except OSError as err:
                    self._fail(f"cannot write {e.where}: {err}")
            if e.file.size > 0:
                return
            self._done()
            return

    def _done(self) -> None:
        e = self._entries[self._i]
        if self._fh is not None:
            try:
                self._fh.close()
                assert e.rc is not None and self._tmp is not None
                store_blob(
                    e.rc, e.file, self._tmp, where=e.where, source="the first rank's broadcast"
                )
            except (OSError, KernelsError) as err:
                self._fail(str(err))
            self._fh = None
        self._stack.close()
        self._i += 1
        self._open()

    def _fail(self, error: str) -> None:
        self.error = self.error or error
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        self._stack.close()

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None
        self._stack.close()


# ---- the collective machinery -------------------------------------------------------------------------


class _Job:
    """The groups and ranks of one collective call."""

    def __init__(self, group: Any, timeout: float) -> None:
        import torch.distributed as dist

        self.dist = dist
        self.group = group if group is not None else dist.group.WORLD
        self.ranks: list[int] = list(dist.get_process_group_ranks(self.group))
        self.rank = dist.get_rank()
        self.index = self.ranks.index(self.rank)
        self.src = self.ranks[0]
        self.timeout = timeout
        self.ctl = _control_group(self.ranks, timeout)

    # Every collective goes through these, so that a timeout or a dead peer becomes our error.

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except RuntimeError as err:
            raise DistributedDownloadError(
                f"kernels.distributed: rank {self.rank} got no answer from every rank of the "
                f"group while {what} (within KERNELS_DIST_TIMEOUT={self.timeout:g} s): a rank "
                f"died, hangs, or did not call with the same arguments ({err})"
            ) from err

    def gather(self, obj: Any, what: str) -> list[Any]:
        out: list[Any] = [None] * len(self.ranks)
        self._call(what, lambda: self.dist.all_gather_object(out, obj, group=self.ctl))
        return out

    def share(self, obj: Any, what: str) -> Any:
        box = [obj]
        self._call(what, lambda: self.dist.broadcast_object_list(box, src=self.src, group=self.ctl))
        return box[0]

    def together(self, what: str, work: Callable[[], T] | None) -> T | None:
        """Run ``work`` (on the ranks that have some) while every rank reports that it is alive;
        return its result once every rank is done; raise on every rank if any failed."""
        import torch

        result: list[T] = []
        error: list[BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                if work is not None:
                    result.append(work())
            except BaseException as err:  # handed to every rank below
                error.append(err)
            finally:
                done.set()

        if work is None:
            done.set()
        else:
            threading.Thread(target=run, name="kernels-distributed", daemon=True).start()
        while True:
            done.wait(_BEAT)
            finished = done.is_set()
            flags = torch.tensor([0 if finished else 1, 1 if finished and error else 0])
            self._call(what, partial(self.dist.all_reduce, flags, group=self.ctl))
            if int(flags[0]) == 0:
                break
        if int(flags[1]):
            mine = _describe(error[0]) if error else None
            reports = self.gather(mine, what)
            failed = [f"rank {self.ranks[i]}: {r}" for i, r in enumerate(reports) if r]
            raise DistributedDownloadError(
                f"kernels.distributed.download failed while {what}: " + "; ".join(failed)
            ) from (error[0] if error else None)
        return result[0] if result else None


def _describe(err: BaseException) -> str:
    return str(err) if isinstance(err, KernelsError) else f"{type(err).__name__}: {err}"


_controls: dict[tuple[tuple[int, ...], float], tuple[Any, Any]] = {}


def _control_group(ranks: list[int], timeout: float) -> Any:
    """A gloo group over ``ranks`` with our timeout, made once per process group (every member
    makes it; a new ``init_process_group`` gets new ones)."""
    import torch.distributed as dist

    key = (tuple(ranks), timeout)
    world = dist.group.WORLD
    cached = _controls.get(key)
    if cached is None or cached[0] is not world:
        group = dist.new_group(
            ranks=ranks,
            timeout=timedelta(seconds=timeout),
            backend="gloo",
            use_local_synchronization=True,
        )
        _controls[key] = cached = (world, group)
    return cached[1]


def _node_key() -> str:
    """Ranks with the same key share a cache: the host and the cache folder's real path."""
    return f"{socket.gethostname()}:{os.path.realpath(hub_cache_dir())}"


def _data_group(job: _Job, receivers: list[int]) -> Any:
    """The group the bytes go over (made by its members only, in the calling thread): NCCL when
    the job's group is NCCL (GPU to GPU), else gloo."""
    import torch

    nccl = "nccl" in str(job.dist.get_backend(job.group)) and torch.cuda.is_available()
    return job._call(
        "making the group that sends files",
        lambda: job.dist.new_group(
            ranks=receivers,
            timeout=timedelta(seconds=job.timeout),
            backend="nccl" if nccl else "gloo",
            use_local_synchronization=True,
        ),
    )


def _stream(job: _Job, data: Any, entries: list[_Entry]) -> None:
    """Broadcast the files of ``entries`` from the first rank over ``data`` in chunks; on the
    others, write them into the cache (see :class:`_Sink`)."""
    import torch

    total = sum(e.file.size for e in entries)
    nccl = "nccl" in str(job.dist.get_backend(data))
    device = torch.device("cuda", torch.cuda.current_device()) if nccl else None
    sending = job.rank == job.src
    source = _Source(entries) if sending else None
    sink = None if sending else _Sink(entries)
    buf = bytearray(min(CHUNK_BYTES, total))
    host = torch.frombuffer(buf, dtype=torch.uint8)
    left = total
    broadcast = job.dist.broadcast
    try:
        while left:
            n = min(len(buf), left)
            view = memoryview(buf)[:n]
            if source is not None:
                source.fill(view)
            chunk = host[:n]
            wire = chunk.to(device) if device is not None else chunk
            job._call("sending files", partial(broadcast, wire, job.src, group=data))
            if wire is not chunk and sink is not None:
                chunk.copy_(wire)
            if sink is not None:
                sink.feed(view)
            left -= n
    finally:
        if source is not None:
            source.close()
        if sink is not None:
            sink.close()
    error = (source.error if source else None) or (sink.error if sink else None)
    if error:
        raise KernelsError(error)


def _store(t: Target, payload: _Payload) -> None:
    """On a writer, after the stream: record the variant as complete (its blobs are in place)."""
    rc = RepoCache(t.repo_id, payload.repo_type)
    listing = [RemoteFile.from_json(d) for d in payload.listing]
    files = variant_files(listing, t.variant)
    if listing_hash(files) != t.hash:
        raise KernelsError(f"the listing broadcast for {t.describe()} does not hash to {t.hash}")
    with rc.lock(f"{t.commit}-{t.variant}"):
        done = rc.completion(t.commit, t.variant)
        if done is None or done.get("hash") != t.hash:
            lacking = [f.path for f in files.values() if not has_blob(rc, f)]
            if lacking:
                raise KernelsError(f"{t.describe()}: {len(lacking)} file(s) did not arrive")
            rc.save_listing(t.commit, listing)
            finish_variant(rc, t.commit, t.variant, files)
    if payload.refs is not None:
        rc.save_refs(Refs.from_json(payload.refs))


def _record_ref(t: Target) -> None:
    """Let later loads by branch or tag on this node resolve offline, as they would after a load."""
    inst = installed_in_cache(t)
    if t.ref is None or inst is None:
        return
    rc = RepoCache(t.repo_id, inst.repo_type)
    if rc.read_ref(t.ref) != t.commit:
        rc.write_ref(t.ref, t.commit)


# ---- the API --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Args:
    """What every rank must ask alike (the lock file's path may differ between nodes)."""

    repos: tuple[str, ...]
    locked: bool
    revision: str | None
    version: int | str | None
    backend: str | None


def download(
    repos: str | Sequence[str] = (),
    *,
    lockfile: str | Path | None = None,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    group: Any = None,
    timeout: float | None = None,
) -> Downloaded:
    """Collective: make the kernels ``repos`` (or every kernel of ``lockfile``, or those of
    ``repos`` in it) present in the cache of every node of ``group``, fetching each file from the
    Hub once for the whole group; every rank of ``group`` (default: all) calls it with the same
    arguments.

    ``revision``/``version`` select what to load as in :func:`kernels.get_kernel`; with
    ``lockfile``, the locked commits and hashes are used and resolving makes no request. Returns the
    variant folder in this rank's cache for each kernel; loading from it makes no request. When
    every node already has everything, nothing is requested and no byte is moved. A failure on any
    rank raises :class:`DistributedDownloadError` on every rank, naming the rank and the cause;
    ``timeout`` (default ``KERNELS_DIST_TIMEOUT``) bounds every wait for another rank.
    """
    names = (repos,) if isinstance(repos, str) else tuple(repos)
    if not names and lockfile is None:
        raise KernelsError("kernels.distributed.download needs repo ids or a lockfile")
    args = _Args(names, lockfile is not None, revision, version, backend)
    import torch.distributed as dist

    def plan() -> list[Target]:
        return plan_targets(
            names, lockfile=lockfile, revision=revision, version=version, backend=backend
        )

    if not (dist.is_available() and dist.is_initialized()):
        return _alone(plan(), backend)
    job = _Job(group, dist_timeout() if timeout is None else float(timeout))
    keys = job.gather((_node_key(), repr(args)), "comparing the ranks' arguments")
    if len({k[1] for k in keys}) != 1:
        different = [job.ranks[i] for i, k in enumerate(keys) if k[1] != keys[0][1]]
        raise DistributedDownloadError(
            f"kernels.distributed.download was called with different arguments on ranks "
            f"{different} than on rank {job.src}; every rank must ask for the same kernels"
        )
    nodes: dict[str, int] = {}
    for i, (node, _) in enumerate(keys):
        nodes.setdefault(node, job.ranks[i])
    writer = nodes[keys[job.index][0]] == job.rank
    first = job.rank == job.src
    planned = job.together("resolving what to load", plan if first else None)
    targets: list[Target] = job.share(planned, "resolving what to load")
    lacking = [i for i, t in enumerate(targets) if installed_in_cache(t) is None] if writer else []
    needs: list[list[int]] = job.gather(lacking, "checking the caches")
    missing = sorted({i for n in needs for i in n})
    moved = 0
    if missing:
        wanted = [targets[i] for i in missing]
        fetched = job.together(
            "fetching from the Hub", (lambda: fetch_targets(wanted, backend)) if first else None
        )
        payloads: list[_Payload] = job.share(fetched, "fetching from the Hub")
        by_index = dict(zip(missing, payloads, strict=True))
        entries: list[_Entry] = []
        for i in missing:
            t, p = targets[i], by_index[i]
            rc = RepoCache(t.repo_id, p.repo_type)
            write_here = first or i in lacking
            listing = [RemoteFile.from_json(d) for d in p.listing]
            for rel, f in sorted(variant_files(listing, t.variant).items()):
                entries.append(_Entry(f, rc if write_here else None, f"{t.describe()}/{rel}"))
        receivers = sorted({job.src} | {job.ranks[i] for i, n in enumerate(needs) if n})
        # Only the first rank's own node lacking something: its download already filled it.
        moved = sum(e.file.size for e in entries) if len(receivers) > 1 else 0
        if moved and job.rank in receivers:
            data = _data_group(job, receivers)
            try:
                job.together("sending files", lambda: _stream(job, data, entries))
            finally:
                dist.destroy_process_group(data)
        else:
            job.together("sending files", None)

        def store() -> None:
            for i in lacking:
                _store(targets[i], by_index[i])

        job.together("storing files", store if lacking else None)

    def refs() -> None:
        for t in targets:
            _record_ref(t)

    job.together("recording refs", refs if writer else None)

    def find() -> dict[str, Installed]:
        out = {}
        for t in targets:
            inst = installed_in_cache(t)
            if inst is None:
                raise KernelsError(f"{t.describe()} is not in this rank's cache after the download")
            out[t.repo_id] = inst
        return out

    found = job.together("finding the variants", find)
    assert found is not None
    return Downloaded(
        found,
        tuple(targets[i].describe() for i in missing),
        moved,
        len(nodes),
    )


def _alone(targets: list[Target], backend: str | None) -> Downloaded:
    """No process group: fetch here, as the one rank of one node."""
    lacking = [t for t in targets if installed_in_cache(t) is None]
    fetch_targets(lacking, backend)
    found = {}
    for t in targets:
        inst = installed_in_cache(t)
        if inst is None:
            raise KernelsError(f"{t.describe()} is not in the cache after the download")
        found[t.repo_id] = inst
    return Downloaded(found, tuple(t.describe() for t in lacking), 0, 1)


def get_kernel(
    repo_id: str,
    *,
    revision: str | None = None,
    version: int | str | None = None,
    backend: str | None = None,
    group: Any = None,
    timeout: float | None = None,
) -> ModuleType:
    """Collective :func:`kernels.get_kernel`: :func:`download` on every rank of ``group``, then
    import the kernel from this rank's cache (no request)."""
    from kernels.importer import import_folder

    inst = download(
        repo_id, revision=revision, version=version, backend=backend, group=group, timeout=timeout
    ).kernels[repo_id]
    return import_folder(inst.path, repo_id=repo_id, commit=inst.commit, variant=inst.variant)


__all__ = ["DistributedDownloadError", "Downloaded", "Target", "download", "get_kernel"]
