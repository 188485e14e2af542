"""`kernels remove`, `kernels outdated`, and messages that name the tool a project uses.

Against the session's local Hub, through the real CLI (``python -m kernels``) where the command is
what a user types.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import tomllib
from kernelhub import publish, renamed, unique_repo, universal_rmsnorm
from kernels.lockfile import read_lock
from kernels_lockembed import LockEmbedError, lock_text_for_build, project_tool, tool_command

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "kernels"]
# What tools set in the processes they start; cleared so that only each test's own settings count.
TOOL_VARS = ("UV", "HATCH_ENV_ACTIVE", "PDM_PROJECT_ROOT", "PYTHONPATH")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """os.environ without the variables that say which tool runs (set for the test process too)."""
    for var in TOOL_VARS:
        monkeypatch.delenv(var, raising=False)
    return dict(os.environ)


@pytest.fixture(scope="module")
def norm(hub) -> str:  # type: ignore[no-untyped-def]
    """A pure-Python kernel at v0.1.0 (branch v1)."""
    repo = unique_repo("cmd-norm")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    return repo


def cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=cwd, env=env)


def project(path: Path, deps: str, extra: str = "") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "pyproject.toml").write_text(
        '[project]\nname = "p"  # keep me\nversion = "0.1.0"\n\n'
        "# the kernels\n[tool.kernels.dependencies]\n" + textwrap.dedent(deps) + extra
    )
    return path


# ---- kernels remove -----------------------------------------------------------------------------


def test_remove_takes_kernels_out_of_pyproject_and_lock(hub, norm, tmp_path):  # type: ignore[no-untyped-def]
    """`kernels remove` drops the entries from both files, keeps every other byte and every other
    locked entry as it was, and asks the Hub nothing; an unknown repo changes nothing."""
    other = unique_repo("cmd-other")
    publish(hub.endpoint, other, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    proj = project(
        tmp_path / "p",
        f'"{norm}" = 1  # first\n"{other}" = ">=0.1"\n',
        '\n[tool.other]\nkept = "yes"\n',
    )
    assert cli("lock", str(proj)).returncode == 0
    before = (proj / "pyproject.toml").read_text()
    kept_entry = read_lock(proj / "kernels.lock").kernels[other]

    hub.reset_requests()
    out = cli("remove", norm, "--dir", str(proj))
    assert out.returncode == 0, out.stderr
    assert hub.requests() == []
    assert f"removed {norm} from [tool.kernels.dependencies] and" in out.stdout
    assert (proj / "pyproject.toml").read_text() == before.replace(f'"{norm}" = 1  # first\n', "")
    lock = read_lock(proj / "kernels.lock")
    assert lock.kernels == {other: kept_entry}
    assert cli("check", str(proj)).returncode == 0

    # Not a dependency (a typo): one line naming the file, a suggestion, nothing written.
    after = (proj / "pyproject.toml").read_text(), (proj / "kernels.lock").read_text()
    out = cli("remove", other.upper(), "--dir", str(proj))
    assert out.returncode == 1 and "Traceback" not in out.stderr
    (line,) = out.stderr.splitlines()
    assert "pyproject.toml" in line and f"did you mean {other}?" in line, line
    assert ((proj / "pyproject.toml").read_text(), (proj / "kernels.lock").read_text()) == after

    # The last one: an empty table and an empty lock, both still consistent.
    assert cli("remove", other, "--dir", str(proj)).returncode == 0
    assert read_lock(proj / "kernels.lock").kernels == {}
    assert cli("check", str(proj)).returncode == 0


def test_remove_without_a_lock_edits_only_pyproject(tmp_path):  # type: ignore[no-untyped-def]
    """Also when [tool] is split around another table (as in Poetry projects with sources)."""
    split = '\n[build-system]\nrequires = []\n\n[[tool.poetry.source]]\nname = "s"\n'
    proj = project(tmp_path / "p", '"org/a" = 1\n"org/b" = 2\n', split)
    before = (proj / "pyproject.toml").read_text()
    out = cli("remove", "org/a", "org/b", "--dir", str(proj))
    assert out.returncode == 0, out.stderr
    assert "removed org/a from [tool.kernels.dependencies]\n" in out.stdout
    assert not (proj / "kernels.lock").exists()
    assert (proj / "pyproject.toml").read_text() == before.replace('"org/a" = 1\n"org/b" = 2\n', "")


# ---- kernels outdated ---------------------------------------------------------------------------


def test_outdated_compares_each_lock_entry_with_the_newest_match(hub, clean_env, tmp_path):  # type: ignore[no-untyped-def]
    """Locked vs newest per kernel (table and --json), without writing anything; `lock --upgrade`
    makes every row up to date; unlocked and stray entries and unresolvable repos are named."""
    repo = unique_repo("cmd-outdated")
    v1 = publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    proj = project(tmp_path / "p", f'"{repo}" = ">=0.1"\n')
    assert cli("lock", str(proj)).returncode == 0
    out = cli("outdated", str(proj), "--json")
    assert out.returncode == 0, out.stderr
    (row,) = json.loads(out.stdout)["kernels"]
    assert row["status"] == "up to date" and row["locked_commit"] == row["newest_commit"] == v1

    v2 = publish(hub.endpoint, repo, [universal_rmsnorm("0.2.0")], branch="v1", tags=["v0.2.0"])
    lock_before = (proj / "kernels.lock").read_text()
    hub.reset_requests()
    out = cli("outdated", str(proj))
    assert out.returncode == 0, out.stderr
    assert len(hub.requests()) == 1  # one resolution per dependency
    (line,) = [ln for ln in out.stdout.splitlines() if ln.startswith(repo)]
    want = [repo, "version", "'>=0.1'", "v0.1.0", f"({v1[:12]})", "v0.2.0", f"({v2[:12]})"]
    assert line.split() == [*want, "outdated"], line
    assert f"run `kernels lock {proj} --upgrade` to move the lock" in out.stdout, out.stdout
    assert (proj / "kernels.lock").read_text() == lock_before

    # After the upgrade it is current; a new dependency is "not locked", a dropped one "not a
    # dependency", one that does not exist is an error line and exit 1 (the others still shown).
    assert cli("lock", str(proj), "--upgrade").returncode == 0
    text = (proj / "pyproject.toml").read_text().replace(f'"{repo}" = ">=0.1"\n', "")
    new, missing = unique_repo("cmd-new"), unique_repo("cmd-missing")
    publish(hub.endpoint, new, [universal_rmsnorm("0.1.0")], branch="v1")
    (proj / "pyproject.toml").write_text(text + f'"{new}" = 1\n"{missing}" = 1\n')
    out = cli("outdated", str(proj), "--json")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    rows = {r["repo_id"]: r for r in json.loads(out.stdout)["kernels"]}
    assert rows[repo]["status"] == "not a dependency" and rows[repo]["locked_commit"] == v2
    assert rows[new]["status"] == "not locked" and rows[new]["newest_ref"] == "v1"
    assert rows[missing]["status"] == "error"
    assert out.stderr.startswith(f"error: {missing}: ") and len(out.stderr.splitlines()) == 1


# ---- messages that name the project's tool ------------------------------------------------------


EXAMPLES = ROOT / "examples" / "projects"


def test_tool_commands_follow_the_running_tool_then_the_project(clean_env, tmp_path):  # type: ignore[no-untyped-def]
    """Each example project gets its tool's command; the tool that is running wins."""
    assert {ex: tool_command(EXAMPLES / ex, "lock") for ex in ("hatch", "pdm", "poetry")} == {
        "hatch": "hatch run kernels:lock",
        "pdm": "pdm kernels lock",
        "poetry": "poetry kernels lock",
    }
    # uv: before the first lock the project cannot be installed, so `uv run` alone would fail.
    assert tool_command(EXAMPLES / "uv", "lock") == (
        "uv sync --no-install-project && uv run --no-sync kernels lock"
    )
    assert tool_command(EXAMPLES / "uv", "download") == "uv run kernels download"
    plain = project(tmp_path / "plain", "")
    assert project_tool(plain) is None
    assert tool_command(plain, "lock --upgrade") == f"kernels lock {plain} --upgrade"
    assert tool_command(plain, "download", {"UV": "/usr/bin/uv"}) == "uv run kernels download"
    assert tool_command(plain, "download", {"HATCH_ENV_ACTIVE": "default", "UV": "x"}) == (
        "hatch run kernels download"
    )
    assert project_tool(plain, {"PDM_PROJECT_ROOT": str(plain)}) == "pdm"
    (plain / "poetry.lock").write_text("")
    assert tool_command(plain, "download") == "poetry kernels download"


