"""Kernels that depend on kernels: loaded first, reachable through get_kernel_dep, locked too."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import kernels
import pytest
import torch
from kernelhub import publish, scaled_rmsnorm, unique_repo, universal_rmsnorm, with_metadata
from kernels.errors import DependencyCycleError, KernelDependencyError, LockfileError

CLI = [sys.executable, "-m", "kernels"]


@pytest.fixture(scope="module")
def dep_repos(hub):  # type: ignore[no-untyped-def]
    """rmsnorm (v1), and scaled-rmsnorm (v1) depending on it."""
    norm, scaled = unique_repo("dep-rmsnorm"), unique_repo("dep-scaled")
    n1 = publish(hub.endpoint, norm, [universal_rmsnorm("0.1.0")], branch="v1")
    s1 = publish(hub.endpoint, scaled, [scaled_rmsnorm(norm)], branch="v1")
    return {"norm": norm, "scaled": scaled, "n1": n1, "s1": s1}


def test_dependency_is_loaded_first_and_reachable(dep_repos):  # type: ignore[no-untyped-def]
    mod = kernels.get_kernel(dep_repos["scaled"], version=1)
    x, w = torch.randn(4, 8), torch.ones(8)
    norm = kernels.get_kernel(dep_repos["norm"], version=1)
    assert mod.rmsnorm is norm  # the dependency, through get_kernel_dep during the import
    torch.testing.assert_close(mod.scaled_rms_norm(x, w, 3.0), 3.0 * norm.rms_norm(x, w))
    loaded = {k.repo_id: k for k in kernels.get_loaded_kernels() if k.repo_info}
    dep = loaded[dep_repos["scaled"]].metadata.kernel_depends
    assert [(d.repo_id, d.version) for d in dep] == [(dep_repos["norm"], 1)]
    assert loaded[dep_repos["norm"]].repo_info.revision == dep_repos["n1"]  # type: ignore[union-attr]
    assert kernels.has_kernel(dep_repos["scaled"], version=1)


def test_locked_dependency_loads_offline_with_zero_requests(hub, dep_repos, tmp_path):  # type: ignore[no-untyped-def]
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "pyproject.toml").write_text(
        f'[tool.kernels.dependencies]\n"{dep_repos["scaled"]}" = 1\n'
    )
    out = subprocess.run([*CLI, "lock", str(proj)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    entry = json.loads((proj / "kernels.lock").read_text())["kernels"][dep_repos["scaled"]]
    nested = entry["depends"][dep_repos["norm"]]
    assert nested["commit"] == dep_repos["n1"] and nested["spec"] == {"version": 1}
    assert nested["variants"]["torch-universal"]["hash"].startswith("sha256-")
    out = subprocess.run([*CLI, "download", str(proj)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    hub.reset_requests()
    code = (
        "import kernels, torch\n"
        f"m = kernels.load_kernel({dep_repos['scaled']!r}, lockfile={str(proj / 'kernels.lock')!r})\n"
        "print(float(m.scaled_rms_norm(torch.ones(2, 4), torch.ones(4), 2.0).sum()))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert abs(float(out.stdout) - 16.0) < 1e-3
    assert hub.requests() == []
    # A lock that lacks the dependency is a clear error, not a download.
    doc = json.loads((proj / "kernels.lock").read_text())
    del doc["kernels"][dep_repos["scaled"]]["depends"]
    (proj / "kernels.lock").write_text(json.dumps(doc))
    with pytest.raises(LockfileError, match="kernels lock --upgrade"):
        kernels.load_kernel(dep_repos["scaled"], lockfile=proj / "kernels.lock")


def test_dependency_cycle_is_refused_naming_it(hub, tmp_path):  # type: ignore[no-untyped-def]
    a, b = unique_repo("cycle-a"), unique_repo("cycle-b")
    base = universal_rmsnorm("0.1.0")
    publish(
        hub.endpoint,
        a,
        [with_metadata(base, tmp_path, kernel_depends=[{"repo-id": b, "version": 1}])],
    )
    publish(
        hub.endpoint,
        b,
        [with_metadata(base, tmp_path, kernel_depends=[{"repo-id": a, "version": 1}])],
    )
    with pytest.raises(DependencyCycleError) as info:
        kernels.get_kernel(a, version=1)
    assert f"{a} (version 1) -> {b} (version 1) -> {a} (version 1)" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_get_kernel_dep_outside_an_import_raises() -> None:
    with pytest.raises(KernelDependencyError, match="while a kernel is being imported"):
        kernels.get_kernel_dep("org/name")
    assert isinstance(KernelDependencyError("x"), RuntimeError)
