"""Trusted kernel publishers: untrusted organisations refused unless the caller opts in."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import kernels
import kernels.trust
import pytest
from conftest import UNTRUSTED_ORG
from kernelhub import publish, unique_repo, universal_rmsnorm
from kernels.errors import InvalidArgumentError, UntrustedKernelError

CLI = [sys.executable, "-m", "kernels"]


def _untrusted_repo(hub) -> str:  # type: ignore[no-untyped-def]
    repo = f"{UNTRUSTED_ORG}/rmsnorm-{uuid.uuid4().hex[:10]}"
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    return repo


def _paths(hub) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.path for r in hub.requests()]


def test_untrusted_org_refused_then_allowed_by_flag_and_by_list(hub):  # type: ignore[no-untyped-def]
    repo = _untrusted_repo(hub)
    hub.reset_requests()
    with pytest.raises(UntrustedKernelError) as refused:
        kernels.get_kernel(repo, version=1)
    msg = str(refused.value)
    assert isinstance(refused.value, ValueError)  # what 0.17.2 raises; callers catch it
    assert repo in msg and repr(UNTRUSTED_ORG) in msg and "trust_remote_code=True" in msg
    assert not [p for p in _paths(hub) if "/resolve/" in p], "nothing downloaded"
    for call in (
        lambda: kernels.install_kernel(repo, version=1),
        lambda: kernels.has_kernel(repo, version=1),
        lambda: kernels.get_kernel(repo, version=1, trust_remote_code=["other/repo"]),
    ):
        with pytest.raises(UntrustedKernelError):
            call()
    mod = kernels.get_kernel(repo, version=1, trust_remote_code=[repo])
    assert mod.__version__ == "0.1.0"
    assert kernels.get_kernel(repo, version=1, trust_remote_code=True) is mod
    assert kernels.has_kernel(repo, version=1, trust_remote_code=True)
    with pytest.raises(InvalidArgumentError, match="trust_remote_code must be"):
        kernels.get_kernel(repo, version=1, trust_remote_code="yes")  # type: ignore[arg-type]


def test_one_request_per_org_and_none_for_warm_loads(hub, monkeypatch):  # type: ignore[no-untyped-def]
    """A cold load asks about the organisation once; more repos of it in the process, and warm
    loads of a cached commit in new processes, ask nothing; KERNELS_TRUST_MAX_AGE=0 makes
    downloading loads ask again, never cache-served ones."""
    a, b = unique_repo("trust-a"), unique_repo("trust-b")
    c1 = publish(hub.endpoint, a, [universal_rmsnorm("0.1.0")], branch="v1")
    publish(hub.endpoint, b, [universal_rmsnorm("0.1.0")], branch="v1")
    kernels.trust._memo.clear()
    hub.reset_requests()
    kernels.get_kernel(a, version=1)
    kernels.get_kernel(b, version=1)
    assert [p for p in _paths(hub) if "/overview" in p] == [
        "/api/organizations/kernels-test/overview"
    ]
    hub.reset_requests()
    code = f"import kernels; kernels.get_kernel({a!r}, revision={c1!r}); print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert _paths(hub) == []
    env = {**os.environ, "KERNELS_TRUST_MAX_AGE": "0"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and _paths(hub) == [], out.stderr  # served from the cache
    monkeypatch.setenv("KERNELS_TRUST_MAX_AGE", "0")
    c = unique_repo("trust-c")
    publish(hub.endpoint, c, [universal_rmsnorm("0.1.0")], branch="v1")
    hub.reset_requests()
    kernels.get_kernel(c, version=1)
    assert len([p for p in _paths(hub) if "/overview" in p]) == 1  # a download asks again


def test_offline_skips_the_check_with_a_warning(hub, monkeypatch, caplog):  # type: ignore[no-untyped-def]
    repo = _untrusted_repo(hub)
    kernels.get_kernel(repo, version=1, trust_remote_code=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset_requests()
    with caplog.at_level(logging.WARNING, logger="kernels.trust"):
        assert kernels.get_kernel(repo, version=1).__version__ == "0.1.0"
    assert any("Skipping the publisher trust check" in r.message for r in caplog.records)
    assert _paths(hub) == []


def test_a_server_trusts_what_it_is_told(hub):  # type: ignore[no-untyped-def]
    repo = _untrusted_repo(hub)
    old = hub.trusted_orgs
    hub.trusted_orgs = {*old, UNTRUSTED_ORG}
    try:
        kernels.trust._memo.clear()
        assert kernels.get_kernel(repo, version=1).__version__ == "0.1.0"
    finally:
        hub.trusted_orgs = old
        kernels.trust._memo.clear()


def test_lock_and_locked_loads_check_the_publisher(hub, tmp_path):  # type: ignore[no-untyped-def]
    """`kernels lock` refuses an untrusted repo unless [tool.kernels] trust-remote-code names it;
    get_locked_kernel checks too; load_kernel (offline, from the lock) does not."""
    repo = _untrusted_repo(hub)
    proj = tmp_path / "p"
    proj.mkdir()
    deps = f'[tool.kernels.dependencies]\n"{repo}" = 1\n'
    (proj / "pyproject.toml").write_text(deps)
    out = subprocess.run([*CLI, "lock", str(proj)], capture_output=True, text=True)
    assert out.returncode == 1 and "trust-remote-code" in out.stderr and repo in out.stderr
    assert not (proj / "kernels.lock").exists()
    (proj / "pyproject.toml").write_text(f'[tool.kernels]\ntrust-remote-code = ["{repo}"]\n{deps}')
    out = subprocess.run([*CLI, "lock", str(proj)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lock = Path(proj / "kernels.lock")
    with pytest.raises(UntrustedKernelError):
        kernels.get_locked_kernel(repo, lockfile=lock)
    mod = kernels.get_locked_kernel(repo, lockfile=lock, trust_remote_code=True)
    assert kernels.load_kernel(repo, lockfile=lock) is mod