@pytest.mark.parametrize(
    ("example", "command"),
    [
        ("hatch", "hatch run kernels:lock"),
        ("uv", "uv sync --no-install-project && uv run --no-sync kernels lock"),
        ("pdm", "pdm kernels lock"),
        ("poetry", "poetry kernels lock"),
    ],
)
def test_missing_lock_build_error_names_the_tools_command(clean_env, tmp_path, example, command):  # type: ignore[no-untyped-def]
    """What the build hooks raise (they all call lock_text_for_build) names the tool's command."""
    proj = tmp_path / example
    proj.mkdir()
    text = (EXAMPLES / example / "pyproject.toml").read_text()
    if "kernels" not in tomllib.loads(text).get("tool", {}):  # the Poetry example starts without
        text += '\n[tool.kernels.dependencies]\n"org/name" = 1\n'
    (proj / "pyproject.toml").write_text(text)
    with pytest.raises(LockEmbedError) as info:
        lock_text_for_build(proj)
    assert str(info.value).endswith(f"is missing; run `{command}` and commit kernels.lock")


def test_uncaught_not_in_cache_is_one_line_naming_the_tool(norm, clean_env, tmp_path):  # type: ignore[no-untyped-def]
    """`python -c 'load_kernel(...)'` in a uv project folder finds the folder's lock (the caller is
    `__main__`, which has no file), and the NotInCacheError nobody catches prints as one line naming
    `uv run kernels download` and the calling line; KERNELS_TRACEBACK=1 keeps the traceback."""
    proj = project(tmp_path / "p", f'"{norm}" = 1\n', "\n[tool.uv]\n")
    assert cli("lock", str(proj)).returncode == 0
    code = f"from kernels import load_kernel\nload_kernel({norm!r})"
    run = subprocess.run([sys.executable, "-c", code], cwd=proj, capture_output=True, text=True)
    assert run.returncode == 1
    (line,) = run.stderr.splitlines()
    assert line.startswith(f"NotInCacheError: {norm}@") and line.endswith("(<string>:2)"), line
    assert "run `uv run kernels download`" in line
    env = {**clean_env, "KERNELS_TRACEBACK": "1"}
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=proj, capture_output=True, text=True, env=env
    )
    assert run.returncode == 1 and run.stderr.startswith("Traceback"), run.stderr

    # Downloaded, the same one-liner loads, from a subfolder too (the nearest pyproject.toml).
    assert cli("download", str(proj)).returncode == 0
    (proj / "sub").mkdir()
    run = subprocess.run(
        [sys.executable, "-c", code + ".__version__"],
        cwd=proj / "sub",
        capture_output=True,
        text=True,
        env={**clean_env, "HF_HUB_OFFLINE": "1"},
    )
    assert run.returncode == 0, run.stderr
    # Outside any project it still says what to do.
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    (line,) = run.stderr.splitlines()
    assert "no kernels.lock found for module '__main__'" in line and "project folder" in line


