"""The local Hub server (``kernels.server``) against the real, unmodified ``huggingface_hub`` client,
and against raw standard-library HTTP clients."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from kernels.server import HubServer, RequestRecord, gitstore

FILES: dict[str, bytes] = {
    "README.md": b"# test kernel\n",
    "build/torch-cpu/__init__.py": b"from ._ops import add\n",
    "build/torch-cpu/_ops.py": b"def add(a, b):\n    return a + b\n",
    "build/torch-cuda/lib.bin": bytes(range(256)) * 40,
    "docs/notes.txt": "caf\u00e9 \u2615\n".encode(),
}


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def unique(prefix: str = "srv") -> str:
    return f"server-test/{prefix}-{uuid.uuid4().hex[:10]}"


def make_repo(
    api: HfApi, files: dict[str, bytes] = FILES, repo_type: str = "kernel"
) -> tuple[str, str]:
    """A fresh repo holding ``files``; returns (repo_id, commit)."""
    repo_id = unique()
    api.create_repo(repo_id, repo_type=repo_type)
    info = api.create_commit(
        repo_id,
        [CommitOperationAdd(path, data) for path, data in files.items()],
        commit_message="add files",
        repo_type=repo_type,
    )
    return repo_id, info.oid


def raw(
    hub: HubServer,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request through ``http.client``: (status, headers, body)."""
    url = urlsplit(hub.endpoint)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


@pytest.fixture(scope="module")
def kernel_repo(hf_api: HfApi) -> tuple[str, str]:
    """A kernel repo shared by the read-only tests of this module: (repo_id, commit)."""
    return make_repo(hf_api)


@pytest.fixture
def small_pages(hub: HubServer) -> Iterator[None]:
    old = hub.tree_page_size
    hub.tree_page_size = 2
    yield
    hub.tree_page_size = old


@pytest.fixture(autouse=True)
def _no_faults(hub: HubServer) -> Iterator[None]:
    yield
    hub.clear_faults()


# ---------------------------------------------------------------- repos, commits, refs


def test_create_repo_kinds_and_exist_ok(hf_api: HfApi) -> None:
    repo_id = unique()
    url = hf_api.create_repo(repo_id, repo_type="kernel")
    assert url.endswith(f"/kernels/{repo_id}")
    assert hf_api.create_repo(repo_id, repo_type="kernel", exist_ok=True).endswith(repo_id)
    with pytest.raises(HfHubHTTPError) as err:
        hf_api.create_repo(repo_id, repo_type="kernel")
    assert err.value.response.status_code == 409
    # Same id, other type: another repo.
    assert hf_api.create_repo(repo_id).endswith(f"/{repo_id}")
    refs = hf_api.list_repo_refs(repo_id, repo_type="kernel")
    assert [b.name for b in refs.branches] == ["main"] and refs.tags == []
    assert hf_api.list_repo_files(repo_id, repo_type="kernel") == []


def test_kernel_info_and_model_info(hf_api: HfApi, kernel_repo: tuple[str, str]) -> None:
    repo_id, commit = kernel_repo
    info = hf_api.kernel_info(repo_id)
    assert info.id == repo_id and info.sha == commit and info.private is False
    assert info.last_modified is not None and info.last_modified.tzinfo is not None
    assert hf_api.repo_info(repo_id, repo_type="kernel").sha == commit

    model_id, model_commit = make_repo(hf_api, repo_type="model")
    model = hf_api.model_info(model_id, files_metadata=True)
    assert model.sha == model_commit
    assert model.siblings is not None
    by_name = {s.rfilename: s for s in model.siblings}
    assert set(by_name) == set(FILES)
    for path, data in FILES.items():
        assert by_name[path].size == len(data)
        assert by_name[path].blob_id == git_blob_sha1(data)
    assert hf_api.model_info(model_id, revision=model_commit).sha == model_commit


