"""Reliability and security: hostile servers, network faults, crashes, concurrency, bad input,
offline use and tokens. docs/reliability.md lists every test here with its outcome; a test below
keeps that table true."""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from conftest import DUMMY_TOKEN
from hostile import HostileHub
from kernelhub import ROOT, cpu_activation, publish, unique_repo, universal_rmsnorm
from kernels import IntegrityError, KernelsError, NotInCacheError, get_kernel
from kernels.cache import RepoCache
from kernels.errors import HubError
from kernels.hub import list_files
from kernels.platform import detect_platform

HERE = detect_platform().variant
SHA = "1234567890abcdef1234567890abcdef12345678"
CLI = [sys.executable, "-m", "kernels"]


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\x00" % len(data) + data, usedforsecurity=False).hexdigest()


@pytest.fixture
def evil(monkeypatch):  # type: ignore[no-untyped-def]
    server = HostileHub()
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.setenv("KERNELS_HTTP_RETRIES", "1")
    server.json("/api/kernels/evil/k/revision/v1", {"id": "evil/k", "sha": SHA})
    server.json(
        "/api/organizations/evil/overview", {"name": "evil", "trustedKernelPublisher": True}
    )
    yield server
    server.stop()


def _files_outside(root: Path, allowed: Path) -> set[str]:
    """Files under ``root`` outside ``allowed``, and the ``evil*`` entries of every folder above
    ``root``, where a path made of ``..`` parts would land (scanning those folders whole would read
    every other test's files, and other processes change them)."""
    inside = {str(p) for p in root.rglob("*") if p.is_file() and allowed not in p.parents}
    return inside | {str(p) for parent in root.parents for p in parent.glob("evil*")}


def _serve_listing(
    evil: HostileHub, entries: list[dict[str, object]], files: dict[str, bytes]
) -> None:
    evil.json(f"/api/kernels/evil/k/tree/{SHA}/build", entries)
    for path, data in files.items():
        evil.raw(f"/kernels/evil/k/resolve/{SHA}/{path}", data)


@pytest.mark.parametrize(
    "bad",
    [
        "../../../../../evil.py",
        "a/../../../evil.py",
        "/tmp/evil.py",
        "a\\..\\..\\evil.py",
        "evil\x00.py",
        "a//evil.py",
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "backslash", "nul", "empty-part"],
)
def test_hostile_listing_paths_are_refused(evil, tmp_path, hf_cache, bad):  # type: ignore[no-untyped-def]
    """Tree entries that would escape the variant folder are refused before anything is written."""
    good = b"x = 1\n"
    entries = [
        {
            "type": "file",
            "path": f"build/{HERE}/__init__.py",
            "oid": blob_id(good),
            "size": len(good),
        },
        {"type": "file", "path": f"build/{HERE}/{bad}", "oid": blob_id(good), "size": len(good)},
    ]
    _serve_listing(evil, entries, {f"build/{HERE}/__init__.py": good})
    before = _files_outside(tmp_path, hf_cache)
    with pytest.raises(KernelsError, match="refusing unsafe path"):
        get_kernel("evil/k", version=1)
    assert _files_outside(tmp_path, hf_cache) == before
    assert not Path("/tmp/evil.py").exists()
    assert not any(p.name.startswith("evil") for p in hf_cache.rglob("*"))


def test_symlink_entries_are_plain_files(evil, hf_cache):  # type: ignore[no-untyped-def]
    """A listed "symlink" (git serves its target as content) is stored as data, never followed."""
    init = b"value = 7\n"
    link = b"../../../../../../etc/passwd"
    entries = [
        {
            "type": "file",
            "path": f"build/{HERE}/__init__.py",
            "oid": blob_id(init),
            "size": len(init),
        },
        {"type": "file", "path": f"build/{HERE}/link", "oid": blob_id(link), "size": len(link)},
    ]
    _serve_listing(evil, entries, {f"build/{HERE}/__init__.py": init, f"build/{HERE}/link": link})
    mod = get_kernel("evil/k", version=1)
    stored = Path(mod.__file__).parent / "link"
    assert stored.resolve().parent.name == "blobs" and stored.resolve().read_bytes() == link


