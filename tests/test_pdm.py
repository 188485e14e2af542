"""The PDM adapter (plugins/pdm, ``pdm-kernels``) end to end, with the real ``pdm`` and the local Hub.

PDM is installed once (``tool_venv``) and gets this repo's core and plugin from local wheels. The
sample project is ``examples/projects/pdm`` copied to a temporary folder: its kernel repo id points at
a kernel published on the session's Hub, its ``kernels`` dependency and the ``pdm-kernels`` of its
build environment come from the same local wheels (a find-links source) and its venv sees the shared
torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import kernelhub
import pytest
from envs import (
    CORE_VERSION,
    ROOT,
    env_without_venv,
    install_local,
    local_wheels,
    project_venv,
    run,
    tool_venv,
)
from guides import DIST, Guide, steps
from kernels.server import HubServer

pytestmark = pytest.mark.slow

PDM_VERSION = "2.29.4"
# pdm 2.29.4 allows hishel>=1.4 but breaks with hishel 2.0 (no SyncSqliteStorage): pin its own pick.
PDM_REQUIREMENTS = [f"pdm=={PDM_VERSION}", "hishel[httpx2]==1.4.0"]
EXAMPLE = ROOT / "examples" / "projects" / "pdm"
EXAMPLE_REPO = "kernels-community/rmsnorm"
EXAMPLE_WHEELS = "file:///${PROJECT_ROOT}/../../../dist"
PACKAGE = "pdm_kernels_example"
# The guide's project (docs/integrations/pdm.md).
GUIDE_PACKAGE = "my_package"
DIST_INFO = "my_package-0.1.0.dist-info"

Pdm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of this repo's core and plugins (built once per session)."""
    return local_wheels(tmp_path_factory.mktemp("wheels"))


@pytest.fixture(scope="module")
def pdm_bin(wheels: Path) -> Path:
    """The bin folder of a venv with pdm and this repo's kernels + pdm-kernels (a global plugin)."""
    bin_dir = tool_venv("pdm", PDM_REQUIREMENTS)
    install_local(bin_dir, wheels, "kernels", "pdm-kernels")
    version = run([str(bin_dir / "pdm"), "--version"]).stdout
    assert PDM_VERSION in version, version
    return bin_dir


@pytest.fixture(scope="module")
def pdm_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """pdm's cache for this module's runs. Not the user's: pdm keeps the metadata of a package by
    name and version, so a wheel of ours rebuilt with new dependencies (same version) would be
    resolved with the dependencies of an older build."""
    return tmp_path_factory.mktemp("pdm-cache")


def pdm_env(config: Path, cache: Path) -> dict[str, str]:
    """The environment pdm runs in: its own config file, no update check, no prompts, wide output."""
    env = env_without_venv()  # read now: HF_HUB_CACHE is per test
    env.update(
        PDM_CONFIG_FILE=str(config),
        PDM_CACHE_DIR=str(cache),
        PDM_CHECK_UPDATE="false",
        PDM_IGNORE_ACTIVE_VENV="1",
        PDM_NON_INTERACTIVE="1",
        NO_COLOR="1",
        COLUMNS="300",
    )
    return env


