"""Scale: a rate-limited Hub, a 300-file kernel, many processes, and nodes of a torch.distributed job.

The Hub here allows 20 requests per second (``kernels serve --rate-limit 20`` as a subprocess, and
the in-process :class:`~kernels.server.HubServer` with the same limit), answering 429 with
``Retry-After: 1`` beyond, as the issue measured. A 300-file kernel then needs at least 15 s: the
one-process and eight-process loads run at the same time, each against its own server, so the
module costs that floor once.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from kernelhub import publish, unique_repo, universal_rmsnorm
from kernels import get_kernel, install_kernel
from kernels.errors import HubError
from kernels.server import HubServer

N_FILES = 300
RATE = 20.0


@pytest.fixture(scope="module")
def limited(tmp_path_factory):  # type: ignore[no-untyped-def]
    """A Hub of its own holding one 300-file kernel (no limit until a test sets one)."""
    work = tmp_path_factory.mktemp("limited")
    root = work / "hub"
    server = HubServer(root, trusted_orgs=["kernels-test"]).start()
    variant = work / "variant" / "torch-universal"
    shutil.copytree(universal_rmsnorm(), variant)
    have = sum(1 for p in variant.rglob("*") if p.is_file())
    (variant / "many").mkdir()
    for i in range(N_FILES - have):
        (variant / "many" / f"part_{i:03d}.py").write_text(f"PART = {i}\n")
    repo = unique_repo("scale")
    publish(server.endpoint, repo, [variant], branch="v1")
    yield server, repo, root
    server.stop()


LOAD = """
import json, os, sys, time
from pathlib import Path
import huggingface_hub, kernels  # imported before the start, as a job would have
gate = Path(sys.argv[2])
(gate / f"ready-{os.getpid()}").touch()
while not (gate / "go").exists():
    time.sleep(0.01)