def test_last_modified_format(hub: HubServer, kernel_repo: tuple[str, str]) -> None:
    status, _, body = raw(hub, "GET", f"/api/kernels/{kernel_repo[0]}")
    assert status == 200
    data = json.loads(body)
    time.strptime(data["lastModified"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert data["siblings"] and all("rfilename" in s for s in data["siblings"])


def test_upload_folder_upload_file_and_noop(hf_api: HfApi, tmp_path: Path) -> None:
    repo_id = unique()
    hf_api.create_repo(repo_id, repo_type="kernel")
    folder = tmp_path / "folder"
    for path, data in FILES.items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    first = hf_api.upload_folder(repo_id=repo_id, folder_path=folder, repo_type="kernel")
    assert sorted(hf_api.list_repo_files(repo_id, repo_type="kernel")) == sorted(FILES)

    second = hf_api.upload_file(
        path_or_fileobj=b"extra\n",
        path_in_repo="extra/new.txt",
        repo_id=repo_id,
        repo_type="kernel",
    )
    assert second.oid != first.oid
    # Same content again: the client sees the server's blob oid and skips the commit.
    again = hf_api.upload_file(
        path_or_fileobj=b"extra\n",
        path_in_repo="extra/new.txt",
        repo_id=repo_id,
        repo_type="kernel",
    )
    assert again.oid == second.oid
    assert hf_api.kernel_info(repo_id).sha == second.oid

    commits = hf_api.list_repo_commits(repo_id, repo_type="kernel")
    assert [c.commit_id for c in commits][:2] == [second.oid, first.oid]
    assert commits[-1].title == "initial commit"


def test_create_commit_add_and_delete(hf_api: HfApi) -> None:
    repo_id, _ = make_repo(hf_api)
    info = hf_api.create_commit(
        repo_id,
        [
            CommitOperationDelete("README.md"),
            CommitOperationDelete("build/torch-cpu/", is_folder=True),
            CommitOperationAdd("build/torch-cpu/only.py", b"x = 1\n"),
            CommitOperationAdd("top.txt", b"top\n"),
        ],
        commit_message="reshuffle",
        commit_description="longer text",
        repo_type="kernel",
    )
    files = set(hf_api.list_repo_files(repo_id, repo_type="kernel"))
    assert files == {
        "build/torch-cpu/only.py",
        "build/torch-cuda/lib.bin",
        "docs/notes.txt",
        "top.txt",
    }
    assert hf_api.kernel_info(repo_id).sha == info.oid
    # Deleting what is not there is an EntryNotFound.
    with pytest.raises(EntryNotFoundError):
        hf_api.create_commit(
            repo_id, [CommitOperationDelete("nope.txt")], commit_message="x", repo_type="kernel"
        )
    # parent_commit must be the branch head.
    with pytest.raises(HfHubHTTPError) as err:
        hf_api.create_commit(
            repo_id,
            [CommitOperationAdd("a.txt", b"a")],
            commit_message="x",
            repo_type="kernel",
            parent_commit="0" * 40,
        )
    assert err.value.response.status_code == 412
    ok = hf_api.create_commit(
        repo_id,
        [CommitOperationAdd("a.txt", b"a")],
        commit_message="x",
        repo_type="kernel",
        parent_commit=info.oid,
    )
    assert hf_api.kernel_info(repo_id).sha == ok.oid


def test_tags_and_branches(hf_api: HfApi, hub: HubServer) -> None:
    repo_id, commit = make_repo(hf_api)
    hf_api.create_tag(repo_id, tag="v0.1.0", repo_type="kernel")
    hf_api.create_tag(repo_id, tag="v0.1.1", tag_message="annotated", repo_type="kernel")
    hf_api.create_branch(repo_id, branch="v1", revision="v0.1.0", repo_type="kernel")
    hf_api.create_branch(repo_id, branch="release/v2", repo_type="kernel")
    with pytest.raises(HfHubHTTPError) as err:
        hf_api.create_tag(repo_id, tag="v0.1.0", repo_type="kernel")
    assert err.value.response.status_code == 409
    hf_api.create_tag(repo_id, tag="v0.1.0", repo_type="kernel", exist_ok=True)
    hf_api.create_branch(repo_id, branch="v1", repo_type="kernel", exist_ok=True)
    with pytest.raises(RevisionNotFoundError):
        hf_api.create_branch(repo_id, branch="v9", revision="nope", repo_type="kernel")

    git_dir = hub.root / "kernels" / f"{repo_id}.git"
    kinds = [
        subprocess.run(
            ["git", "--git-dir", str(git_dir), "cat-file", "-t", f"refs/tags/{tag}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for tag in ("v0.1.0", "v0.1.1")
    ]
    assert kinds == ["commit", "tag"]

    refs = hf_api.list_repo_refs(repo_id, repo_type="kernel")
    assert {b.name: b.target_commit for b in refs.branches} == {
        "main": commit,
        "release/v2": commit,
        "v1": commit,
    }
    # Annotated tags are peeled to their commit.
    assert {t.name: t.target_commit for t in refs.tags} == {"v0.1.0": commit, "v0.1.1": commit}
    assert refs.converts == []

    # A commit on a branch moves only that branch; revisions with "/" arrive quoted.
    new = hf_api.upload_file(
        path_or_fileobj=b"v2\n",
        path_in_repo="v2.txt",
        repo_id=repo_id,
        repo_type="kernel",
        revision="release/v2",
    )
    assert hf_api.kernel_info(repo_id, revision="release/v2").sha == new.oid
    assert hf_api.kernel_info(repo_id, revision="refs/heads/release/v2").sha == new.oid
    assert hf_api.kernel_info(repo_id, revision="refs/tags/v0.1.1").sha == commit
    assert hf_api.kernel_info(repo_id).sha == commit

    hf_api.delete_branch(repo_id, branch="v1", repo_type="kernel")
    hf_api.delete_tag(repo_id, tag="v0.1.1", repo_type="kernel")
    with pytest.raises(RevisionNotFoundError):
        hf_api.delete_branch(repo_id, branch="v1", repo_type="kernel")
    with pytest.raises(RevisionNotFoundError):
        hf_api.delete_tag(repo_id, tag="v0.1.1", repo_type="kernel")
    with pytest.raises(HfHubHTTPError):
        hf_api.delete_branch(repo_id, branch="main", repo_type="kernel")
    refs = hf_api.list_repo_refs(repo_id, repo_type="kernel")
    assert sorted(b.name for b in refs.branches) == ["main", "release/v2"]
    assert [t.name for t in refs.tags] == ["v0.1.0"]


def test_delete_repo(hf_api: HfApi) -> None:
    repo_id, _ = make_repo(hf_api)
    hf_api.delete_repo(repo_id, repo_type="kernel")
    with pytest.raises(RepositoryNotFoundError):
        hf_api.kernel_info(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        hf_api.delete_repo(repo_id, repo_type="kernel")
    hf_api.delete_repo(repo_id, repo_type="kernel", missing_ok=True)
    # The name can be used again, from scratch.
    hf_api.create_repo(repo_id, repo_type="kernel")
    assert hf_api.list_repo_files(repo_id, repo_type="kernel") == []


# ---------------------------------------------------------------- listing


def test_list_repo_tree(hf_api: HfApi, kernel_repo: tuple[str, str]) -> None:
    repo_id, commit = kernel_repo
    top = {(type(e).__name__, e.path) for e in hf_api.list_repo_tree(repo_id, repo_type="kernel")}
    assert top == {("RepoFile", "README.md"), ("RepoFolder", "build"), ("RepoFolder", "docs")}
    files = {
        e.path: e
        for e in hf_api.list_repo_tree(repo_id, recursive=True, repo_type="kernel", revision=commit)
        if type(e).__name__ == "RepoFile"
    }
    assert set(files) == set(FILES)
    for path, data in FILES.items():
        assert files[path].blob_id == git_blob_sha1(data)  # type: ignore[union-attr]
        assert files[path].size == len(data)
        assert files[path].lfs is None  # type: ignore[union-attr]
    sub = [e.path for e in hf_api.list_repo_tree(repo_id, "build/torch-cpu", repo_type="kernel")]
    assert sorted(sub) == ["build/torch-cpu/__init__.py", "build/torch-cpu/_ops.py"]
    with pytest.raises(EntryNotFoundError):
        list(hf_api.list_repo_tree(repo_id, "missing", repo_type="kernel"))


def test_list_repo_tree_paginates(
    hub: HubServer, hf_api: HfApi, kernel_repo: tuple[str, str], small_pages: None
) -> None:
    repo_id, _ = kernel_repo
    hub.reset_requests()
    entries = list(hf_api.list_repo_tree(repo_id, recursive=True, repo_type="kernel"))
    assert len(entries) == len(FILES) + 4  # four folders
    tree_requests = [r for r in hub.requests() if "/tree/" in r.path]
    assert len(tree_requests) == (len(entries) + 1) // 2
    status, headers, _ = raw(hub, "GET", f"/api/kernels/{repo_id}/tree/main?recursive=true")
    assert status == 200 and 'rel="next"' in headers["link"]


def test_get_paths_info_and_file_exists(hf_api: HfApi, kernel_repo: tuple[str, str]) -> None:
    repo_id, commit = kernel_repo
    infos = hf_api.get_paths_info(
        repo_id, ["README.md", "build", "missing.txt"], repo_type="kernel", revision=commit
    )
    assert [(type(i).__name__, i.path) for i in infos] == [
        ("RepoFile", "README.md"),
        ("RepoFolder", "build"),
    ]
    assert infos[0].blob_id == git_blob_sha1(FILES["README.md"])  # type: ignore[union-attr]
    assert hf_api.file_exists(repo_id, "docs/notes.txt", repo_type="kernel")
    assert not hf_api.file_exists(repo_id, "docs/other.txt", repo_type="kernel")
    assert not hf_api.file_exists(repo_id, "docs/notes.txt", repo_type="kernel", revision="nope")
    assert not hf_api.file_exists(unique(), "README.md", repo_type="kernel")


# ---------------------------------------------------------------- downloads


def test_download_by_branch_tag_and_commit(hf_api: HfApi, hub: HubServer) -> None:
    repo_id, c1 = make_repo(hf_api)
    hf_api.create_tag(repo_id, tag="v1.0.0", repo_type="kernel")
    hf_api.create_branch(repo_id, branch="v1", repo_type="kernel")
    c2 = hf_api.upload_file(
        path_or_fileobj=b"changed\n", path_in_repo="README.md", repo_id=repo_id, repo_type="kernel"
    ).oid
    for revision, readme in [
        ("v1", FILES["README.md"]),
        ("v1.0.0", FILES["README.md"]),
        (c1, FILES["README.md"]),
        ("main", b"changed\n"),
        (c2, b"changed\n"),
    ]:
        path = hf_hub_download(
            repo_id, "README.md", repo_type="kernel", revision=revision, endpoint=hub.endpoint
        )
        assert Path(path).read_bytes() == readme, revision
    snap = Path(
        snapshot_download(repo_id, repo_type="kernel", revision="v1.0.0", endpoint=hub.endpoint)
    )
    assert snap.name == c1
    for name, data in FILES.items():
        assert (snap / name).read_bytes() == data
    sub = Path(
        snapshot_download(
            repo_id,
            repo_type="kernel",
            revision=c1,
            allow_patterns=["build/torch-cpu/*"],
            endpoint=hub.endpoint,
        )
    )
    assert sorted(p.name for p in (sub / "build" / "torch-cpu").iterdir()) == [
        "__init__.py",
        "_ops.py",
    ]
    # A second snapshot of the same revision costs one request (repo info) at most.
    hub.reset_requests()
    snapshot_download(repo_id, repo_type="kernel", revision="v1.0.0", endpoint=hub.endpoint)
    assert len(hub.requests()) <= 1


def test_model_repo_download(hf_api: HfApi, hub: HubServer) -> None:
    repo_id, commit = make_repo(hf_api, repo_type="model")
    path = hf_hub_download(repo_id, "build/torch-cuda/lib.bin", endpoint=hub.endpoint)
    assert Path(path).read_bytes() == FILES["build/torch-cuda/lib.bin"]
    assert f"/snapshots/{commit}/" in path


def test_missing_things_raise_the_right_errors(
    hf_api: HfApi, hub: HubServer, kernel_repo: tuple[str, str]
) -> None:
    repo_id, _ = kernel_repo
    missing = unique("missing")
    with pytest.raises(RepositoryNotFoundError):
        hf_api.kernel_info(missing)
    with pytest.raises(RepositoryNotFoundError):
        hf_api.list_repo_refs(missing, repo_type="kernel")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(missing, "README.md", repo_type="kernel", endpoint=hub.endpoint)
    with pytest.raises(RevisionNotFoundError):
        hf_api.kernel_info(repo_id, revision="no-such-branch")
    with pytest.raises(RevisionNotFoundError):
        hf_api.kernel_info(repo_id, revision="f" * 40)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(
            repo_id, "README.md", repo_type="kernel", revision="nope", endpoint=hub.endpoint
        )
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "nope.txt", repo_type="kernel", endpoint=hub.endpoint)
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo_id, "build", repo_type="kernel", endpoint=hub.endpoint)
    # EntryNotFound carries the commit, so that the client can cache the miss.
    status, headers, _ = raw(hub, "HEAD", f"/kernels/{repo_id}/resolve/main/nope.txt")
    assert status == 404 and headers["x-error-code"] == "EntryNotFound"
    assert headers["x-repo-commit"] == kernel_repo[1]


def test_resolve_headers_and_ranges(hub: HubServer, kernel_repo: tuple[str, str]) -> None:
    repo_id, commit = kernel_repo
    data = FILES["build/torch-cuda/lib.bin"]
    url = f"/kernels/{repo_id}/resolve/main/build/torch-cuda/lib.bin"
    status, headers, body = raw(hub, "HEAD", url, headers={"Accept-Encoding": "gzip"})
    assert status == 200 and body == b""
    assert headers["content-length"] == str(len(data))
    assert headers["etag"] == f'"{git_blob_sha1(data)}"'
    assert headers["x-repo-commit"] == commit
    assert not any(h.startswith(("x-xet", "x-linked")) or h == "content-encoding" for h in headers)
    status, headers, body = raw(hub, "GET", url, headers={"Range": "bytes=100-199"})
    assert status == 206 and body == data[100:200]
    assert headers["content-range"] == f"bytes 100-199/{len(data)}"
    status, _, body = raw(hub, "GET", url, headers={"Range": "bytes=10000-"})
    assert status == 206 and body == data[10000:]
    status, _, body = raw(hub, "GET", url, headers={"Range": "bytes=-5"})
    assert status == 206 and body == data[-5:]
    status, headers, _ = raw(hub, "GET", url, headers={"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["content-range"] == f"bytes */{len(data)}"
    # Unicode paths, quoted.
    status, _, body = raw(hub, "GET", f"/kernels/{repo_id}/resolve/{commit}/docs/notes.txt")
    assert status == 200 and body == FILES["docs/notes.txt"]


def test_large_blobs_are_streamed(
    hf_api: HfApi, hub: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gitstore, "STREAM_THRESHOLD", 1000)
    big = os.urandom(300_000)
    repo_id, _ = make_repo(hf_api, {"big.bin": big})
    url = f"/kernels/{repo_id}/resolve/main/big.bin"
    assert raw(hub, "GET", url)[2] == big
    status, _, body = raw(hub, "GET", url, headers={"Range": "bytes=123456-200000"})
    assert status == 206 and body == big[123456:200001]
    path = hf_hub_download(repo_id, "big.bin", repo_type="kernel", endpoint=hub.endpoint)
    assert Path(path).read_bytes() == big


def test_many_concurrent_raw_clients(hub: HubServer, kernel_repo: tuple[str, str]) -> None:
    repo_id, commit = kernel_repo
    host, port = urlsplit(hub.endpoint).hostname, urlsplit(hub.endpoint).port

    def worker(n: int) -> list[tuple[str, bytes, str]]:
        conn = http.client.HTTPConnection(host or "127.0.0.1", port, timeout=30)
        got = []
        try:
            for _ in range(3):  # keep-alive: one connection, many requests
                for path in FILES:
                    rev = commit if n % 2 else "main"
                    conn.request("GET", f"/kernels/{repo_id}/resolve/{rev}/{quote(path)}")
                    resp = conn.getresponse()
                    got.append((path, resp.read(), resp.getheader("ETag") or ""))
        finally:
            conn.close()
        return got

    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(worker, range(48)))
    for got in results:
        assert len(got) == 3 * len(FILES)
        for path, body, etag in got:
            assert body == FILES[path]
            assert etag == f'"{git_blob_sha1(FILES[path])}"'


# ---------------------------------------------------------------- security


def test_traversal_and_bad_names_are_rejected(
    hub: HubServer, hf_api: HfApi, kernel_repo: tuple[str, str]
) -> None:
    repo_id, _ = kernel_repo
    outside = hub.root.parent
    marker = f"TOP-SECRET-{uuid.uuid4().hex}"
    (outside / "secret.txt").write_text(marker)
    # A real git repo outside ROOT, holding the secret, as bait for a repo id that escapes ROOT.
    bait = outside / "bait" / "evil.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bait)], check=True)
    blob = (
        subprocess.run(
            ["git", "--git-dir", str(bait), "hash-object", "-w", "--stdin"],
            input=marker.encode(),
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    before = sorted(p.name for p in outside.iterdir())

    enc = "%2e%2e"
    urls = [
        ("GET", "/api/kernels/../secret.txt"),
        ("GET", f"/api/kernels/{enc}/{enc}"),
        ("GET", "/api/kernels/..%2F..%2Fbait/evil"),
        ("GET", "/api/kernels/%2Fetc/passwd"),
        ("GET", "/api/kernels/org%5C..%5C/x"),
        ("GET", "/api/kernels/org%00/x"),
        ("GET", "/api/kernels//x"),
        ("GET", "/api/models/../hub/x"),
        ("GET", f"/api/kernels/{repo_id}/revision/..%2F..%2Fsecret.txt"),
        ("GET", f"/api/kernels/{repo_id}/revision/%2Fetc%2Fpasswd"),
        ("GET", f"/api/kernels/{repo_id}/revision/main%00"),
        ("GET", f"/api/kernels/{repo_id}/tree/main/..%2F..%2F..%2Fsecret.txt"),
        ("GET", f"/api/kernels/{repo_id}/tree/main/{enc}"),
        ("GET", f"/api/kernels/{repo_id}/tree/%2Fmain"),
        ("GET", f"/kernels/{repo_id}/resolve/main/../../../secret.txt"),
        ("GET", f"/kernels/{repo_id}/resolve/main/{enc}/{enc}/{enc}/secret.txt"),
        ("GET", f"/kernels/{repo_id}/resolve/main/%2Fetc%2Fpasswd"),
        ("GET", f"/kernels/{repo_id}/resolve/main//etc/passwd"),
        ("GET", f"/kernels/{repo_id}/resolve/main/build%5C..%5C..%5Csecret.txt"),
        ("GET", f"/kernels/{repo_id}/resolve/main/README.md%00"),
        ("GET", f"/kernels/{repo_id}/resolve/..%2F..%2Fsecret.txt/README.md"),
        ("GET", f"/kernels/{repo_id}/resolve/{blob}/README.md"),  # an object not in this repo
        ("GET", f"/kernels/{repo_id}/resolve/main:README.md/README.md"),
        ("HEAD", "/kernels/..%2Fbait/evil/resolve/main/secret.txt"),
        ("GET", f"/{enc}/{enc}/resolve/main/secret.txt"),
        ("GET", "/api/organizations/..%2F../overview"),
    ]
    for method, url in urls:
        status, headers, body = raw(hub, method, url)
        assert 400 <= status < 500, (url, status)
        assert marker.encode() not in body and marker not in json.dumps(headers), url

    posts = [
        ("POST", "/api/repos/create", {"name": "..", "organization": ".."}),
        ("POST", "/api/repos/create", {"name": "evil", "organization": "../bait"}),
        ("POST", "/api/repos/create", {"name": "x/../../y", "organization": "org"}),
        ("DELETE", "/api/repos/delete", {"name": "evil", "organization": "../bait"}),
        (
            "DELETE",
            "/api/repos/delete",
            {"name": "evil.git", "organization": "..", "type": "kernel"},
        ),
        (
            "POST",
            f"/api/kernels/{repo_id}/preupload/main",
            {"files": [{"path": "../x", "size": 1}]},
        ),
    ]
    for method, url, payload in posts:
        status, _, body = raw(hub, method, url, body=json.dumps(payload).encode())
        assert 400 <= status < 500, (url, payload, status)
    for path in ["../escape.txt", "/abs.txt", "a/../../b.txt", "a\\b.txt", ".git/config"]:
        line = {"key": "file", "value": {"path": path, "content": "eA==", "encoding": "base64"}}
        body = b'{"key":"header","value":{"summary":"x"}}\n' + json.dumps(line).encode()
        status, _, _ = raw(hub, "POST", f"/api/kernels/{repo_id}/commit/main", body=body)
        assert status == 400, path
    status, _, _ = raw(
        hub,
        "POST",
        f"/api/kernels/{repo_id}/paths-info/main",
        body=b"paths=..%2Fsecret.txt",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 400
    # Nothing was created or removed outside ROOT; the bait repo is untouched.
    assert sorted(p.name for p in outside.iterdir()) == before
    assert (bait / "HEAD").exists()
    assert hf_api.kernel_info(repo_id).sha == kernel_repo[1]


def test_misc_endpoints(hub: HubServer, hf_api: HfApi) -> None:
    status, _, body = raw(hub, "GET", "/api/organizations/some-org/overview")
    assert status == 200 and json.loads(body)["trustedKernelPublisher"] is False
    assert hf_api.get_organization_overview("some-org").name == "some-org"
    status, _, body = raw(hub, "GET", "/api/organizations/kernels-community/overview")
    assert json.loads(body)["trustedKernelPublisher"] is True  # tests/conftest.py trusts it
    status, _, body = raw(hub, "POST", "/api/validate-yaml", body=b'{"content": "x"}')
    assert status == 200 and json.loads(body) == {"errors": [], "warnings": []}
    status, headers, body = raw(hub, "GET", "/api/agent-harnesses")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"standardEnvVars": [], "harnesses": {}}
    assert raw(hub, "GET", "/no/such/route")[0] == 404
    assert raw(hub, "PUT", "/api/kernels/a/b")[0] == 404
    status, _, body = raw(hub, "POST", "/api/kernels/a/b/preupload/main", body=b'{"files": []}')
    assert status == 404
    # preupload: regular upload mode, shouldIgnore present, existing oid reported.
    repo_id, _ = make_repo(hf_api)
    status, _, body = raw(
        hub,
        "POST",
        f"/api/kernels/{repo_id}/preupload/main",
        body=json.dumps({"files": [{"path": "README.md"}, {"path": "new.txt"}]}).encode(),
    )
    assert status == 200
    assert json.loads(body)["files"] == [
        {
            "path": "README.md",
            "uploadMode": "regular",
            "shouldIgnore": False,
            "oid": git_blob_sha1(FILES["README.md"]),
        },
        {"path": "new.txt", "uploadMode": "regular", "shouldIgnore": False, "oid": None},
    ]


# ---------------------------------------------------------------- CLI, latency, accounting, faults


def test_kernels_serve_subprocess(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernels", "serve", str(tmp_path / "root"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 30)
        assert ready, "kernels serve printed nothing"
        endpoint = proc.stdout.readline().decode().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        api = HfApi(endpoint=endpoint, token=False)
        api.create_repo("cli-org/cli-repo", repo_type="kernel")
        api.create_tag("cli-org/cli-repo", tag="v1", repo_type="kernel")
        refs = api.list_repo_refs("cli-org/cli-repo", repo_type="kernel")
        assert [t.name for t in refs.tags] == ["v1"]
        assert (tmp_path / "root" / "kernels" / "cli-org" / "cli-repo.git").is_dir()
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0, proc.stderr.read() if proc.stderr else ""


def test_trusted_organisations_come_from_the_configuration(tmp_path: Path) -> None:
    """Only configured organisations are trusted: the constructor's (settable), ROOT/trusted-orgs
    (read on each request) and `kernels serve --trust-org`; '*' trusts all."""

    def trusted(server: HubServer, org: str) -> bool:
        status, _, body = raw(server, "GET", f"/api/organizations/{org}/overview")
        assert status == 200
        return bool(json.loads(body)["trustedKernelPublisher"])

    root = tmp_path / "root"
    with HubServer(root, trusted_orgs=["acme"]) as server:
        assert trusted(server, "acme") and not trusted(server, "other")
        (root / "trusted-orgs").write_text("# mirrored publishers\nother  # ours\n")
        assert trusted(server, "other") and not trusted(server, "third")
        server.trusted_orgs = ["*"]
        assert trusted(server, "third")
    proc = subprocess.Popen(
        [sys.executable, "-m", "kernels", "serve", str(root), "--trust-org", "cli-org"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        endpoint = proc.stdout.readline().strip()
        with urllib.request.urlopen(f"{endpoint}/api/organizations/cli-org/overview") as r:
            assert json.loads(r.read())["trustedKernelPublisher"] is True
        with urllib.request.urlopen(f"{endpoint}/api/organizations/third/overview") as r:
            assert json.loads(r.read())["trustedKernelPublisher"] is False
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_latency(hub: HubServer, tmp_path: Path) -> None:
    old = hub.latency_ms
    hub.latency_ms = 150
    try:
        start = time.monotonic()
        assert raw(hub, "GET", "/api/organizations/x/overview")[0] == 200
        assert time.monotonic() - start >= 0.15
    finally:
        hub.latency_ms = old
    with HubServer(tmp_path / "hub2", latency_ms=100) as slow:
        assert slow.latency_ms == 100
        start = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(lambda _: raw(slow, "GET", "/api/x")[0], range(4)))
        assert statuses == [404] * 4
        assert time.monotonic() - start >= 0.1


def test_request_log(hub: HubServer, kernel_repo: tuple[str, str]) -> None:
    repo_id, commit = kernel_repo
    hub.reset_requests()
    hf_hub_download(
        repo_id, "README.md", repo_type="kernel", revision=commit, endpoint=hub.endpoint
    )
    raw(hub, "GET", "/api/nothing%20here?x=1")
    records = hub.requests()
    assert records == [
        RequestRecord("HEAD", f"/kernels/{repo_id}/resolve/{commit}/README.md", 200, 0),
        RequestRecord(
            "GET", f"/kernels/{repo_id}/resolve/{commit}/README.md", 200, len(FILES["README.md"])
        ),
        RequestRecord("GET", "/api/nothing here?x=1", 404, records[-1].bytes_sent),
    ]
    records.clear()  # a copy
    assert len(hub.requests()) == 3
    hub.reset_requests()
    assert hub.requests() == []


def test_request_log_reset_is_a_barrier(hub: HubServer) -> None:
    """A request that arrived before ``reset_requests()`` and is answered after it (here delayed by
    a fault; in the suite, a download whose client was killed) is never logged: the delayed answer
    of one test cannot land in the next test's count. Requests arriving after the reset are."""
    marker = f"/api/barrier-{uuid.uuid4().hex[:8]}"
    hub.add_fault(path_regex=marker, delay_s=1.0, times=1)
    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(raw, hub, "GET", marker)
        deadline = time.monotonic() + 10
        # The fault is consumed when the request arrives: then the answer is on its way.
        while time.monotonic() < deadline and hub._controls.faults._faults:
            time.sleep(0.01)
        hub.reset_requests()
        assert late.result()[0] == 404
    assert [r for r in hub.requests() if marker in r.path] == []
    raw(hub, "GET", marker)
    assert [r.path for r in hub.requests() if marker in r.path] == [marker]


def test_fault_status_with_retry_after(hub: HubServer, kernel_repo: tuple[str, str]) -> None:
    repo_id, _ = kernel_repo
    url = f"/kernels/{repo_id}/resolve/main/README.md"
    hub.add_fault(path_regex=r"/resolve/main/README\.md$", method="GET", status=503, retry_after=2)
    assert raw(hub, "HEAD", url)[0] == 200  # other method: not matched
    status, headers, _ = raw(hub, "GET", url)
    assert status == 503 and headers["retry-after"] == "2"
    status, _, body = raw(hub, "GET", url)
    assert (status, body) == (200, FILES["README.md"])
    # times=2, then gone; clear_faults removes forever-rules.
    hub.add_fault(path_regex="README", status=429, times=2)
    assert [raw(hub, "GET", url)[0] for _ in range(3)] == [429, 429, 200]
    hub.add_fault(path_regex="README", status=500, times=None)
    assert [raw(hub, "GET", url)[0] for _ in range(3)] == [500, 500, 500]
    hub.clear_faults()
    assert raw(hub, "GET", url)[0] == 200
    # A refused commit changes nothing.
    hub.add_fault(path_regex=r"/commit/", status=500)
    body = b'{"key":"header","value":{"summary":"x"}}\n{"key":"deletedFile","value":{"path":"README.md"}}\n'
    assert raw(hub, "POST", f"/api/kernels/{repo_id}/commit/main", body=body)[0] == 500
    assert raw(hub, "GET", url)[2] == FILES["README.md"]


def test_fault_delay(hub: HubServer, kernel_repo: tuple[str, str]) -> None:
    url = f"/kernels/{kernel_repo[0]}/resolve/main/README.md"
    hub.add_fault(path_regex="README", delay_s=0.3)
    start = time.monotonic()
    status, _, body = raw(hub, "GET", url)
    assert time.monotonic() - start >= 0.3
    assert status == 200 and body == FILES["README.md"]


def test_fault_truncate(hub: HubServer, kernel_repo: tuple[str, str]) -> None:
    data = FILES["build/torch-cuda/lib.bin"]
    url = f"/kernels/{kernel_repo[0]}/resolve/main/build/torch-cuda/lib.bin"
    hub.add_fault(path_regex="lib.bin", truncate_at=1000)
    hub.reset_requests()
    port = urlsplit(hub.endpoint).port
    with socket.create_connection(("127.0.0.1", port or 80), timeout=10) as sock:
        sock.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while chunk := sock.recv(65536):  # the server closes the connection
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert f"Content-Length: {len(data)}".encode() in head
    assert body == data[:1000]
    assert [r.bytes_sent for r in hub.requests() if "lib.bin" in r.path] == [1000]
    # Through http.client: an incomplete read; the next request is whole again.
    hub.add_fault(path_regex="lib.bin", truncate_at=10)
    with pytest.raises(http.client.IncompleteRead):
        raw(hub, "GET", url)
    assert raw(hub, "GET", url)[2] == data


def test_fault_truncate_then_client_resumes(hub: HubServer, kernel_repo: tuple[str, str]) -> None:
    data = FILES["build/torch-cuda/lib.bin"]
    hub.reset_requests()
    hub.add_fault(path_regex="lib.bin", method="GET", truncate_at=3000)
    path = hf_hub_download(
        kernel_repo[0], "build/torch-cuda/lib.bin", repo_type="kernel", endpoint=hub.endpoint
    )
    assert Path(path).read_bytes() == data
    gets = [r for r in hub.requests() if r.method == "GET" and "lib.bin" in r.path]
    # The client retries; it resumes with a Range when it kept the first bytes, else starts over.
    assert len(gets) == 2 and (gets[0].status, gets[0].bytes_sent) == (200, 3000)
    assert (gets[1].status, gets[1].bytes_sent) in [(206, len(data) - 3000), (200, len(data))]


def test_fault_corrupt(hub: HubServer, kernel_repo: tuple[str, str]) -> None:
    data = FILES["build/torch-cuda/lib.bin"]
    url = f"/kernels/{kernel_repo[0]}/resolve/main/build/torch-cuda/lib.bin"
    hub.add_fault(path_regex="lib.bin", corrupt=True)
    status, headers, body = raw(hub, "GET", url)
    assert status == 200 and len(body) == len(data) and body != data
    assert headers["etag"] == f'"{git_blob_sha1(data)}"'
    assert git_blob_sha1(body) != git_blob_sha1(data)
    assert raw(hub, "GET", url)[2] == data
    # One-byte bodies are corrupted too.
    repo_id, _ = make_repo(HfApi(endpoint=hub.endpoint, token=False), {"one.bin": b"A"})
    hub.add_fault(path_regex="one.bin", corrupt=True)
    assert raw(hub, "GET", f"/kernels/{repo_id}/resolve/main/one.bin")[2] != b"A"


def test_add_fault_validates(hub: HubServer) -> None:
    with pytest.raises(ValueError):
        hub.add_fault(path_regex="x", times=0)
    with pytest.raises(Exception):  # noqa: B017 - re.error
        hub.add_fault(path_regex="(")
