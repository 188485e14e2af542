"""get_kernel and friends against the local Hub, with a compiled CPU kernel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kernels
import pytest
import torch
from kernelhub import ROOT, cpu_activation, publish, renamed, unique_repo, universal_rmsnorm
from kernels import (
    NoCompatibleVariantError,
    NotInCacheError,
    get_kernel,
    get_kernel_variants,
    get_loaded_kernels,
    has_kernel,
    install_kernel,
)
from kernels.errors import KernelsError, NotFoundOnHubError, ResolutionError
from kernels.platform import detect_platform

HERE = detect_platform().variant


@pytest.fixture(scope="module")
def activation_repo(hub, tmp_path_factory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """activation published with the loadable CPU variant plus decoys: v0.1.0 (branch v1),
    v0.2.0 (tag only) and a later commit on main."""
    tmp = tmp_path_factory.mktemp("act")
    repo = unique_repo("activation")
    v1 = cpu_activation("0.1.0")
    decoys = renamed(
        v1,
        ["torch211-cxx11-cu130-x86_64-linux", "torch212-cxx11-cpu-x86_64-linux", "torch-cuda"],
        tmp,
    )
    c1 = publish(hub.endpoint, repo, [v1, *decoys], branch="v1", tags=["v0.1.0"])
    v2 = cpu_activation("0.2.0")
    c2 = publish(hub.endpoint, repo, [v2], branch="v2", tags=["v0.2.0"])
    return {"repo": repo, "c1": c1, "c2": c2}


def _count(hub, since: int = 0) -> list[str]:  # type: ignore[no-untyped-def]
    return [f"{r.method} {r.path}" for r in hub.requests()[since:]]


def test_cold_load_costs_at_most_files_plus_three_and_fetches_one_variant(hub, activation_repo):  # type: ignore[no-untyped-def]
    repo = activation_repo["repo"]
    hub.reset_requests()
    mod = get_kernel(repo, version=1)
    reqs = _count(hub)
    files = list(Path(mod.__file__).parent.iterdir())
    nfiles = sum(1 for p in Path(mod.__file__).parent.rglob("*") if p.is_file() or p.is_symlink())
    assert len(reqs) <= nfiles + 3, reqs
    downloads = [r for r in reqs if "/resolve/" in r]
    assert len(downloads) == nfiles
    assert all(f"/build/{HERE}/" in r for r in downloads), downloads
    assert all(r.startswith("GET") for r in downloads), "no HEAD requests"
    x = torch.randn(64, 33)
    y = torch.empty_like(x)
    mod.gelu_fast(y, x)
    torch.testing.assert_close(y, torch.nn.functional.gelu(x, approximate="tanh"))
    assert files


def test_warm_loads_by_commit_and_offline_cost_zero_requests(hub, activation_repo, monkeypatch):  # type: ignore[no-untyped-def]
    repo, c1 = activation_repo["repo"], activation_repo["c1"]
    get_kernel(repo, version=1)
    hub.reset_requests()
    get_kernel(repo, revision=c1)
    assert _count(hub) == []
    get_kernel(repo, version="==0.1.0")  # records tags for offline specifier resolution
    get_kernel(repo, revision="v0.1.0")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset_requests()
    for kwargs in (
        {"version": 1},
        {"version": ">=0.1,<0.2"},
        {"revision": "v1"},
        {"revision": "v0.1.0"},
        {"revision": c1},
    ):
        mod = get_kernel(repo, **kwargs)  # type: ignore[arg-type]
        assert mod.__version__ == "0.1.0", kwargs
    assert _count(hub) == []


def test_offline_in_a_fresh_process_for_every_revision_kind(hub, activation_repo):  # type: ignore[no-untyped-def]
    repo, c1 = activation_repo["repo"], activation_repo["c1"]
    for kwargs in (
        {"version": 1},
        {"version": ">=0.1,<0.2"},
        {"revision": "v0.1.0"},
        {"revision": c1},
    ):
        get_kernel(repo, **kwargs)  # type: ignore[arg-type]
    code = (
        "import kernels, sys\n"
        f"for kw in [dict(version=1), dict(version='>=0.1,<0.2'), dict(revision='v0.1.0'), dict(revision={c1!r})]:\n"
        f"    m = kernels.get_kernel({repo!r}, **kw)\n"
        "    assert m.__version__ == '0.1.0', kw\n"
        "print('ok')\n"
    )
    hub.reset_requests()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert _count(hub) == []


def test_offline_miss_fails_at_once_naming_the_fix(hub, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.reset_requests()
    with pytest.raises(NotInCacheError, match="online"):
        get_kernel("kernels-test/never-fetched", version=1)
    assert _count(hub) == []


def test_versions_revisions_and_specifiers(activation_repo):  # type: ignore[no-untyped-def]
    repo, c1, c2 = activation_repo["repo"], activation_repo["c1"], activation_repo["c2"]
    assert get_kernel(repo, version=1).__version__ == "0.1.0"
    assert get_kernel(repo, version=2).__version__ == "0.2.0"
    assert get_kernel(repo, version=">=0.1").__version__ == "0.2.0"  # highest match wins
    assert get_kernel(repo, version=">=0.1,<0.2").__version__ == "0.1.0"
    assert get_kernel(repo, revision="v0.2.0").__version__ == "0.2.0"
    assert get_kernel(repo, revision=c1).__version__ == "0.1.0"
    assert get_kernel(repo).__version__ == "0.2.0"  # main
    assert install_kernel(repo, revision=c2).parts[-3] == c2
    with pytest.raises(ResolutionError, match=r"versions available: 0\.1\.0, 0\.2\.0"):
        get_kernel(repo, version=">=1")
    with pytest.raises(NotFoundOnHubError, match="not found") as missing:
        get_kernel(repo, revision="no-such-branch")
    assert isinstance(missing.value, OSError)  # as huggingface_hub's RevisionNotFoundError
    with pytest.raises(ValueError, match=r"versions available"):
        get_kernel(repo, version=">=1")  # callers written for 0.17.2 catch ValueError
    with pytest.raises(KernelsError, match="either revision= or version="):
        get_kernel(repo, revision="main", version=1)
    with pytest.raises(KernelsError, match="invalid repo id"):
        get_kernel("not-a-repo-id")


def test_two_versions_side_by_side_and_same_module_twice(hub, tmp_path):  # type: ignore[no-untyped-def]
    repo = unique_repo("rmsnorm")
    v1 = universal_rmsnorm("0.1.0")
    src = tmp_path / "rmsnorm"
    shutil.copytree(ROOT / "examples" / "kernels" / "rmsnorm", src)
    impl = next(p for p in src.rglob("_impl.py"))
    # Version 2 computes something else: a doubled output, so the two modules must run different code.
    impl.write_text(
        impl.read_text()
        + "\n\n_original = rms_norm\n\ndef rms_norm(*a, **k):\n    return 2 * _original(*a, **k)\n"
    )
    v2 = universal_rmsnorm("0.2.0", src=src)
    publish(hub.endpoint, repo, [v1], branch="v1", tags=["v0.1.0"])
    publish(hub.endpoint, repo, [v2], branch="v2", tags=["v0.2.0"])
    a = get_kernel(repo, version=1)
    b = get_kernel(repo, version=2)
    assert a is not b and a.__name__ != b.__name__
    x, w = torch.randn(4, 8), torch.ones(8)
    torch.testing.assert_close(b.rms_norm(x, w), 2 * a.rms_norm(x, w))
    assert get_kernel(repo, version=1) is a
    names = {k.module_name for k in get_loaded_kernels()}
    assert {a.__name__, b.__name__} <= names
    assert a.__name__ in sys.modules and b.__name__ in sys.modules


def test_no_compatible_variant_lists_every_variant(hub, tmp_path):  # type: ignore[no-untyped-def]
    repo = unique_repo("gpu-only")
    decoys = renamed(cpu_activation(), ["torch29-metal-aarch64-darwin", "torch-cuda"], tmp_path)
    publish(hub.endpoint, repo, decoys)
    assert has_kernel(repo, version=1) is False
    with pytest.raises(NoCompatibleVariantError) as info:
        get_kernel(repo, version=1)
    msg = str(info.value)
    assert "torch29-metal-aarch64-darwin: built for darwin" in msg
    assert "torch-cuda: arch-free cuda build" in msg
    assert HERE in msg
    verdicts = get_kernel_variants(repo, version=1)
    assert [v.accepted for v in verdicts] == [False, False]


def test_cache_is_the_standard_hf_layout(activation_repo, hf_cache):  # type: ignore[no-untyped-def]
    from huggingface_hub import scan_cache_dir

    get_kernel(activation_repo["repo"], version=1)
    info = scan_cache_dir(hf_cache)
    repos = {r.repo_id: r for r in info.repos}
    cached = repos[activation_repo["repo"]]
    assert cached.repo_type == "kernel"
    assert "v1" in {ref for rev in cached.revisions for ref in rev.refs}
    assert not info.warnings


def test_local_kernel_and_import_is_light(tmp_path):  # type: ignore[no-untyped-def]
    variant = cpu_activation()
    mod = kernels.get_local_kernel(variant)
    x = torch.randn(8, 6)
    out = torch.empty(8, 3)
    mod.silu_and_mul(out, x)
    torch.testing.assert_close(out, torch.nn.functional.silu(x[:, :3]) * x[:, 3:])


def test_seed_example_runs(hub, activation_repo):  # type: ignore[no-untyped-def]
    import build as example_build

    example_build.publish_examples(hub.endpoint)
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "basic.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_ENDPOINT": hub.endpoint},
    )
    assert out.returncode == 0, out.stderr
    assert "gelu_fast" in out.stdout and "matches" in out.stdout


def test_cli_versions_and_info(hub, activation_repo):  # type: ignore[no-untyped-def]
    import json

    repo = activation_repo["repo"]
    run = [sys.executable, "-m", "kernels"]
    out = subprocess.run(
        [*run, "versions", repo, "--json"], capture_output=True, text=True, check=True
    )
    data = json.loads(out.stdout)
    assert [v["version"] for v in data["versions"]] == ["0.2.0", "0.1.0"]
    assert [b["branch"] for b in data["branches"]] == ["v1", "v2"]
    out = subprocess.run([*run, "versions", repo], capture_output=True, text=True, check=True)
    assert "v0.1.0" in out.stdout and 'version="==0.1.0"' in out.stdout
    out = subprocess.run(
        [*run, "info", repo, "--revision", "v1"], capture_output=True, text=True, check=True
    )
    assert f"* {HERE}" in out.stdout and "torch-cuda" in out.stdout
    bad = subprocess.run(
        [*run, "info", "kernels-test/missing-repo"], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "not found" in bad.stderr and "Traceback" not in bad.stderr


def test_recently_confirmed_branches_cost_no_request(hub, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Within KERNELS_REF_MAX_AGE a branch load asks the Hub nothing; with 0 it always asks and
    sees a moved branch; locking always asks."""
    repo = unique_repo("ttl")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    assert get_kernel(repo, version=1).__version__ == "0.1.0"
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.1")], branch="v1", tags=["v0.1.1"])
    hub.reset_requests()
    code = f"import kernels; print(kernels.get_kernel({repo!r}, version=1).__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0.1.0" and hub.requests() == []  # confirmed moments ago
    env = {**os.environ, "KERNELS_REF_MAX_AGE": "0"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip() == "0.1.1"
    assert [r.path for r in hub.requests() if "/revision/" in r.path]
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "pyproject.toml").write_text(f'[tool.kernels.dependencies]\n"{repo}" = 1\n')
    monkeypatch.setenv("KERNELS_REF_MAX_AGE", "3600")
    from kernels.project import lock_project

    assert lock_project(proj).lock.kernels[repo].ref == "v1"
    assert (
        lock_project(proj, upgrade=True).lock.kernels[repo].commit
        == kernels.install_kernel(repo, revision="v0.1.1").parts[-3]
    )