t = time.monotonic()
path = kernels.install_kernel(sys.argv[1], version=1)
print(json.dumps({"seconds": time.monotonic() - t, "files": sum(1 for p in path.rglob("*") if p.is_file())}))
"""


def _drain(fd: int, into: bytearray) -> None:
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return
        if not data:
            return
        into += data


def test_300_files_at_20_per_second_one_and_eight_processes(limited, tmp_path):  # type: ignore[no-untyped-def]
    """Under 20 req/s, one process and eight processes (one cache) load a 300-file kernel without
    an error, each within 1.5x the floor (requests / rate); each file is served once; the one on a
    terminal shows a progress bar."""
    server, repo, root = limited
    serve = ["serve", str(root), "--rate-limit", f"{RATE:g}", "--trust-org", "kernels-test"]
    cli = subprocess.Popen(
        [sys.executable, "-m", "kernels", *serve],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert cli.stdout is not None
        endpoint = cli.stdout.readline().strip()
        server.rate_limit = RATE
        gate = tmp_path / "gate"
        gate.mkdir()
        shared = {**os.environ, "HF_ENDPOINT": server.endpoint, "HF_HUB_CACHE": str(tmp_path / "a")}
        alone = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(tmp_path / "b")}
        master, slave = pty.openpty()
        cmd = [sys.executable, "-c", LOAD, repo, str(gate)]
        one = subprocess.Popen(cmd, env=alone, stdout=subprocess.PIPE, stderr=slave, text=True)
        os.close(slave)
        terminal = bytearray()
        reader = threading.Thread(target=_drain, args=(master, terminal), daemon=True)
        reader.start()
        eight = [
            subprocess.Popen(
                cmd, env=shared, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(8)
        ]
        procs = [one, *eight]
        deadline = time.monotonic() + 120
        while len(list(gate.glob("ready-*"))) < len(procs) and time.monotonic() < deadline:
            assert all(p.poll() is None for p in procs), "a child died before the start"
            time.sleep(0.05)
        server.reset_requests()
        (gate / "go").touch()
        outs = [p.communicate(timeout=180) for p in procs]
        reader.join(timeout=10)
        os.close(master)
    finally:
        cli.terminate()
        cli.wait(timeout=30)
        server.rate_limit = None
    errors = [err for p, (_, err) in zip(procs, outs, strict=True) if p.returncode != 0]
    assert not errors, errors[0][-2000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert all(r["files"] == N_FILES for r in results)

    # One process: F + 2 requests (revision, listing, files), the first 20 at once.
    floor_one = (N_FILES + 2) / RATE
    assert results[0]["seconds"] < 1.5 * floor_one, (results[0], floor_one)
    assert results[0]["seconds"] > (N_FILES + 2 - RATE) / RATE * 0.95  # the limit held
    shown = terminal.decode(errors="replace")
    assert "\r" in shown and f"/{N_FILES} files" in shown and "%" in shown, shown[-500:]

    # Eight processes sharing a cache: each file once; every load within 1.5x the floor.
    records = server.requests()
    served = [r for r in records if r.status != 429]
    assert {r.status for r in served} == {200}, Counter(r.status for r in served)
    files = Counter(r.path for r in served if "/resolve/" in r.path)
    assert len(files) == N_FILES and set(files.values()) == {1}
    assert any(r.status == 429 for r in records)  # the limit was reached, and waited out
    floor_eight = len(served) / RATE
    slowest = max(r["seconds"] for r in results[1:])
    assert slowest < 1.5 * floor_eight, (slowest, floor_eight, len(served))


def test_rate_limit_answers_429_with_retry_after_beyond_the_rate(limited):  # type: ignore[no-untyped-def]
    """The server's limit: bursts of one second's worth, then 429 with Retry-After and the IETF
    RateLimit headers, stating the policy; refused requests take no allowance."""
    import urllib.error
    import urllib.request

    server, repo, _ = limited
    url = f"{server.endpoint}/api/kernels/{repo}/revision/v1"
    server.rate_limit = 3
    try:
        statuses, refusal = [], None
        for _ in range(5):
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    statuses.append(r.status)
            except urllib.error.HTTPError as err:
                statuses.append(err.code)
                refusal = err.headers
        assert statuses == [200, 200, 200, 429, 429]
        assert refusal is not None and refusal["Retry-After"] == "1"
        assert refusal["RateLimit-Policy"] == '"token bucket";"requests";q=3;w=1'
        assert refusal["RateLimit"] == '"requests";r=0;t=1'
        time.sleep(0.4)  # one more token
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.status == 200
    finally:
        server.rate_limit = None
    with pytest.raises(ValueError):
        server.rate_limit = 0


def test_refusals_longer_than_the_bound_fail_naming_repo_and_limit(limited, monkeypatch):  # type: ignore[no-untyped-def]
    """A Hub answering only 429 (Retry-After: 1) for longer than KERNELS_HTTP_STALL_TIMEOUT: a clear
    error naming the repo and the bound, after that long, Retry-After honoured; a Hub asking for
    longer than the bound: at once, naming the limit it states."""
    server, repo, _ = limited
    monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
    monkeypatch.setenv("KERNELS_HTTP_STALL_TIMEOUT", "3")
    server.reset_requests()
    server.add_fault(path_regex="/resolve/", status=429, retry_after=1, times=None)
    t = time.monotonic()
    try:
        with pytest.raises(HubError) as info:
            install_kernel(repo, version=1)
    finally:
        server.clear_faults()
    elapsed = time.monotonic() - t
    msg = str(info.value)
    assert repo in msg and "HTTP 429" in msg and "KERNELS_HTTP_STALL_TIMEOUT=3 s" in msg, msg
    assert 3.0 <= elapsed < 8.0, elapsed
    refused = sum(1 for r in server.requests() if r.status == 429)
    assert refused < 60, refused  # paused and backed off, not hammering

    server.rate_limit = 0.01  # one request, then one per 100 s
    try:
        t = time.monotonic()
        with pytest.raises(HubError) as info:
            install_kernel(repo, version=1)
        elapsed = time.monotonic() - t
    finally:
        server.rate_limit = None
    msg = str(info.value)
    assert repo in msg and "1 request per 100 s" in msg and "wait 100 s" in msg, msg
    assert elapsed < 3.0


def test_kernels_download_shows_a_bar_on_a_terminal_and_lines_otherwise(limited, tmp_path):  # type: ignore[no-untyped-def]
    """`kernels download`: a redrawn bar of files and bytes on a terminal; plain lines in a log."""
    server, repo, _ = limited
    project = tmp_path / "p"
    project.mkdir()
    (project / "pyproject.toml").write_text(f'[tool.kernels.dependencies]\n"{repo}" = 1\n')
    env = {**os.environ, "HF_ENDPOINT": server.endpoint}
    cli = [sys.executable, "-m", "kernels"]
    subprocess.run([*cli, "lock", str(project)], env=env, check=True, capture_output=True)

    env["HF_HUB_CACHE"] = str(tmp_path / "log-cache")
    log = subprocess.run([*cli, "download", str(project)], env=env, capture_output=True, text=True)
    assert log.returncode == 0, log.stderr
    assert "\r" not in log.stderr and "\033" not in log.stderr
    assert f"[1/1] {repo} ok" in log.stderr
    assert f"fetched {N_FILES}/{N_FILES} files" in log.stderr

    env["HF_HUB_CACHE"] = str(tmp_path / "tty-cache")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*cli, "download", str(project)], env=env, stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    shown = bytearray()
    _drain(master, shown)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    text = shown.decode(errors="replace")
    assert "\r" in text and "\033[K" in text, text[-500:]
    assert f"{N_FILES}/{N_FILES} files" in text and "kB" in text and "100%" in text
    assert f"[1/1] {repo} ok" in text


DIST = """
import json, os, sys, time
import torch.distributed as dist
import kernels, kernels.distributed as kd