@pytest.mark.parametrize("field", ["sha", "tree-json", "size"])
def test_malformed_answers_are_refused(evil, hf_cache, field):  # type: ignore[no-untyped-def]
    """An invalid commit id, invalid JSON or an absurd size gets a clear error and writes nothing."""
    data = b"x = 1\n"
    entry = {
        "type": "file",
        "path": f"build/{HERE}/__init__.py",
        "oid": blob_id(data),
        "size": len(data),
    }
    if field == "sha":
        evil.json("/api/kernels/evil/k/revision/v1", {"sha": "../../../../tmp/evil"})
        match = "invalid commit id"
    elif field == "tree-json":
        evil.raw(f"/api/kernels/evil/k/tree/{SHA}/build", b"[{not json")
        match = "invalid answer from the Hub"
    else:
        entry["size"] = 10**15
        match = "out of bounds"
    if field != "tree-json":
        _serve_listing(evil, [entry], {f"build/{HERE}/__init__.py": data})
    with pytest.raises(KernelsError, match=match):
        get_kernel("evil/k", version=1)
    assert not list(hf_cache.rglob("snapshots/*/build/*/*"))


def test_bytes_that_do_not_match_the_listing_are_never_imported(evil, hf_cache):  # type: ignore[no-untyped-def]
    """Wrong bytes for a listed oid: IntegrityError naming the file; no snapshot, no import."""
    listed, served = b"value = 1\n", b"import os; os.system('echo pwned')\n"
    entry = {
        "type": "file",
        "path": f"build/{HERE}/__init__.py",
        "oid": blob_id(listed),
        "size": len(served),
    }
    _serve_listing(evil, [entry], {f"build/{HERE}/__init__.py": served})
    with pytest.raises(IntegrityError, match=r"__init__\.py"):
        get_kernel("evil/k", version=1)
    assert not list(hf_cache.rglob("snapshots/*/build/*/*"))
    assert not list(hf_cache.rglob("blobs/*"))


def test_crafted_repo_ids_and_revisions_are_refused(hub):  # type: ignore[no-untyped-def]
    """Repo ids and revisions that could escape the cache are refused before any request."""
    hub.reset_requests()
    for repo in [
        "../../etc/passwd",
        "/abs/name",
        "org/..",
        "a\\b/c",
        "org/name/extra",
        "org/na\x00me",
    ]:
        with pytest.raises(KernelsError, match="invalid repo id"):
            get_kernel(repo)
    for rev in ["../../x", "/etc/passwd", "a\\b", "a/../b", "x\x00"]:
        with pytest.raises(KernelsError, match="invalid revision"):
            get_kernel("org/name", revision=rev)
    assert hub.requests() == []


@pytest.fixture(scope="module")
def norm_repo(hub):  # type: ignore[no-untyped-def]
    repo = unique_repo("rel-norm")
    return repo, publish(
        hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"]
    )


def test_429_and_5xx_are_retried_with_retry_after(hub, norm_repo):  # type: ignore[no-untyped-def]
    """429 with Retry-After on the tree and 503 without on a file are retried until they pass."""
    repo, _ = norm_repo
    hub.clear_faults()
    hub.add_fault(path_regex=f"/api/kernels/{repo}/tree/", status=429, retry_after=1, times=1)
    hub.add_fault(path_regex="/resolve/.*/_impl.py", status=503, times=2)
    hub.reset_requests()
    t = time.monotonic()
    mod = get_kernel(repo, version=1)
    assert mod.__version__ == "0.1.0"
    assert time.monotonic() - t >= 1.0  # Retry-After was honoured
    statuses = Counter(r.status for r in hub.requests())
    assert statuses[429] == 1 and statuses[503] == 2
    hub.clear_faults()


def test_dropped_connection_resumes(hub, norm_repo):  # type: ignore[no-untyped-def]
    """A file cut off mid-body is resumed with a Range request and verified."""
    repo, _ = norm_repo
    hub.add_fault(path_regex="/resolve/.*/_impl.py", method="GET", truncate_at=10, times=1)
    hub.reset_requests()
    assert get_kernel(repo, version=1).__version__ == "0.1.0"
    impl = [r for r in hub.requests() if r.path.endswith("_impl.py")]
    assert [r.status for r in impl] in ([200, 206], [200, 200])
    hub.clear_faults()