NO_TORCH = "import sys; sys.modules['torch'] = None; from kernels.cli import main; "


def test_pure_python_kernel_needs_no_torch_to_download(hub, norm, tmp_path):  # type: ignore[no-untyped-def]
    """Without torch, a pure-Python (torch-universal only) kernel still downloads; importing it says
    the kernel imports torch, not "install torch to load compiled kernels", which a compiled one
    still gets."""
    proj = project(tmp_path / "p", f'"{norm}" = 1\n')
    assert cli("lock", str(proj)).returncode == 0
    code = NO_TORCH + f"sys.exit(main(['download', {str(proj)!r}]))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0 and "downloaded 1/1" in run.stdout, run.stderr
    code = (
        "import sys; sys.modules['torch'] = None; from kernels import load_kernel; "
        f"load_kernel({norm!r}, lockfile={str(proj / 'kernels.lock')!r})"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    (line,) = run.stderr.splitlines()
    assert "imports torch, which is not installed" in line and "compiled" not in line, line

    # A repo with only compiled-looking variants (no build needed: choosing among them needs torch).
    act = unique_repo("cmd-act")
    names = ["torch213-cxx11-cpu-x86_64-linux", "torch213-cxx11-cu130-x86_64-linux"]
    publish(hub.endpoint, act, renamed(universal_rmsnorm("0.1.0"), names, tmp_path), branch="v1")
    compiled = project(tmp_path / "c", f'"{act}" = 1\n')
    assert cli("lock", str(compiled)).returncode == 0
    code = NO_TORCH + f"sys.exit(main(['download', {str(compiled)!r}]))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 1 and "install torch to load compiled kernels" in run.stderr