repo, broken = sys.argv[1], sys.argv[2]
rank = int(os.environ["RANK"])
dist.init_process_group("gloo", rank=rank, world_size=int(os.environ["WORLD_SIZE"]))
out = {"rank": rank}
got = kd.download(repo, version=1)
out["first"] = {"bytes": got.bytes_moved, "fetched": list(got.fetched), "nodes": got.nodes}
os.environ["HF_HUB_OFFLINE"] = "1"
out["loaded"] = kernels.get_kernel(repo, version=1).__version__
del os.environ["HF_HUB_OFFLINE"]
again = kd.download(repo, version=1)
out["again"] = {"bytes": again.bytes_moved, "fetched": list(again.fetched)}
t = time.monotonic()
try:
    kd.download(broken, version=1)
    out["broken"] = "no error"
except kernels.KernelsError as err:
    out["broken"] = {"type": type(err).__name__, "error": str(err), "seconds": time.monotonic() - t}
dist.destroy_process_group()
print(json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_nodes_of_three_ranks_fetch_once_and_load_offline(hub, tmp_path):  # type: ignore[no-untyped-def]
    """gloo over loopback, 2 nodes x 3 ranks, a cache per node: the Hub serves each file once for
    the whole job and every rank loads offline; asking again moves nothing; the fetching rank's
    Hub failing makes every rank raise, at once."""
    repo, broken = unique_repo("dist"), unique_repo("dist-broken")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1")
    hub.add_fault(path_regex=f"/api/kernels/{broken}/", status=500, times=None)
    hub.reset_requests()
    port = _free_port()
    procs = []
    for rank in range(6):
        env = {
            **os.environ,
            "RANK": str(rank),
            "WORLD_SIZE": "6",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "GLOO_SOCKET_IFNAME": "lo",
            "HF_HUB_CACHE": str(tmp_path / f"node{rank // 3}"),
            "KERNELS_HTTP_RETRIES": "1",
            "KERNELS_DIST_TIMEOUT": "60",
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", DIST, repo, broken],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        hub.clear_faults()
        for p in procs:
            if p.poll() is None:
                p.kill()
    errors = [err for p, (_, err) in zip(procs, outs, strict=True) if p.returncode != 0]
    assert not errors, errors[0][-3000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    variant_bytes = sum(
        f.stat().st_size for f in universal_rmsnorm("0.1.0").rglob("*") if f.is_file()
    )
    for r in results:
        assert r["first"]["nodes"] == 2 and len(r["first"]["fetched"]) == 1
        assert r["first"]["bytes"] == variant_bytes
        assert r["loaded"] == "0.1.0"
        assert r["again"] == {"bytes": 0, "fetched": []}
        b = r["broken"]
        assert b != "no error" and b["type"] == "DistributedDownloadError", b
        assert "rank 0" in b["error"] and broken in b["error"], b
        assert b["seconds"] < 10, b
    ours = [r for r in hub.requests() if broken not in r.path]
    kinds = Counter(
        "file" if "/resolve/" in r.path else r.path.split("?")[0].split("/")[5] for r in ours
    )
    files = Counter(r.path for r in ours if "/resolve/" in r.path)
    assert set(files.values()) == {1} and kinds == {"file": len(files), "revision": 1, "tree": 1}
    for node in ("node0", "node1"):
        assert (
            len(list((tmp_path / node).glob("kernels--*/snapshots/*/build/torch-universal"))) == 1
        )


def test_get_kernel_without_a_process_group_loads_alone(hub, hf_cache):  # type: ignore[no-untyped-def]
    """Without torch.distributed initialised, kernels.distributed.get_kernel loads as get_kernel."""
    import kernels.distributed as kd

    repo = unique_repo("dist-alone")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1")
    mod = kd.get_kernel(repo, version=1)
    assert mod is get_kernel(repo, version=1) and mod.__version__ == "0.1.0"
