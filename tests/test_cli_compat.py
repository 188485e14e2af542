"""The CLI commands 0.17.2 users know: info (of a path, --version), versions (with variants),
download of a 0.17 lock, benchmark, and check given a repo id."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import build as example_build
import pytest
from kernelhub import EXAMPLES, cpu_activation, publish, renamed, unique_repo
from kernels.platform import detect_platform

HERE = detect_platform().variant
CLI = [sys.executable, "-m", "kernels"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def bench_repo(hub, tmp_path_factory):  # type: ignore[no-untyped-def]
    """activation with its benchmarks/ and a decoy variant, on branch v1."""
    repo = unique_repo("cli-act")
    decoys = renamed(cpu_activation(), ["torch-cuda"], tmp_path_factory.mktemp("decoys"))
    commit = publish(hub.endpoint, repo, [cpu_activation(), *decoys])
    extra = example_build.repo_files(EXAMPLES / "activation")
    example_build.publish_kernel(hub.endpoint, repo, [cpu_activation()], extra_files=extra)
    return {"repo": repo, "commit": commit}


def test_info_of_a_repo_version_and_of_a_local_path(bench_repo, tmp_path):  # type: ignore[no-untyped-def]
    out = run("info", bench_repo["repo"], "--version", "1", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["revision"] == "v1" and data["selected"] == HERE
    assert data["name"] == "activation" and data["license"] == "apache-2.0"
    assert data["backends"] == ["cpu", "cuda"] and data["python_depends"] == []
    root = tmp_path / "checkout"
    shutil.copytree(cpu_activation(), root / "build" / HERE)
    out = run("info", str(root))
    assert out.returncode == 0, out.stderr
    assert f"{root} (local)" in out.stdout and f"* {HERE}" in out.stdout
    assert "name: activation" in out.stdout
    data = json.loads(run("info", str(root / "build" / HERE), "--json").stdout)
    assert data["path"] == str(root / "build" / HERE) and data["version"] == "0.1.0"
    bad = run("info", str(root), "--version", "1")
    assert bad.returncode == 1 and "local folder" in bad.stderr


def test_versions_lists_each_versions_variants(bench_repo):  # type: ignore[no-untyped-def]
    data = json.loads(run("versions", bench_repo["repo"], "--json").stdout)
    [branch] = data["branches"]
    assert branch["branch"] == "v1"
    assert [(v["name"], v["accepted"]) for v in branch["variants"]] == [
        (HERE, True),
        ("torch-cuda", False),
    ]
    text = run("versions", bench_repo["repo"]).stdout
    assert f"{HERE}: loads here, preferred" in text and "torch-cuda: arch-free cuda build" in text


def test_download_of_a_017_lock_verifies_against_the_listing(hub, bench_repo, tmp_path):  # type: ignore[no-untyped-def]
    proj = tmp_path / "p"
    proj.mkdir()
    (proj / "pyproject.toml").write_text(
        f'[tool.kernels.dependencies]\n"{bench_repo["repo"]}" = 1\n'
    )
    lock = [
        {
            "dependency": {"repo-id": bench_repo["repo"], "version": 1},
            "lock": {"commit": bench_repo["commit"]},
        }
    ]
    (proj / "kernels.lock").write_text(json.dumps(lock))
    hub.add_fault(
        path_regex=rf"/resolve/{bench_repo['commit']}/build/{HERE}/__init__.py", corrupt=True
    )
    try:
        bad = run("download", str(proj))
    finally:
        hub.clear_faults()
    assert bad.returncode == 1 and "__init__.py" in bad.stderr  # refused against the listing
    out = run("download", str(proj))
    assert out.returncode == 0, out.stderr
    assert "downloaded 1/1" in out.stdout
    assert "without hashes" in out.stderr and "`kernels lock`" in out.stderr


def test_benchmark_table_json_and_png(bench_repo, tmp_path):  # type: ignore[no-untyped-def]
    out = run(
        "benchmark", bench_repo["repo"], "--iterations", "5", "--warmup", "1", "--json",
        "--visual", str(tmp_path / "chart"), "--output", str(tmp_path / "out.json"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert json.loads((tmp_path / "out.json").read_text()) == data
    results = {r["workload"]: r for r in data["results"]}
    assert set(results) == {"Activation.gelu_fast", "Activation.silu_and_mul"}
    for r in results.values():
        assert r["verified"] is True and r["timingResults"]["iterations"] == 5
        assert r["timingResults"]["min_ms"] <= r["timingResults"]["mean_ms"]
    assert data["kernelCommitSha"] != "local" and len(data["benchmarkScriptSha"]) == 64
    assert "Activation.gelu_fast" in out.stderr  # the table goes to stderr with --json
    png = (tmp_path / "chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width > 400 and height > 100
    zlib.decompress(png[png.index(b"IDAT") + 4 : png.index(b"IEND") - 8])
    local = tmp_path / "local-activation"
    shutil.copytree(cpu_activation(), local / "build" / HERE)
    shutil.copytree(EXAMPLES / "activation" / "benchmarks", local / "benchmarks")
    text = run("benchmark", str(local), "--iterations", "2", "--warmup", "0")
    assert text.returncode == 0, text.stderr
    assert "Activation.silu_and_mul" in text.stdout and "speedup" in text.stdout


def test_check_keeps_its_meaning_and_says_so_for_a_repo_id(tmp_path):  # type: ignore[no-untyped-def]
    out = run("check", "kernels-community/activation")
    assert out.returncode == 2
    assert "kernels.lock is up to date" in out.stderr and "kernel-builder check-abi" in out.stderr
    alias = Path(sys.executable).parent / "kernel"  # 0.17.2 installs the CLI as `kernel` too
    assert subprocess.run([str(alias), "check", "org/name"], capture_output=True).returncode == 2
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert run("check", str(tmp_path)).returncode == 0
