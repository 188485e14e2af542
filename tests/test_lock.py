"""kernels.lock: lock, check, download, locked loading, verification, upstream formats."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from kernelhub import cpu_activation, publish, renamed, unique_repo, universal_rmsnorm
from kernels import IntegrityError, LockfileError, NotInCacheError, get_locked_kernel, load_kernel
from kernels.errors import ConfigError
from kernels.lockfile import read_lock
from kernels.platform import detect_platform
from kernels.project import download_locked, lock_project, stale_reasons

HERE = detect_platform().variant
CLI = [sys.executable, "-m", "kernels"]


@pytest.fixture(scope="module")
def repos(hub, tmp_path_factory):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("lockrepos")
    act = unique_repo("activation")
    v1 = cpu_activation("0.1.0")
    extra = renamed(v1, ["torch211-cxx11-cu130-x86_64-linux", "torch-cuda"], tmp)
    c1 = publish(hub.endpoint, act, [v1, *extra], branch="v1", tags=["v0.1.0"])
    norm = unique_repo("rmsnorm")
    n1 = publish(hub.endpoint, norm, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    return {"act": act, "c1": c1, "norm": norm, "n1": n1}


def write_project(path: Path, deps: str, name: str = "sample") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""\
            [project]
            name = "{name}"
            version = "0.1.0"

            [tool.kernels.dependencies]
            """
        )
        + textwrap.dedent(deps)
    )
    return path