def test_corrupted_bytes_are_refused_then_a_retry_succeeds(hub, norm_repo):  # type: ignore[no-untyped-def]
    """Bytes flipped in transit fail verification; nothing is kept; the next call loads cleanly."""
    repo, _ = norm_repo
    hub.add_fault(path_regex="/resolve/.*/_impl.py", method="GET", corrupt=True, times=1)
    with pytest.raises(IntegrityError, match=r"_impl\.py"):
        get_kernel(repo, version=1)
    assert get_kernel(repo, version=1).__version__ == "0.1.0"
    hub.clear_faults()


def test_silent_server_times_out_naming_repo_revision_and_url(hub, norm_repo, monkeypatch):  # type: ignore[no-untyped-def]
    """A server that never answers: a bounded wait, then an error naming repo, revision and URL."""
    repo, _ = norm_repo
    monkeypatch.setenv("KERNELS_HTTP_TIMEOUT", "0.5")
    monkeypatch.setenv("KERNELS_HTTP_RETRIES", "1")
    hub.add_fault(path_regex=f"/api/kernels/{repo}/revision/", delay_s=3, times=2)
    t = time.monotonic()
    with pytest.raises(HubError) as info:
        get_kernel(repo, version=1)
    assert time.monotonic() - t < 3
    msg = str(info.value)
    assert repo in msg and "'v1'" in msg and hub.endpoint in msg
    hub.clear_faults()


def test_persistent_5xx_fails_naming_the_url(hub, norm_repo, monkeypatch):  # type: ignore[no-untyped-def]
    """A file that keeps failing: a bounded number of tries, then an error with its URL."""
    repo, commit = norm_repo
    monkeypatch.setenv("KERNELS_HTTP_RETRIES", "2")
    hub.add_fault(path_regex="/resolve/.*/_impl.py", status=500, times=None)
    with pytest.raises(HubError, match=r"_impl\.py.*failed after 3 attempts.*http://127\.0\.0\.1"):
        get_kernel(repo, revision=commit)
    hub.clear_faults()


def test_sigkill_mid_download_leaves_a_usable_cache(hub, norm_repo):  # type: ignore[no-untyped-def]
    """A process killed while downloading leaves nothing importable; the next run loads fine."""
    repo, _ = norm_repo
    hub.add_fault(path_regex="/resolve/.*/_impl.py", method="GET", delay_s=30, times=1)
    hub.reset_requests()
    proc = subprocess.Popen(
        [sys.executable, "-c", f"import kernels; kernels.get_kernel({repo!r}, version=1)"],
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    # The server logs a request when it answers: once another file of the variant has been served,
    # the delayed _impl.py is in flight.
    while not any("/resolve/" in r.path for r in hub.requests()) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    assert proc.poll() is None, "the child finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    hub.clear_faults()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    offline = subprocess.run(
        [sys.executable, "-c", f"import kernels; kernels.get_kernel({repo!r}, version=1)"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert offline.returncode != 0 and "not in the cache" in offline.stderr
    ok = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import kernels; print(kernels.get_kernel({repo!r}, version=1).__version__)",
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "0.1.0"


CHILD = """
import hashlib, sys, torch, kernels
m = kernels.get_kernel(sys.argv[1], version=1)
torch.manual_seed(0)
x = torch.randn(64, 64); y = torch.empty_like(x)
m.gelu_fast(y, x)
print(hashlib.sha256(bytes(y.contiguous().view(torch.uint8).flatten().tolist())).hexdigest())
"""


def test_sixteen_processes_cold_load_once(hub, tmp_path):  # type: ignore[no-untyped-def]
    """16 processes cold-load one kernel at once: all succeed, same result, each file fetched once."""
    repo = unique_repo("rel-act")
    publish(hub.endpoint, repo, [cpu_activation("0.1.0")], branch="v1")
    hub.reset_requests()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, repo],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(16)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in results if e][:1]
    assert len({out.strip() for out, _ in results}) == 1
    gets = Counter(r.path for r in hub.requests() if "/resolve/" in r.path)
    assert gets and set(gets.values()) == {1}, gets