@pytest.fixture
def pdm(pdm_bin: Path, pdm_cache: Path, tmp_path: Path) -> Iterator[Pdm]:
    """``pdm(*args, cwd=..., check=True, env={...})``: run pdm, return the completed process."""
    config = tmp_path / "pdm-config.toml"

    def call(
        *args: str, cwd: Path, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**pdm_env(config, pdm_cache), **(env or {})}
        out = subprocess.run(
            [str(pdm_bin / "pdm"), *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"pdm {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
            )
        return out

    yield call


def sample_project(dest: Path, wheels: Path, repo: str) -> Path:
    """The example project at ``dest``, depending on ``repo`` and on this repo's local wheels."""
    shutil.copytree(
        EXAMPLE,
        dest,
        ignore=shutil.ignore_patterns(
            ".venv", "pdm.lock", "kernels.lock", ".pdm-python", "__pycache__", "dist"
        ),
    )
    pyproject = dest / "pyproject.toml"
    text = pyproject.read_text()
    assert EXAMPLE_REPO in text and '"kernels>=0.18"' in text
    text = text.replace(EXAMPLE_REPO, repo).replace('"kernels>=0.18"', f'"kernels=={CORE_VERSION}"')
    # Ours, not PyPI's `kernels` 0.17.2, for the project and for its build environment (pdm-kernels):
    # the example's source points at the repository's dist/, this copy at the session's wheels.
    assert EXAMPLE_WHEELS in text
    text = text.replace(EXAMPLE_WHEELS, wheels.as_uri())
    pyproject.write_text(text)
    init = dest / "src" / PACKAGE / "__init__.py"
    init.write_text(init.read_text().replace(EXAMPLE_REPO, repo))
    return dest


def use_venv(pdm: Pdm, project: Path, *, torch: bool = True) -> Path:
    """Give the project a venv (seeing the shared torch) and point pdm at it."""
    python = project_venv(project / ".venv", torch=torch)
    pdm("use", "-f", str(python), cwd=project)
    return python


def lock_entry(project: Path, repo: str) -> dict[str, object]:
    entry: dict[str, object] = json.loads((project / "kernels.lock").read_text())["kernels"][repo]
    return entry


def installed_dist_info(python: Path, name: str = DIST_INFO) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    site = Path(run([str(python), "-c", code]).stdout.strip())
    return site / name


def load_offline(
    pdm: Pdm, project: Path, package: str = GUIDE_PACKAGE, attr: str = "rmsnorm"
) -> str:
    """Import a sample package in its env with HF_HUB_OFFLINE=1; return its kernel's version.

    The source tree's kernels.lock is moved away meanwhile, so the lock can only come from the
    installed package's metadata.
    """
    code = (
        "import kernels, torch; "
        f"assert kernels.__version__ == {CORE_VERSION!r}, kernels.__file__; "
        f"import {package} as m; k = m.{attr}; "
        "x = torch.randn(4, 8); w = torch.ones(8); "
        "torch.testing.assert_close(k.rms_norm(x, w, 1e-6), "
        "x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)); "
        "print('kernel-version', k.__version__)"
    )
    lock = project / "kernels.lock"
    aside = project / "kernels.lock.aside"
    lock.rename(aside)
    try:
        out = pdm("run", "python", "-c", code, cwd=project, env={"HF_HUB_OFFLINE": "1"})
    finally:
        aside.rename(lock)
    match = re.search(r"kernel-version (\S+)", out.stdout)
    assert match, out.stdout + out.stderr
    return match.group(1)


def test_add_lock_install_load_relock(
    pdm: Pdm, pdm_bin: Path, pdm_cache: Path, hub: HubServer, wheels: Path, tmp_path: Path
) -> None:
    """docs/integrations/pdm.md as written: its marked blocks in order (the plugin from the wheel
    folder with `pdm self add`, the whole pyproject.toml, `pdm use`, `pdm lock`, `pdm install`, an
    offline run, `pdm kernels add` of two kernels, `outdated`, `remove`). Then the package loads
    offline from the lock the pdm-backend hook embedded; a new spec is re-locked by `pdm lock`,
    downloaded by `pdm install` and not by `pdm install --dry-run` or `--skip post_install`; and
    `pdm build` artifacts carry the lock.

    The guide's environment gets the shared CPU torch (the second way of its torch step)."""
    repo = kernelhub.unique_repo("pdm")
    v1 = kernelhub.publish(
        hub.endpoint, repo, [kernelhub.universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"]
    )
    more = {}
    for name in ("kernels-community/activation", "kernels-community/layer-norm"):
        more[name] = kernelhub.unique_repo("pdm-more")
        kernelhub.publish(hub.endpoint, more[name], [kernelhub.universal_rmsnorm("0.1.0")])
    env = pdm_env(tmp_path / "pdm-config.toml", pdm_cache)
    env["PATH"] = f"{pdm_bin}{os.pathsep}{env['PATH']}"
    guide = Guide("pdm.md", tmp_path, env, {DIST: str(wheels), EXAMPLE_REPO: repo, **more})

    def uninstall_plugin(g: Guide) -> None:
        # So that the guide's `pdm self add` really installs it (from this session's wheels).
        run([str(pdm_bin / "python"), "-m", "pip", "uninstall", "-q", "-y", "pdm-kernels"])

    try:
        guide.run({"self-add": uninstall_plugin, "use": lambda g: project_venv(g.here() / ".venv")})
    except BaseException:
        install_local(pdm_bin, wheels, "kernels", "pdm-kernels")  # for the tests that follow
        raise
    project = tmp_path / "my-package"
    python = project / ".venv" / "bin" / "python"
    out = guide.outputs
    assert "kernels: downloaded 1/1 locked kernel(s)" in out["install"], out["install"]
    assert "tensor([[1.0000, 1.0000, 1.0000, 1.0000]," in out["install"], out["install"]
    assert out["more"].count("Added ") == 2 and out["more"].count("Removed ") == 2, out["more"]
    rows = [line.split()[-3:] for line in out["more"].splitlines() if line.endswith("up to date")]
    assert len(rows) == 3, out["more"]
    pyproject = project / "pyproject.toml"
    declared = guide.text(next(s.body for s in steps("pdm.md") if s.arg == "pyproject.toml"))
    assert pyproject.read_text() == declared  # add, then remove: back to the guide's file
    lock_text = (project / "kernels.lock").read_text()
    entry = lock_entry(project, repo)
    assert (
        entry["commit"] == v1
        and entry["ref"] == "v1"
        and list(json.loads(lock_text)["kernels"]) == [repo]
    )

    dist_info = installed_dist_info(python)
    assert (dist_info / "kernels.lock").read_text() == lock_text, "the build hook did not run"
    assert GUIDE_PACKAGE in (dist_info / "top_level.txt").read_text().split()
    assert load_offline(pdm, project) == "0.1.0"

    # Editing the spec: `pdm lock` re-locks that kernel.
    v2 = kernelhub.publish(
        hub.endpoint, repo, [kernelhub.universal_rmsnorm("0.2.0")], branch="v2", tags=["v0.2.0"]
    )
    line = f'"{repo}" = 1\n'
    pyproject.write_text(declared.replace(line, f'"{repo}" = 2\n'))
    out_lock = pdm("lock", cwd=project)
    assert "kernels.lock updated" in out_lock.stdout, out_lock.stdout + out_lock.stderr
    entry = lock_entry(project, repo)
    assert entry["commit"] == v2 and entry["ref"] == "v2" and entry["spec"] == {"version": 2}
    new_lock = (project / "kernels.lock").read_text()

    # --dry-run: no request at all, nothing installed or written.
    hub.reset_requests()
    dry = pdm("install", "--dry-run", cwd=project)
    assert hub.requests() == [], [r.path for r in hub.requests()]
    assert "kernels:" not in dry.stdout
    assert (dist_info / "kernels.lock").read_text() == lock_text

    # --skip post_install: no download either.
    pdm("install", "--skip", "post_install", cwd=project)
    assert hub.requests() == [], [r.path for r in hub.requests()]
    assert (dist_info / "kernels.lock").read_text() == new_lock

    done = pdm("install", cwd=project)
    assert "kernels: downloaded 1/1 locked kernel(s)" in done.stdout, done.stdout + done.stderr
    assert hub.requests()
    assert (dist_info / "kernels.lock").read_text() == new_lock
    assert load_offline(pdm, project) == "0.2.0"

    # `pdm build`: the sdist carries kernels.lock and the wheel built from it embeds it.
    pdm("build", "-d", str(tmp_path / "dist"), cwd=project)
    (sdist,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = tf.getnames()
        assert "my_package-0.1.0/kernels.lock" in names, names
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as zf:
        assert zf.read(f"{DIST_INFO}/kernels.lock").decode() == new_lock
        assert f"{DIST_INFO}/kernels.lock" in zf.read(f"{DIST_INFO}/RECORD").decode()


def test_install_refreshes_stale_lock_and_errors_are_one_line(
    pdm: Pdm, hub: HubServer, wheels: Path, tmp_path: Path
) -> None:
    """`pdm install` re-locks a stale kernels.lock before installing (`--check` refuses it); core errors
    come out as one `[KernelsError]` line with exit status 1 and leave pyproject.toml unchanged."""
    repo = kernelhub.unique_repo("pdm")
    v1 = kernelhub.publish(
        hub.endpoint, repo, [kernelhub.universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"]
    )
    project = sample_project(tmp_path / "proj", wheels, repo)
    pyproject = project / "pyproject.toml"
    python = use_venv(pdm, project)

    def one_line_error(out: subprocess.CompletedProcess[str], *needles: str) -> str:
        assert out.returncode == 1, out.stdout + out.stderr
        assert "Traceback" not in out.stderr, out.stderr
        errors = [line for line in out.stderr.splitlines() if line.startswith("[KernelsError]")]
        assert len(errors) == 1, out.stderr
        for needle in needles:
            assert needle in errors[0], errors[0]
        return errors[0]

    out = pdm("kernels", "check", cwd=project, check=False)
    one_line_error(out, "kernels.lock", "is missing", "pdm kernels lock")

    # pdm.lock without kernels.lock: `install --check` refuses, `install` locks before installing.
    pdm("lock", "--skip", "post_lock", cwd=project)
    assert not (project / "kernels.lock").exists()
    out = pdm("install", "--check", cwd=project, check=False)
    one_line_error(out, "kernels.lock", "is missing", "pdm lock")
    out = pdm("install", cwd=project)
    assert "kernels.lock is out of date" in out.stderr, out.stdout + out.stderr
    assert "kernels.lock updated" in out.stdout, out.stdout + out.stderr
    assert lock_entry(project, repo)["commit"] == v1
    dist_info = installed_dist_info(python, "pdm_kernels_example-0.1.0.dist-info")
    assert (dist_info / "kernels.lock").read_text() == (project / "kernels.lock").read_text()
    pdm("kernels", "check", cwd=project)

    # A kernel that does not exist: nothing is added, one line says why.
    before = pyproject.read_text()
    missing = kernelhub.unique_repo("missing")
    out = pdm("kernels", "add", f"{missing}@1", cwd=project, check=False)
    one_line_error(out, missing)
    assert pyproject.read_text() == before

    out = pdm("kernels", "add", f"{repo}@main", cwd=project, check=False)
    one_line_error(out, "--revision main")

    # A malformed [tool.kernels] entry: `pdm lock` fails after writing pdm.lock, naming the key.
    pyproject.write_text(before.replace(f'"{repo}" = 1', f'"{repo}" = true'))
    out = pdm("lock", cwd=project, check=False)
    one_line_error(out, "pyproject.toml", repo)

    # A stale lock: `kernels check` and `install --check` refuse it, and download keeps working.
    pyproject.write_text(before.replace(f'"{repo}" = 1', f'"{repo}" = ">=0.1,<0.2"'))
    out = pdm("kernels", "check", cwd=project, check=False)
    one_line_error(out, "out of date", repo)
    out = pdm("install", "--check", cwd=project, check=False)
    one_line_error(out, "out of date", "pdm lock")
    out = pdm("kernels", "download", cwd=project)
    assert "kernels: downloaded 1/1 locked kernel(s)" in out.stdout, out.stdout
    stale_lock = (project / "kernels.lock").read_text()
    out = pdm("sync", cwd=project)  # warns, keeps the lock, downloads what it pins
    assert "kernels.lock is out of date" in out.stderr, out.stderr
    assert "kernels: downloaded 1/1 locked kernel(s)" in out.stdout, out.stdout
    assert (project / "kernels.lock").read_text() == stale_lock
    out = pdm("kernels", "lock", "--check", cwd=project, check=False)
    one_line_error(out, "out of date")
    out = pdm("kernels", "lock", cwd=project)
    assert "kernels.lock updated" in out.stdout
    assert lock_entry(project, repo)["commit"] == v1  # v0.1.0 still satisfies: kept, spec updated
    pdm("kernels", "check", cwd=project)


SPY = """
import atexit, json, os, sys

def _report():
    mods = sorted(m for m in sys.modules if m.split(".")[0] in ("kernels", "pdm_kernels"))
    path = os.path.join(os.environ["KERNELS_TEST_SPY"], f"{os.getpid()}.json")
    with open(path, "w") as f:
        json.dump({"exe": sys.executable, "argv": sys.argv, "modules": mods}, f)

atexit.register(_report)
"""


def test_project_without_kernels_is_untouched(pdm: Pdm, pdm_bin: Path, tmp_path: Path) -> None:
    """A project without [tool.kernels]: `pdm lock` and `pdm install` import nothing of the core
    (only the plugin module), start no download and write no kernels.lock."""
    project = tmp_path / "plain"
    project.mkdir()
    (project / "pyproject.toml").write_text(
        '[project]\nname = "plain"\nversion = "0.1.0"\nrequires-python = ">=3.10"\n'
        "dependencies = []\n\n[tool.pdm]\ndistribution = false\n"
    )
    use_venv(pdm, project, torch=False)
    spy = tmp_path / "spy"
    spy.mkdir()
    (spy / "sitecustomize.py").write_text(SPY)
    reports = tmp_path / "reports"
    for args in (("lock",), ("install",)):
        reports.mkdir()
        out = pdm(
            *args, cwd=project, env={"PYTHONPATH": str(spy), "KERNELS_TEST_SPY": str(reports)}
        )
        assert "kernels" not in out.stdout, out.stdout
        seen = [json.loads(p.read_text()) for p in reports.glob("*.json")]
        (main,) = [r for r in seen if Path(r["argv"][0]).name == "pdm"]
        assert main["modules"] == ["pdm_kernels", "pdm_kernels.plugin"], main
        assert not [r for r in seen if r is not main and r["modules"]], seen
        shutil.rmtree(reports)
    assert not (project / "kernels.lock").exists()

    # Once it has [tool.kernels], the download needs `kernels` in the project's environment.
    with (project / "pyproject.toml").open("a") as f:
        f.write("\n[tool.kernels.dependencies]\n")
    (project / "kernels.lock").write_text(
        '{"hash-type": "git_lfs_concat", "kernels": {}, "lock-version": 1}\n'
    )
    out = pdm("install", cwd=project, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "has no `kernels` package" in out.stderr, out.stderr


def test_guide_says_how_to_install_a_working_pdm() -> None:
    """The PDM guide names the hishel 2 breakage and the pin the tests themselves install."""
    guide = (ROOT / "docs" / "integrations" / "pdm.md").read_text()
    assert "SyncSqliteStorage" in guide and 'hishel<2"' in guide
    assert f"`pdm=={PDM_VERSION}`" in guide
    (pin,) = [r for r in PDM_REQUIREMENTS if r.startswith("hishel")]
    assert f"`{pin}`" in guide and pin.split("==")[1].startswith("1.")