def test_lock_check_download_load(hub, repos, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    proj = write_project(
        tmp_path / "p", f'"{repos["act"]}" = 1\n"{repos["norm"]}" = ">=0.1,<0.2"\n'
    )
    hub.reset_requests()
    out = subprocess.run([*CLI, "lock", str(proj)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # Per repo: resolve, list, one metadata.json per backend of its variants (for kernel-depends:
    # cpu and cuda here); one trust check for the organisation.
    assert len(hub.requests()) <= (2 + 2) + (2 + 1) + 1, [r.path for r in hub.requests()]
    lock_text = (proj / "kernels.lock").read_text()
    doc = json.loads(lock_text)
    entry = doc["kernels"][repos["act"]]
    assert entry["commit"] == repos["c1"] and entry["spec"] == {"version": 1}
    assert set(entry["variants"]) == {HERE, "torch211-cxx11-cu130-x86_64-linux", "torch-cuda"}
    assert doc["kernels"][repos["norm"]]["ref"] == "v0.1.0"
    assert lock_text == json.dumps(doc, indent=2, sort_keys=True) + "\n"  # deterministic form

    # Locking again changes nothing and asks nothing.
    hub.reset_requests()
    assert subprocess.run([*CLI, "lock", str(proj)], capture_output=True).returncode == 0
    assert (proj / "kernels.lock").read_text() == lock_text
    assert hub.requests() == []

    assert subprocess.run([*CLI, "check", str(proj)], capture_output=True).returncode == 0
    hub.reset_requests()
    out = subprocess.run([*CLI, "download", str(proj)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "downloaded 2/2" in out.stdout
    downloads = [r.path for r in hub.requests() if "/resolve/" in r.path]
    assert downloads and all(
        f"/build/{HERE}/" in p or "/build/torch-universal/" in p for p in downloads
    )

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset_requests()
    mod = load_kernel(repos["act"], lockfile=proj / "kernels.lock")
    norm = load_kernel(repos["norm"], lockfile=proj / "kernels.lock")
    assert mod.__version__ == "0.1.0" and norm.__version__ == "0.1.0"
    assert hub.requests() == []
    with pytest.raises(LockfileError, match=r"not in .*kernels.lock \(it locks: "):
        load_kernel("kernels-test/other", lockfile=proj / "kernels.lock")


def test_stale_lock_is_detected_offline(repos, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    proj = write_project(tmp_path / "p", f'"{repos["act"]}" = 1\n')
    lock_project(proj)
    assert stale_reasons(proj) == []
    write_project(proj, f'"{repos["act"]}" = ">=0.1"\n"{repos["norm"]}" = 1\n')
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    reasons = stale_reasons(proj)
    assert any(repos["act"] in r and "'>=0.1'" in r for r in reasons), reasons
    assert any(repos["norm"] in r and "not locked" in r for r in reasons), reasons
    out = subprocess.run([*CLI, "lock", "--check", str(proj)], capture_output=True, text=True)
    assert out.returncode == 1 and repos["norm"] in out.stderr
    out = subprocess.run([*CLI, "check", str(proj)], capture_output=True, text=True)
    assert out.returncode == 1


def test_lock_keeps_commits_until_upgrade(hub, repos, tmp_path):  # type: ignore[no-untyped-def]
    repo = unique_repo("moving")
    first = publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    proj = write_project(tmp_path / "p", f'"{repo}" = 1\n"{repos["norm"]}" = 1\n')
    lock_project(proj)
    second = publish(hub.endpoint, repo, [universal_rmsnorm("0.1.1")], branch="v1", tags=["v0.1.1"])
    assert second != first
    res = lock_project(proj)
    assert read_lock(proj / "kernels.lock").kernels[repo].commit == first and not res.written
    # A spec change that the locked tag still satisfies keeps it too.
    write_project(proj, f'"{repo}" = ">=0.1.0"\n"{repos["norm"]}" = 1\n')
    lock_project(proj)
    assert read_lock(proj / "kernels.lock").kernels[repo].commit == first
    out = subprocess.run(
        [*CLI, "lock", str(proj), "--upgrade", repo], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    lock = read_lock(proj / "kernels.lock")
    assert lock.kernels[repo].commit == second and lock.kernels[repo].ref == "v0.1.1"


def test_tampered_cache_is_refused_naming_the_file(repos, tmp_path):  # type: ignore[no-untyped-def]
    proj = write_project(tmp_path / "p", f'"{repos["norm"]}" = 1\n')
    lock_project(proj)
    lockfile = proj / "kernels.lock"
    mod = get_locked_kernel(repos["norm"], lockfile=lockfile)
    target = Path(mod.__file__).parent / "_impl.py"
    real = target.resolve()
    real.chmod(0o644)
    real.write_text(real.read_text() + "\n# tampered\n")
    with pytest.raises(IntegrityError, match=r"_impl\.py"):
        load_kernel(repos["norm"], lockfile=lockfile)


def test_download_reports_failures_and_keeps_successes(repos, tmp_path):  # type: ignore[no-untyped-def]
    proj = write_project(tmp_path / "p", f'"{repos["norm"]}" = 1\n')
    lock_project(proj)
    lock = json.loads((proj / "kernels.lock").read_text())
    ghost = dict(lock["kernels"][repos["norm"]])
    lock["kernels"]["kernels-test/deleted-repo"] = ghost
    (proj / "kernels.lock").write_text(json.dumps(lock))
    out = subprocess.run([*CLI, "download", str(proj)], capture_output=True, text=True)
    assert out.returncode == 1
    assert "kernels-test/deleted-repo" in out.stderr and "Traceback" not in out.stderr
    assert "downloaded 1/2" in out.stdout
    res = download_locked(read_lock(proj / "kernels.lock"))
    assert repos["norm"] in res.ok and "kernels-test/deleted-repo" in res.failed


def test_upstream_lock_formats_load(repos, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    proj = write_project(tmp_path / "p", f'"{repos["act"]}" = 1\n')
    lock_project(proj)
    ours = read_lock(proj / "kernels.lock").kernels[repos["act"]]
    old = tmp_path / "old.lock"
    old.write_text(
        json.dumps(
            [
                {
                    "repo_id": repos["act"],
                    "sha": ours.commit,
                    "variants": {
                        v: {"hash": h, "hash_type": "git_lfs_concat"}
                        for v, h in ours.variants.items()
                    },
                }
            ]
        )
    )
    new = tmp_path / "new.lock"
    new.write_text(
        json.dumps(
            [
                {
                    "dependency": {"repo-id": repos["norm"], "version": 1},
                    "lock": {"commit": repos["n1"]},
                }
            ]
        )
    )
    assert read_lock(old).format == "upstream-0.16"
    assert read_lock(new).format == "upstream-0.17"
    assert get_locked_kernel(repos["act"], lockfile=old).__version__ == "0.1.0"
    assert get_locked_kernel(repos["norm"], lockfile=new).__version__ == "0.1.0"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert load_kernel(repos["act"], lockfile=old).__version__ == "0.1.0"
    assert load_kernel(repos["norm"], lockfile=new).__version__ == "0.1.0"


def test_load_kernel_not_cached_names_the_command(repos, tmp_path):  # type: ignore[no-untyped-def]
    proj = write_project(tmp_path / "p", f'"{repos["norm"]}" = 1\n')
    lock_project(proj)
    with pytest.raises(NotInCacheError, match="kernels download"):
        load_kernel(repos["norm"], lockfile=proj / "kernels.lock")


@pytest.mark.parametrize(
    ("deps", "match"),
    [
        ('"not-a-repo" = 1\n', "invalid repo id"),
        ('"org/name" = true\n', "expected an int"),
        ('"org/name" = ">>1"\n', "invalid version specifier"),
        ('"org/name" = { version = 1, revision = "main" }\n', "exactly one"),
        ('"org/name" = { branch = "main" }\n', "unknown field"),
    ],
)
def test_bad_config_names_file_and_key(tmp_path, deps, match):  # type: ignore[no-untyped-def]
    proj = write_project(tmp_path / "p", deps)
    with pytest.raises(ConfigError, match=match) as info:
        lock_project(proj)
    assert "pyproject.toml" in str(info.value)
    out = subprocess.run([*CLI, "lock", str(proj)], capture_output=True, text=True)
    assert (
        out.returncode == 1 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    )
    assert not (proj / "kernels.lock").exists()


def test_truncated_lock_is_a_clear_error(tmp_path):  # type: ignore[no-untyped-def]
    proj = write_project(tmp_path / "p", '"org/name" = 1\n')
    (proj / "kernels.lock").write_text('{"lock-version": 1, "kernels": {')
    out = subprocess.run([*CLI, "download", str(proj)], capture_output=True, text=True)
    assert out.returncode == 1 and "kernels.lock" in out.stderr and "not valid JSON" in out.stderr
    assert (proj / "kernels.lock").read_text() == '{"lock-version": 1, "kernels": {'


# ---- the lock inside installed package metadata (setuptools, regular and editable) -------------


def _sample_package(root: Path, repo: str, dist: str) -> Path:
    write_project(root, f'"{repo}" = 1\n', name=dist)
    pyproject = root / "pyproject.toml"
    pyproject.write_text(
        '[build-system]\nrequires = ["setuptools>=64", "kernels"]\nbuild-backend = "setuptools.build_meta"\n\n'
        + pyproject.read_text()
        + f'\n[tool.setuptools]\npackages = ["{dist}"]\n'
    )
    pkg = root / dist
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        f"from kernels import load_kernel\n\nnorm = load_kernel({repo!r})\n"
    )
    return root


@pytest.mark.parametrize("editable", [False, True], ids=["regular", "editable"])
def test_setuptools_package_finds_its_lock(hub, tmp_path, editable):  # type: ignore[no-untyped-def]
    """Installed regular or editable, the package finds its own lock; an editable install follows
    the source tree's kernels.lock at once, a regular one keeps the lock it was built with."""
    repo = unique_repo("st")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    dist = f"sample_st_{'e' if editable else 'r'}_{os.getpid()}"
    proj = _sample_package(tmp_path / "proj", repo, dist)
    lock_project(proj)
    out = subprocess.run([*CLI, "download", str(proj)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # No build isolation: the build uses this environment's kernels (ours), whose egg_info writer
    # says so on stdout; an index's kernels release would print nothing.
    cmd = [sys.executable, "-m", "pip", "install", "-v", "--no-build-isolation", "--no-deps"]
    cmd += ["-e", str(proj)] if editable else [str(proj)]
    inst = subprocess.run(cmd, capture_output=True, text=True)
    code = f"import {dist}; print({dist}.norm.__version__)"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    def loaded() -> str:
        run = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path
        )
        assert run.returncode == 0, run.stderr
        return run.stdout.strip()

    try:
        assert inst.returncode == 0, inst.stdout + inst.stderr
        assert "kernels: embedded kernels.lock" in inst.stdout + inst.stderr
        assert loaded() == "0.1.0"
        publish(hub.endpoint, repo, [universal_rmsnorm("0.1.1")], branch="v1", tags=["v0.1.1"])
        lock_project(proj, upgrade=True)
        assert subprocess.run([*CLI, "download", str(proj)], capture_output=True).returncode == 0
        assert loaded() == ("0.1.1" if editable else "0.1.0")
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", dist], capture_output=True)


def test_setuptools_sdist_carries_the_lock(repos, tmp_path):  # type: ignore[no-untyped-def]
    """The core's setuptools file finder puts kernels.lock in sdists without a MANIFEST.in."""
    import tarfile

    proj = _sample_package(tmp_path / "proj", repos["norm"], "sample_sdist")
    lock_project(proj)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from setuptools import build_meta as b; print(b.build_sdist('dist'))",
        ],
        capture_output=True,
        text=True,
        cwd=proj,
    )
    assert out.returncode == 0, out.stderr
    sdist = proj / "dist" / out.stdout.strip().splitlines()[-1]
    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
        assert "kernels.lock" in names
        member = next(m for m in tar.getmembers() if m.name.endswith("/kernels.lock"))
        data = tar.extractfile(member)
        assert data is not None and data.read().decode() == (proj / "kernels.lock").read_text()


def test_kernels_add_keeps_formatting_and_locks(repos, tmp_path):  # type: ignore[no-untyped-def]
    proj = tmp_path / "p"
    proj.mkdir()
    original = '[project]\nname = "x"  # keep me\nversion = "0"\n\n[tool.other]\na = 1\n'
    (proj / "pyproject.toml").write_text(original)
    out = subprocess.run(
        [*CLI, "add", repos["norm"], f"{repos['act']}@>=0.1,<0.2", "--dir", str(proj)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    text = (proj / "pyproject.toml").read_text()
    assert text.startswith(original)  # everything else kept byte for byte
    assert f'"{repos["norm"]}" = 1' in text and f'"{repos["act"]}" = ">=0.1,<0.2"' in text
    assert set(read_lock(proj / "kernels.lock").kernels) == {repos["norm"], repos["act"]}
    # A kernel that cannot be locked is not added.
    before = (proj / "pyproject.toml").read_text()
    out = subprocess.run(
        [*CLI, "add", "kernels-test/nope@1", "--dir", str(proj)], capture_output=True, text=True
    )
    assert out.returncode == 1 and "nope" in out.stderr and "Traceback" not in out.stderr
    assert (proj / "pyproject.toml").read_text() == before
