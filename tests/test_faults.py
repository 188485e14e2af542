"""Faults of the machine rather than the network: permissions, read-only mounts, full disks,
interruptions, files deleted behind the library's back, ordinary mistakes and misleading messages.

Full disks are small tmpfs mounts and read-only folders are read-only bind mounts; permission
cases run as the unprivileged user ``nobody``. Those need root (CI runs as root) and are skipped
without it. docs/reliability.md lists every test here with its outcome; a test below keeps that
table true.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hostile import HostileHub
from kernelhub import ROOT, publish, unique_repo, universal_rmsnorm
from kernels import (
    HubError,
    IntegrityError,
    NotInCacheError,
    ResolutionError,
    get_kernel,
    load_kernel,
)
from kernels.cache import RepoCache
from kernels.cli import main

CLI = [sys.executable, "-m", "kernels"]
VARIANT = "torch-universal"

needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: mounts a tmpfs or a read-only bind, or runs as nobody"
)


# ---- helpers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(path: Path, size: str = "1m") -> Iterator[Path]:
    """``path`` as a fresh tmpfs of ``size`` (a small disk to fill)."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """``path`` bind-mounted read-only over itself (EROFS for everyone, root included)."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(folder: Path) -> None:
    """Fill the file system holding ``folder`` to the last byte."""
    for name, size in (("filler", 65536), ("filler-tail", 1)):
        fd = os.open(folder / name, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while os.write(fd, b"\0" * size):
                pass
        except OSError as err:
            assert err.errno == errno.ENOSPC, err
        finally:
            os.close(fd)


def one_error_line(out: subprocess.CompletedProcess[str]) -> str:
    """The single `error:` line of a failed command (asserting exit 1 and no traceback); progress
    lines (`kernels download` prints one per kernel off a terminal) may precede it."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, out.stderr
    return errors[0] + "\n"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``kernels ARGS`` run in this process (quicker than a child; an exception the CLI lets
    through fails the test, as a traceback would)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exit:
            code = int(exit.code or 0)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def project(path: Path, repo: str, spec: str = "1") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text(
        f'[project]\nname = "sample"\nversion = "0.1.0"\n\n[tool.kernels.dependencies]\n"{repo}" = {spec}\n'
    )
    return path


def cache_files(cache: Path, pattern: str) -> list[Path]:
    return sorted(p for p in cache.rglob(pattern) if p.is_file())


@pytest.fixture(scope="module")
def norm(hub):  # type: ignore[no-untyped-def]
    """A published kernel: branch v1, tag v0.1.0."""
    repo = unique_repo("faults-norm")
    commit = publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    # A second commit, so that `hf cache rm` of one revision keeps the repo's folder.
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.1")], branch="v2", also_main=False)
    return repo, commit


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder outside pytest's root-only tmp folder that ``nobody`` can enter."""
    folder = Path(tempfile.mkdtemp(prefix="kernels-faults-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# The interpreter and the checkout may live where only root can read (pyenv under /root): the
# child imports what the work needs while still root, then becomes nobody, with an empty
# sys.path (as if nothing it has not imported were readable), before it touches a cache or a
# project.
AS_NOBODY = """
import os, pwd, sys
import huggingface_hub, huggingface_hub.errors, huggingface_hub.utils, torch
import kernels, kernels.cli, kernels.fetch, kernels.locked, kernels.loader, kernels.project
import kernels.verify, kernels.http, kernels.hub, kernels.edit, kernels.inspect, kernels.distmeta
import kernels_lockembed, kernels.progress, kernels.throttle, kernels.interruptible
import encodings.idna
try:  # one request as root loads the HTTP stack's lazy modules
    kernels.http.get(kernels.hub.endpoint() + "/api/kernels/warm/up/refs")
except Exception:
    pass
who = pwd.getpwnam("nobody")
os.setgroups([]); os.setgid(who.pw_gid); os.setuid(who.pw_uid)
assert os.geteuid() == who.pw_uid
sys.path[:] = []
"""


def as_nobody(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as the user nobody (see ``AS_NOBODY``)."""
    script = AS_NOBODY + textwrap.dedent(code)
    home = env["HF_HOME"]
    full = {**os.environ, **env, "HOME": home, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=full, cwd=home
    )


# ---- data loss and permissions ------------------------------------------------------------------


@needs_root
def test_full_disk_leaves_pyproject_and_lock_as_they_were(hub, norm, tmp_path):  # type: ignore[no-untyped-def]
    """`kernels add` and `kernels lock` on a full disk: "no space left on" the file, exit 1, the
    pyproject byte for byte as it was, no lock and no temporary file."""
    repo, _ = norm
    with tmpfs(tmp_path / "disk") as disk:
        proj = project(disk / "p", repo)
        before = (proj / "pyproject.toml").read_bytes()
        fill(disk)
        for args in (["add", f"{repo}@1", "--dir", str(proj)], ["lock", str(proj)]):
            err = one_error_line(cli(*args))
            assert f"no space left on {proj}" in err, err
            assert (proj / "pyproject.toml").read_bytes() == before
            assert sorted(p.name for p in proj.iterdir()) == ["pyproject.toml"]


def test_written_files_honour_the_umask_and_keep_their_mode(hub, norm, tmp_path, hf_cache):  # type: ignore[no-untyped-def]
    """Under umask 022 a new lock and the cache are 0644 (not mkstemp's 0600); a rewritten
    pyproject keeps its own mode."""
    repo, _ = norm
    proj = project(tmp_path / "p", repo)
    (proj / "pyproject.toml").chmod(0o640)
    for args in (
        ["lock", str(proj)],
        ["download", str(proj)],
        ["add", f"{repo}@1", "--dir", str(proj)],
    ):
        with umask(0o022):
            out = cli(*args)
        assert out.returncode == 0, out.stderr
    assert (proj / "kernels.lock").stat().st_mode & 0o777 == 0o644
    assert (proj / "pyproject.toml").stat().st_mode & 0o777 == 0o640
    written = cache_files(hf_cache, "*")
    assert any(p.parent.name == "blobs" for p in written)
    modes = {str(p.relative_to(hf_cache)): oct(p.stat().st_mode & 0o777) for p in written}
    assert set(modes.values()) == {"0o644"}, modes


@needs_root
def test_cache_and_lock_made_by_root_load_as_another_user(hub, norm, shared, monkeypatch):  # type: ignore[no-untyped-def]
    """A cache and a lock written by root (a Dockerfile) load for the unprivileged app that runs
    later, offline, although it cannot write a memo there."""
    repo, _ = norm
    cache = shared / "cache"
    proj = project(shared / "app", repo)
    env = {"HF_HUB_CACHE": str(cache)}
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    for args in (["lock", str(proj)], ["download", str(proj)]):
        with umask(0o022):
            out = cli(*args)
        assert out.returncode == 0, out.stderr
    home = shared / "home"
    home.mkdir()
    os.chown(home, pwd.getpwnam("nobody").pw_uid, -1)
    out = as_nobody(
        f"""
        from kernels import get_kernel, load_kernel
        a = load_kernel({repo!r}, lockfile={str(proj / "kernels.lock")!r})
        b = get_kernel({repo!r}, version=1)
        print(a.__version__, b.__version__, hasattr(a, "rms_norm"))
        """,
        {**env, "HF_HOME": str(home), "HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0.1.0", "0.1.0", "True"]


# ---- read-only and full caches ------------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("fault", ["read-only", "full"])
def test_read_only_or_full_cache_loads_what_it_holds(hub, norm, tmp_path, monkeypatch, fault):  # type: ignore[no-untyped-def]
    """Online `get_kernel` (which asks the Hub and would record refs) and `load_kernel` (which
    would record its verification memo) load from a read-only or full cache."""
    repo, _ = norm
    proj = project(tmp_path / "p", repo)
    lock = proj / "kernels.lock"
    with tmpfs(tmp_path / "cache", "16m") as cache:
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        monkeypatch.setenv("KERNELS_REF_MAX_AGE", "0")
        assert cli("lock", str(proj)).returncode == 0
        assert cli("download", str(proj)).returncode == 0
        if fault == "full":
            fill(cache)
        with read_only(cache) if fault == "read-only" else contextlib.nullcontext(cache):
            mods = [
                get_kernel(repo, version=1),
                get_kernel(repo, version=">=0.1"),
                load_kernel(repo, lockfile=lock),
            ]
        assert not list(cache.rglob(".kernels/verified/*/*"))
    assert [m.__version__ for m in mods] == ["0.1.0"] * 3


# ---- outside deletion -----------------------------------------------------------------------------


def _hf_cache_rm(cache: Path, commit: str) -> None:
    from huggingface_hub import scan_cache_dir

    scan_cache_dir(cache).delete_revisions(commit).execute()


@pytest.mark.parametrize("how", ["rm-snapshot", "hf-cache-rm", "rm-blob", "edit-blob"])
def test_deleted_cache_files_are_repaired_online_and_named_offline(  # type: ignore[no-untyped-def]
    hub, norm, tmp_path, hf_cache, monkeypatch, how
):
    """After `hf cache rm`, `rm -rf snapshots/<sha>` or a lost blob: offline loads raise
    NotInCacheError naming the missing file (a blob edited in place: IntegrityError); online
    loads and `kernels download` repair the cache (fetching only what is missing or wrong), and
    `kernels download` never reports a kernel it did not make loadable."""
    repo, commit = norm
    proj = project(tmp_path / "p", repo)
    lock = proj / "kernels.lock"
    assert cli("lock", str(proj)).returncode == 0
    assert cli("download", str(proj)).returncode == 0
    rc = RepoCache(repo, "kernel", hf_cache)
    blob = (rc.variant_dir(commit, VARIANT) / "_impl.py").resolve()
    if how == "rm-snapshot":
        shutil.rmtree(rc.snapshot(commit))
    elif how == "hf-cache-rm":
        assert get_kernel(repo, version=2).__version__ == "0.1.1"
        _hf_cache_rm(hf_cache, commit)
    elif how == "rm-blob":
        blob.unlink()
    else:
        blob.write_bytes(blob.read_bytes().replace(b"def ", b"def_", 1))  # same size
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if how == "edit-blob":
        with pytest.raises(IntegrityError, match=r"_impl\.py"):
            load_kernel(repo, lockfile=lock)
    else:
        missing = "_impl.py" if how == "rm-blob" else "__init__.py"
        with pytest.raises(
            NotInCacheError, match=rf"{VARIANT}/{missing} is gone.*kernels download"
        ):
            load_kernel(repo, lockfile=lock)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    hub.reset_requests()
    out = cli("download", str(proj))
    assert out.returncode == 0, out.stderr
    fetched = [r.path for r in hub.requests() if "/resolve/" in r.path]
    if how == "rm-snapshot":
        assert fetched == []  # the blobs were still there: only the links were remade
    elif how in ("rm-blob", "edit-blob"):
        assert len(fetched) == 1 and fetched[0].endswith("/_impl.py")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_kernel(repo, lockfile=lock).rms_norm  # checked against the lock's hash first
    monkeypatch.delenv("HF_HUB_OFFLINE")
    shutil.rmtree(rc.snapshot(commit))
    assert get_kernel(repo, revision=commit).rms_norm  # online get_kernel repairs too
    assert rc.completion(commit, VARIANT) is not None


@needs_root
def test_unreadable_cached_file_is_named_then_repaired(hub, norm, shared, monkeypatch):  # type: ignore[no-untyped-def]
    """A cached file the app cannot read: offline, NotInCacheError naming it (not a raw
    PermissionError or a module missing functions); online, fetched again and loaded."""
    repo, commit = norm
    cache = shared / "cache"
    home = shared / "home"
    home.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert get_kernel(repo, version=1).rms_norm
    uid = pwd.getpwnam("nobody").pw_uid
    for p in [cache, home, *cache.rglob("*")]:
        os.chown(p, uid, -1, follow_symlinks=False)
    blob = (RepoCache(repo, "kernel", cache).variant_dir(commit, VARIANT) / "_impl.py").resolve()
    blob.chmod(0)
    code = f"""
        os.environ["HF_HUB_OFFLINE"] = "1"
        try:
            kernels.get_kernel({repo!r}, version=1)
        except Exception as err:
            print(type(err).__name__, err)
        del os.environ["HF_HUB_OFFLINE"]
        print(kernels.get_kernel({repo!r}, version=1).rms_norm.__name__)
        """
    out = as_nobody(code, {"HF_HUB_CACHE": str(cache), "HF_HOME": str(home)})
    assert out.returncode == 0, out.stderr
    offline, online = out.stdout.strip().splitlines()
    assert offline.startswith("NotInCacheError") and f"build/{VARIANT}/_impl.py" in offline
    assert online == "rms_norm"


# ---- full disk during a download, interruption, leftovers -----------------------------------------


@pytest.fixture(scope="module")
def big(hub, tmp_path_factory):  # type: ignore[no-untyped-def]
    """A kernel with a 2 MB data file (more than a 1 MB disk holds)."""
    variant = tmp_path_factory.mktemp("big") / VARIANT
    shutil.copytree(universal_rmsnorm("0.1.0"), variant)
    (variant / "data.bin").write_bytes(os.urandom(2 << 20))
    repo = unique_repo("faults-big")
    return repo, publish(hub.endpoint, repo, [variant], branch="v1")


@needs_root
def test_full_disk_during_download_says_so_and_keeps_nothing(hub, big, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A cache that fills up mid-file: "no space left on" the cache (not HTTP 416, not a raw
    OSError), one try only, no partial file, no completion record; exit 1 from the CLI."""
    repo, _ = big
    proj = project(tmp_path / "p", repo)
    assert cli("lock", str(proj)).returncode == 0
    with tmpfs(tmp_path / "cache") as cache:
        monkeypatch.setenv("HF_HUB_CACHE", str(cache))
        hub.reset_requests()
        err = one_error_line(cli("download", str(proj)))
        # "HTTP 416", not a bare "416": the blob's content id in the path may hold those digits.
        assert f"no space left on {cache}" in err and "HTTP 416" not in err, err
        assert len([r for r in hub.requests() if r.path.endswith("/data.bin")]) == 1
        assert cache_files(cache, "*.incomplete") == [] and cache_files(cache, "complete/*/*") == []


def test_ctrl_c_stops_a_download_at_once_and_marks_nothing_complete(hub, norm, tmp_path, hf_cache):  # type: ignore[no-untyped-def]
    """SIGINT to `kernels download` while a transfer hangs: exit 130 within a few seconds (not
    after the transfer), no completion record; the next run completes."""
    repo, _ = norm
    proj = project(tmp_path / "p", repo)
    assert cli("lock", str(proj)).returncode == 0
    hub.add_fault(path_regex="/resolve/.*/_impl.py", method="GET", delay_s=30, times=1)
    hub.reset_requests()
    try:
        proc = subprocess.Popen([*CLI, "download", str(proj)], stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while (
            not any("/resolve/" in r.path for r in hub.requests()) and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        time.sleep(0.5)  # the delayed _impl.py is in flight
        assert proc.poll() is None
        t = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        took = time.monotonic() - t
    finally:
        hub.clear_faults()
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert took < 5, f"Ctrl-C took {took:.1f} s"
    assert cache_files(hf_cache, "complete/*/*") == []
    assert cli("download", str(proj)).returncode == 0
    assert len(cache_files(hf_cache, "complete/*/*")) == 1


@pytest.mark.parametrize("leftover", ["prefix", "garbage"])
def test_incomplete_leftovers_are_resumed_or_replaced(hub, norm, hf_cache, leftover):  # type: ignore[no-untyped-def]
    """A `.incomplete` file left by a killed run is resumed with a Range request when its bytes
    are right, replaced when they are wrong; none is left behind."""
    repo, commit = norm
    get_kernel(repo, revision=commit)
    rc = RepoCache(repo, "kernel", hf_cache)
    blob = (rc.variant_dir(commit, VARIANT) / "_impl.py").resolve()
    data = blob.read_bytes()
    blob.unlink()
    half = data[: len(data) // 2] if leftover == "prefix" else b"#" * (len(data) // 2)
    blob.with_name(blob.name + ".incomplete").write_bytes(half)
    hub.reset_requests()
    get_kernel(repo, revision=commit)
    impl = [r.status for r in hub.requests() if r.path.endswith("/_impl.py")]
    assert impl == ([206] if leftover == "prefix" else [206, 200]), impl
    assert blob.read_bytes() == data
    assert cache_files(hf_cache, "*.incomplete") == []


# ---- ordinary mistakes: one line, exit 1 (2 for usage) --------------------------------------------


def _busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, int(s.getsockname()[1])


@pytest.mark.parametrize(
    "case",
    [
        "lock-a-file",
        "pyproject-is-a-folder",
        "pyproject-not-utf8",
        "tool-not-a-table",
        "serve-root-is-a-file",
        "serve-port-in-use",
        "bad-http-timeout",
        "bad-http-retries",
    ],
)
def test_ordinary_mistakes_are_one_line_naming_the_fix(tmp_path, monkeypatch, case):  # type: ignore[no-untyped-def]
    """Each gets one `error:` line naming the thing and what to do, exit 1, no traceback."""
    proj = tmp_path / "p"
    proj.mkdir()
    expect = str(proj)
    held = None
    if case == "lock-a-file":
        (proj / "file").write_text("x")
        args, expect = ["lock", str(proj / "file")], f"{proj / 'file'} is a file, not a folder"
    elif case == "pyproject-is-a-folder":
        (proj / "pyproject.toml").mkdir()
        args, expect = ["lock", str(proj)], f"{proj / 'pyproject.toml'} is a folder"
    elif case == "pyproject-not-utf8":
        (proj / "pyproject.toml").write_bytes(b'[project]\nname = "caf\xe9"\n')
        args, expect = ["check", str(proj)], "not UTF-8 text"
    elif case == "tool-not-a-table":
        (proj / "pyproject.toml").write_text('tool = "x"\n')
        args, expect = ["lock", str(proj)], "`tool` must be a table"
    elif case == "serve-root-is-a-file":
        (proj / "root").write_text("x")
        args, expect = ["serve", str(proj / "root")], "is a file; give a folder"
    elif case == "serve-port-in-use":
        held, port = _busy_port()
        args, expect = (
            ["serve", str(proj / "root"), "--port", str(port)],
            f"port {port} on 127.0.0.1 is already in use",
        )
    else:
        var, value = (
            ("KERNELS_HTTP_TIMEOUT", "abc")
            if case == "bad-http-timeout"
            else ("KERNELS_HTTP_RETRIES", "x")
        )
        monkeypatch.setenv(var, value)
        args, expect = ["info", "kernels-test/anything"], f"{var}={value!r} is not valid"
    try:
        err = one_error_line(cli(*args))
    finally:
        if held is not None:
            held.close()
    assert expect in err, err
    assert "Hub" not in err or case.startswith("serve"), err  # a setting is not blamed on the Hub


def test_a_port_out_of_range_is_a_usage_error() -> None:
    """`kernels serve --port 70000` is refused by the argument parser: exit 2, no traceback."""
    out = subprocess.run([*CLI, "serve", ".", "--port", "70000"], capture_output=True, text=True)
    assert out.returncode == 2 and "not a port" in out.stderr and "Traceback" not in out.stderr


@needs_root
@pytest.mark.parametrize("how", ["read-only-mount", "not-ours"])
def test_read_only_project_folder_is_one_line(hub, norm, tmp_path, shared, how):  # type: ignore[no-untyped-def]
    """`kernels lock` and `kernels add` in a folder they cannot write (a read-only mount; as
    nobody, a folder of root's): one line naming the file, nothing changed."""
    repo, _ = norm
    base = tmp_path if how == "read-only-mount" else shared
    proj = project(base / "p", repo)
    before = (proj / "pyproject.toml").read_bytes()
    commands = (["lock", str(proj)], ["add", f"{repo}@1", "--dir", str(proj)])
    if how == "read-only-mount":
        with read_only(proj):
            errors = [one_error_line(cli(*args)) for args in commands]
        assert all("read-only file system" in e and str(proj) in e for e in errors), errors
    else:
        home = shared / "home"
        home.mkdir()
        env = {"HF_HOME": str(home), "HF_HUB_CACHE": str(home / "cache")}
        os.chown(home, pwd.getpwnam("nobody").pw_uid, -1)
        out = as_nobody(f"print([kernels.cli.main(a) for a in {list(commands)!r}])", env)
        assert out.returncode == 0 and out.stdout.strip() == "[1, 1]", out.stderr
        errors = out.stderr.strip().splitlines()
        assert len(errors) == 2 and "Traceback" not in out.stderr, out.stderr
        assert all(e.startswith(f"error: permission denied for {proj}") for e in errors), errors
    assert sorted(p.name for p in proj.iterdir()) == ["pyproject.toml"]
    assert (proj / "pyproject.toml").read_bytes() == before


# ---- misleading messages ---------------------------------------------------------------------------


def test_a_malformed_lock_is_replaced_by_kernels_lock(hub, norm, tmp_path):  # type: ignore[no-untyped-def]
    """A lock that cannot be read: `kernels download` says to run `kernels lock`, and
    `kernels lock` then replaces it, saying so."""
    repo, commit = norm
    proj = project(tmp_path / "p", repo)
    (proj / "kernels.lock").write_text('{"lock-version": 1, "kernels": {')
    assert "run `kernels lock`" in one_error_line(cli("download", str(proj)))
    out = cli("lock", str(proj))
    assert out.returncode == 0, out.stderr
    assert "replaced a lock that could not be read" in out.stderr and "not valid JSON" in out.stderr
    assert json.loads((proj / "kernels.lock").read_text())["kernels"][repo]["commit"] == commit


def test_a_variant_without_metadata_is_named_after_its_repo(hf_api, tmp_path):  # type: ignore[no-untyped-def]
    """Without metadata.json the module is named after the repo, not after the cache folder."""
    variant = tmp_path / VARIANT
    shutil.copytree(universal_rmsnorm("0.1.0"), variant)
    (variant / "metadata.json").unlink()
    repo = unique_repo("no-meta")
    hf_api.create_repo(repo, repo_type="kernel")
    hf_api.upload_folder(
        repo_id=repo, repo_type="kernel", folder_path=variant, path_in_repo=f"build/{VARIANT}"
    )
    mod = get_kernel(repo)
    assert mod.__name__.startswith("_" + repo.split("/")[1].replace("-", "_")), mod.__name__
    assert mod.rms_norm


def test_a_string_version_hints_at_the_int(norm):  # type: ignore[no-untyped-def]
    """`version="1"` matches tags v1...; when none matches, the error says the int 1 is branch v1."""
    repo, _ = norm
    with pytest.raises(ResolutionError, match=r"pass the int version=1"):
        get_kernel(repo, version="1")


def test_a_refused_token_is_mentioned(monkeypatch):  # type: ignore[no-untyped-def]
    """A 401 from the API or from a file download says to check HF_TOKEN."""
    evil = HostileHub()
    try:
        monkeypatch.setenv("HF_ENDPOINT", evil.endpoint)
        monkeypatch.setenv("KERNELS_HTTP_RETRIES", "0")
        bad = {"X-Error-Message": "Invalid credentials in Authorization header"}
        evil.json("/api/kernels/evil/k/revision/v1", {"error": "no"}, status=401, headers=bad)
        with pytest.raises(HubError, match=r"401.*HF_TOKEN"):
            get_kernel("evil/k", version=1)
        sha = "1234567890abcdef1234567890abcdef12345678"
        body = b"x = 1\n"
        oid = hashlib.sha1(b"blob %d\x00" % len(body) + body, usedforsecurity=False).hexdigest()
        entry = {"type": "file", "path": f"build/{VARIANT}/__init__.py", "oid": oid, "size": 6}
        evil.json("/api/kernels/evil/k/revision/v2", {"sha": sha})
        evil.json(f"/api/kernels/evil/k/tree/{sha}/build", [entry])
        evil.json("/api/organizations/evil/overview", {"trustedKernelPublisher": True})
        evil.raw(f"/kernels/evil/k/resolve/{sha}/build/{VARIANT}/__init__.py", b"", status=401)
        with pytest.raises(HubError, match=r"HTTP 401.*HF_TOKEN"):
            get_kernel("evil/k", version=2)
    finally:
        evil.stop()


def test_no_sleep_after_the_last_attempt(hub, norm, monkeypatch):  # type: ignore[no-untyped-def]
    """A failure on the last attempt allowed is raised at once, not after a backoff; a refusal
    asking for a wait longer than the whole bound fails at once instead of sleeping first."""
    repo, commit = norm
    monkeypatch.setenv("KERNELS_HTTP_RETRIES", "0")
    monkeypatch.setenv("KERNELS_HTTP_STALL_TIMEOUT", "5")
    for status, match in ((500, "HTTP 500"), (429, "KERNELS_HTTP_STALL_TIMEOUT=5")):
        hub.add_fault(path_regex="/resolve/.*/_impl.py", status=status, retry_after=20, times=None)
        t = time.monotonic()
        try:
            with pytest.raises(HubError, match=match):
                get_kernel(repo, revision=commit)
        finally:
            hub.clear_faults()
        assert time.monotonic() - t < 4, status


def test_fault_table_matches_the_tests() -> None:
    """docs/reliability.md names every test in this file, and only those."""
    table = (ROOT / "docs" / "reliability.md").read_text()
    named = set(re.findall(r"test_faults\.py::(test_[a-z0-9_]+)", table))
    here = {n for n in globals() if n.startswith("test_") and callable(globals()[n])}
    here.discard("test_fault_table_matches_the_tests")
    assert named == here, (sorted(here - named), sorted(named - here))