def test_threads_in_one_process_share_one_download(hub):  # type: ignore[no-untyped-def]
    """8 threads loading one kernel get the same module; each file is fetched once."""
    repo = unique_repo("rel-threads")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1")
    hub.reset_requests()
    mods: list[object] = []
    errors: list[BaseException] = []

    def load() -> None:
        try:
            mods.append(get_kernel(repo, version=1))
        except BaseException as err:  # collected for the assertion below
            errors.append(err)

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len({id(m) for m in mods}) == 1
    gets = Counter(r.path for r in hub.requests() if "/resolve/" in r.path)
    assert set(gets.values()) == {1}, gets


def test_two_downloads_at_once(hub, norm_repo, tmp_path):  # type: ignore[no-untyped-def]
    """`kernels download` twice at once: both succeed, each file fetched once."""
    repo, _ = norm_repo
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "pyproject.toml").write_text(f'[tool.kernels.dependencies]\n"{repo}" = 1\n')
    assert subprocess.run([*CLI, "lock", str(proj)], capture_output=True).returncode == 0
    hub.reset_requests()
    procs = [
        subprocess.Popen(
            [*CLI, "download", str(proj)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    for p in procs:
        p.communicate(timeout=120)
    assert [p.returncode for p in procs] == [0, 0]
    gets = Counter(r.path for r in hub.requests() if "/resolve/" in r.path)
    assert gets and set(gets.values()) == {1}, gets


def _self_checking_variant(dest: Path, files: int) -> dict[str, bytes]:
    """A torch-universal variant whose import fails unless every one of its files is whole.

    ``metadata.json`` carries the sha256 of every other file; ``__init__.py`` checks them all at
    import (an incomplete ``__init__.py`` or ``metadata.json`` fails on its own). Returns the
    files by path relative to the variant.
    """
    rng = random.Random(17)
    content = {
        f"data/part_{i:02d}.bin": rng.randbytes(rng.choice([700, 9_000, 70_000, 300_000]))
        for i in range(files)
    }
    content["__init__.py"] = (
        b"import hashlib, json, pathlib\n"
        b"_here = pathlib.Path(__file__).parent\n"
        b"_meta = json.loads((_here / 'metadata.json').read_text())\n"
        b"for _name, _digest in _meta['files'].items():\n"
        b"    if hashlib.sha256((_here / _name).read_bytes()).hexdigest() != _digest:\n"
        b"        raise ImportError(f'{_name} was incomplete or wrong when imported')\n"
        b"__version__ = _meta['version']\n"
        b"FILES = len(_meta['files'])\n"
    )
    meta = {
        "name": "stress",
        "id": f"_stress_{uuid.uuid4().hex[:8]}",
        "version": "0.1.0",
        "license": "apache-2.0",
        "files": {rel: hashlib.sha256(data).hexdigest() for rel, data in content.items()},
    }
    content["metadata.json"] = json.dumps(meta, indent=1).encode()
    for rel, data in content.items():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_bytes(data)
    return content


STRESS_CHILD = """
import sys, threading, kernels
mods, errors = [], []
def load():
    try:
        mods.append(kernels.get_kernel(sys.argv[1], version=1))
    except BaseException as err:
        errors.append(repr(err))
threads = [threading.Thread(target=load) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors
assert len({id(m) for m in mods}) == 1
print("files", mods[0].FILES)
"""


def test_no_path_imports_a_variant_before_every_file_is_whole(hub, hf_cache, tmp_path):  # type: ignore[no-untyped-def]
    """Stress: 40 files fetched by parallel threads through dropped connections, 503s and delays;
    two writers SIGKILLed mid-download; a same-size but wrong blob already in the cache (what a
    crash or another tool can leave); then 4 processes x 4 threads load at once. Every import
    checks every file's sha256, the completion record is checked the instant it appears, and
    every load succeeds with the whole variant."""
    repo = unique_repo("rel-stress")
    variant = tmp_path / "torch-universal"
    content = _self_checking_variant(variant, files=40)
    commit = publish(hub.endpoint, repo, [variant], branch="v1")
    listing = {f.path: f for f in list_files(repo, commit)[0]}
    rc = RepoCache(repo, "kernel")

    # A blob of the right size and the wrong bytes is already there.
    torn = listing["build/torch-universal/data/part_07.bin"]
    rc.blob(torn.digest).parent.mkdir(parents=True, exist_ok=True)
    rc.blob(torn.digest).write_bytes(b"\0" * torn.size)

    # The completion record must never exist while a file of the snapshot is not whole.
    seen: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            if rc.completion(commit, "torch-universal") is not None:
                folder = rc.variant_dir(commit, "torch-universal")
                bad = [
                    rel
                    for rel, data in content.items()
                    if not (folder / rel).is_file() or (folder / rel).read_bytes() != data
                ]
                seen.append(",".join(bad) or "whole")
                return
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    hub.clear_faults()
    try:
        # Two writers that die mid-download, one of them holding the download lock: files
        # part_00-19 arrive (part_07 over the wrong blob), part_20-39 never do.
        hub.add_fault(path_regex=r"/resolve/.*/part_[23]\d", method="GET", delay_s=30, times=None)
        hub.reset_requests()
        victims = [
            subprocess.Popen(
                [sys.executable, "-c", f"import kernels; kernels.get_kernel({repo!r}, version=1)"],
                start_new_session=True,
            )
            for _ in range(2)
        ]
        deadline = time.monotonic() + 60
        while sum("/resolve/" in r.path for r in hub.requests()) < 15:
            assert time.monotonic() < deadline, "the writers never started downloading"
            time.sleep(0.05)
        for proc in victims:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        assert rc.completion(commit, "torch-universal") is None

        # What is left arrives through faults, each file failing at most 3 times (5 tries).
        hub.clear_faults()
        hub.latency_ms = 5
        hub.add_fault(path_regex=r"/resolve/.*/part_2\d", method="GET", truncate_at=500, times=3)
        hub.add_fault(path_regex=r"/resolve/.*/part_3[0-4]", method="GET", status=503, times=3)
        hub.add_fault(path_regex=r"/resolve/.*/part_3[5-9]", method="GET", delay_s=0.3, times=3)
        hub.reset_requests()
        loaders = [
            subprocess.Popen(
                [sys.executable, "-c", STRESS_CHILD, repo],
                env={**os.environ, "KERNELS_HTTP_RETRIES": "4"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        results = [p.communicate(timeout=300) for p in loaders]
        fetched = [r for r in hub.requests() if "/resolve/" in r.path]
    finally:
        hub.latency_ms = 0
        hub.clear_faults()
        stop.set()
        watcher.join()
    assert [p.returncode for p in loaders] == [0] * 4, [err for _, err in results if err][:1]
    assert all(out.split() == ["files", str(len(content) - 1)] for out, _ in results), results
    assert seen == ["whole"], seen
    # The faults were met: three 503s, three bodies cut after 500 bytes.
    assert sum(r.status == 503 for r in fetched) == 3, fetched
    assert sum("part_2" in r.path and r.bytes_sent == 500 for r in fetched) == 3, fetched
    assert rc.blob(torn.digest).read_bytes() == content["data/part_07.bin"]


@pytest.mark.parametrize(
    ("pyproject", "lock", "match"),
    [
        ('[tool.kernels\n"x" = 1\n', None, "invalid TOML"),
        ("[tool.kernels]\ndependancies = {}\n", None, "unknown key"),
        ("[tool.kernels]\ndependencies = []\n", None, "must be a table"),
        (
            '[tool.kernels.dependencies]\n"org/name" = 1\n',
            '{"lock-version": 1, "kernels": {"org/name": {"commit": "main", "spec": {"version": 1}}}}',
            "commit must be 40",
        ),
        (
            '[tool.kernels.dependencies]\n"org/name" = 1\n',
            '{"lock-version": 1, "kernels": {"org/name": {"commit": "'
            + "a" * 40
            + '", "spec": {"version": 1}, "variants": {"v": {"hash": "md5-x"}}}}}',
            "hash must be",
        ),
        (
            '[tool.kernels.dependencies]\n"org/name" = 1\n',
            '{"lock-version": 7, "kernels": {}}',
            "unsupported lock-version",
        ),
    ],
    ids=["bad-toml", "unknown-key", "wrong-type", "bad-commit", "bad-hash", "future-lock"],
)
def test_bad_input_is_one_clear_line_and_touches_nothing(tmp_path, pyproject, lock, match):  # type: ignore[no-untyped-def]
    """Malformed config or lock: exit 1, one `error:` line naming the file, files unchanged."""
    tmp_path = tmp_path / "project"
    tmp_path.mkdir()
    (tmp_path / "pyproject.toml").write_text(pyproject)
    if lock is not None:
        (tmp_path / "kernels.lock").write_text(lock)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    for cmd in (
        ["lock", str(tmp_path)],
        ["download", str(tmp_path)] if lock else ["check", str(tmp_path)],
    ):
        out = subprocess.run([*CLI, *cmd], capture_output=True, text=True)
        assert out.returncode == 1, (cmd, out.stdout, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert lines and lines[0].startswith("error: ") and "Traceback" not in out.stderr
        assert re.search(match, out.stderr), out.stderr
        assert ("pyproject.toml" in out.stderr) or ("kernels.lock" in out.stderr)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_token_goes_only_to_the_endpoint_and_never_into_errors(evil, monkeypatch):  # type: ignore[no-untyped-def]
    """A redirect to another host does not carry the token; error messages never show it."""
    other = HostileHub()
    try:
        data = b"value = 3\n"
        entry = {
            "type": "file",
            "path": f"build/{HERE}/__init__.py",
            "oid": blob_id(data),
            "size": len(data),
        }
        evil.json(f"/api/kernels/evil/k/tree/{SHA}/build", [entry])
        evil.raw(
            f"/kernels/evil/k/resolve/{SHA}/build/{HERE}/__init__.py",
            b"",
            status=302,
            headers={"Location": f"{other.endpoint}/cdn/blob"},
        )
        other.raw("/cdn/blob", data)
        assert get_kernel("evil/k", version=1).value == 3
        assert any(h.get("authorization") == f"Bearer {DUMMY_TOKEN}" for _, h in evil.seen)
        assert other.seen and all("authorization" not in h for _, h in other.seen)
        evil.json("/api/kernels/evil/k2/revision/v1", {"error": "boom"}, status=500)
        with pytest.raises(HubError) as info:
            get_kernel("evil/k2", version=1)
        assert DUMMY_TOKEN not in str(info.value)
        out = subprocess.run(
            [*CLI, "info", "evil/k2", "--revision", "v1"],
            capture_output=True,
            text=True,
            env={**os.environ, "KERNELS_HTTP_RETRIES": "0"},
        )
        assert out.returncode == 1 and DUMMY_TOKEN not in out.stderr + out.stdout
    finally:
        other.stop()


def test_offline_misses_fail_at_once_with_the_command(hub, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Offline and not cached: immediate failure naming the fix, zero requests."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset_requests()
    t = time.monotonic()
    for kwargs in ({"version": 1}, {"version": ">=1"}, {"revision": "main"}, {"revision": SHA}):
        with pytest.raises(NotInCacheError, match=r"kernels download|online"):
            get_kernel("kernels-test/not-cached", **kwargs)  # type: ignore[arg-type]
    assert time.monotonic() - t < 2 and hub.requests() == []


def test_reliability_table_matches_the_tests() -> None:
    """docs/reliability.md names every test in this file, and only those."""
    table = (ROOT / "docs" / "reliability.md").read_text()
    named = set(re.findall(r"test_reliability\.py::(test_[a-z0-9_]+)", table))
    here = {n for n in globals() if n.startswith("test_") and callable(globals()[n])}
    here.discard("test_reliability_table_matches_the_tests")
    assert named == here, (sorted(here - named), sorted(named - here))
