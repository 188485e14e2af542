"""hatch-kernels: the hatchling build hook, the Hatch environment plugins, and pip over hatchling.

Tools are real: hatch 1.18.2 (with hatchling) and uv from ``tool_venv``, pip from project venvs.
hatch-kernels is installed into Hatch's own environment from this repo's wheel (what
``[tool.hatch.env] requires`` would do); isolated build environments get it, and ``kernels``, from a
folder of this repo's wheels, pinned ``==0.18.2`` (PyPI's ``kernels`` is an older release).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from envs import (
    ROOT,
    TORCH_SITE,
    UV_CACHE,
    env_without_venv,
    install_local,
    local_wheels,
    project_venv,
    run,
    tool_venv,
    uv_bin,
)
from guides import DIST, Guide
from kernelhub import publish, unique_repo, universal_rmsnorm

HATCH_VERSION = "1.18.2"
PLUGIN = ROOT / "plugins" / "hatch"
EXAMPLE = ROOT / "examples" / "projects" / "hatch"
EXAMPLE_REPO = "kernels-community/rmsnorm"
# Any JSON passes the build hook's check; the end-to-end tests use real locks.
FAKE_LOCK = '{"kernels": {}}\n'
# A pre-install command that lets an environment see the shared torch (instead of installing it).
TORCH_PTH = (
    "import pathlib, sysconfig; "
    "pathlib.Path(sysconfig.get_paths()['purelib'], '_kernels_torch_site.pth')"
    f".write_text({str(TORCH_SITE)!r})"
)


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This repo's core and plugin wheels (find-links for build environments and installers)."""
    return local_wheels(tmp_path_factory.mktemp("local-wheels"))


@pytest.fixture(scope="session")
def hatch_bin(wheels: Path) -> Path:
    """The bin folder of a venv holding hatch and this repo's hatch-kernels (not `kernels`)."""
    bin_dir = tool_venv("hatch", [f"hatch=={HATCH_VERSION}"])
    install_local(bin_dir, wheels, "hatch-kernels")
    return bin_dir


@pytest.fixture(scope="session")
def uv() -> Path:
    """The real uv."""
    return uv_bin()


def tool_env(tmp: Path, wheels: Path, hatch_bin: Path | None = None) -> dict[str, str]:
    """Environment for hatch/uv/pip: our wheels as find-links, no user configuration leaking in."""
    env = env_without_venv()
    config = tmp / "hatch-config.toml"
    config.touch()
    env.update(
        HATCH_DATA_DIR=str(tmp / "hatch-data"),
        HATCH_CACHE_DIR=str(tmp / "hatch-cache"),
        HATCH_CONFIG=str(config),
        UV_CACHE_DIR=str(UV_CACHE),
        UV_NO_CONFIG="1",
        UV_FIND_LINKS=str(wheels),
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_PROGRESS="1",
        PIP_FIND_LINKS=" ".join(filter(None, [str(wheels), os.environ.get("PIP_FIND_LINKS")])),
    )
    for key in (
        "HATCH_ENV_ACTIVE",
        "UV",
        "PDM_PROJECT_ROOT",
        "UV_PROJECT_ENVIRONMENT",
        "UV_CONFIG_FILE",
    ):
        env.pop(key, None)
    if hatch_bin is not None:
        env["PATH"] = f"{hatch_bin}{os.pathsep}{env['PATH']}"
    return env


def call(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text (the caller checks the result)."""
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def ok(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Run a command that must succeed; return stdout+stderr."""
    out = call(cmd, cwd, env)
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def small_project(
    root: Path, *, lock: str | None = FAKE_LOCK, extra: str = "", deps: bool = True
) -> Path:
    """A hatchling project ``hookdemo`` using the kernels build hook (wheel target)."""
    (root / "src" / "hookdemo").mkdir(parents=True)
    (root / "src" / "hookdemo" / "__init__.py").write_text("VALUE = 1\n")
    kernels = '[tool.kernels.dependencies]\n"kernels-test/x" = 1\n' if deps else ""
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """\
            [build-system]
            requires = ["hatchling", "hatch-kernels"]
            build-backend = "hatchling.build"

            [project]
            name = "hookdemo"
            version = "0.1.0"

            [tool.hatch.build.targets.wheel.hooks.kernels]
            """
        )
        + extra
        + kernels
    )
    if lock is not None:
        (root / "kernels.lock").write_text(lock)
    return root


def wheel_files(wheel: Path) -> dict[str, bytes]:
    """Every file of a wheel, by archive name."""
    with zipfile.ZipFile(wheel) as z:
        return {n: z.read(n) for n in z.namelist()}


def example_project(dest: Path, repo: str, installer: str = "uv") -> Path:
    """The Hatch example, pointed at ``repo`` on the test Hub, pinned to our wheels, seeing torch.

    A real project lists torch in its dependencies; here a pre-install command adds the shared
    torch to each new environment through a ``.pth`` file instead.
    """
    shutil.copytree(EXAMPLE, dest)
    for path in [dest / "pyproject.toml", *dest.rglob("*.py")]:
        text = path.read_text().replace(EXAMPLE_REPO, repo)
        text = re.sub(r'"(kernels|hatch-kernels)>=0\.18"', r'"\1==0.18.2"', text)
        path.write_text(text)
    pyproject = dest / "pyproject.toml"
    text = pyproject.read_text()
    assert '[tool.hatch.envs.default]\ninstaller = "uv"\n' in text
    text = text.replace(
        '[tool.hatch.envs.default]\ninstaller = "uv"\n',
        f'[tool.hatch.envs.default]\ninstaller = "{installer}"\n',
    )
    pyproject.write_text(
        text.replace(
            "[tool.hatch.envs.default]\n",
            f"[tool.hatch.envs.default]\npre-install-commands = [{json.dumps('python -c ' + json.dumps(TORCH_PTH))}]\n",
        )
    )
    return dest


def kernel_version_offline(python: list[str], cwd: Path, env: dict[str, str], hub) -> str:  # type: ignore[no-untyped-def]
    """Run ``python -c ...`` with HF_HUB_OFFLINE=1: import the example, check that it computes and
    made no Hub request; return the locked kernel's version."""
    code = (
        "import torch, hatch_demo, kernels; assert kernels.__version__ == '0.18.2'; "
        "y = hatch_demo.normalize(torch.full((2, 4), 3.0)); assert torch.allclose(y, torch.ones(2, 4)); "
        "print('version', hatch_demo.rmsnorm.__version__)"
    )
    hub.reset_requests()
    out = ok([*python, "-c", code], cwd, {**env, "HF_HUB_OFFLINE": "1"})
    assert hub.requests() == [], [r.path for r in hub.requests()]
    found = re.search(r"^version (\S+)$", out, re.M)
    assert found, out
    return found.group(1)


# ---- the build hook (hatchling in Hatch's venv, which has hatch-kernels and no `kernels`) -------


def test_build_hook_embeds_lock_in_wheel_and_sdist(hatch_bin, wheels, tmp_path):  # type: ignore[no-untyped-def]
    """Standard wheel: kernels.lock at the dist-info root with a RECORD row. sdist: kernels.lock at
    its root even when the sdist's file selection leaves it out, and a wheel built from that sdist
    embeds it."""
    env = tool_env(tmp_path, wheels, hatch_bin)
    assert call([str(hatch_bin / "python"), "-c", "import kernels"], tmp_path, env).returncode != 0
    sdist_hook = '[tool.hatch.build.targets.sdist]\nonly-include = ["src"]\n\n[tool.hatch.build.targets.sdist.hooks.kernels]\n\n'
    proj = small_project(tmp_path / "p", extra=sdist_hook)
    out = ok([str(hatch_bin / "hatchling"), "build", "-t", "wheel", "-t", "sdist"], proj, env)
    assert "kernels: embedded kernels.lock from" in out
    files = wheel_files(next((proj / "dist").glob("*.whl")))
    assert files["hookdemo-0.1.0.dist-info/kernels.lock"].decode() == FAKE_LOCK
    assert (
        "hookdemo-0.1.0.dist-info/kernels.lock,sha256="
        in files["hookdemo-0.1.0.dist-info/RECORD"].decode()
    )
    assert not any(n.endswith("extra_metadata/kernels.lock") for n in files)

    with tarfile.open(next((proj / "dist").glob("*.tar.gz"))) as t:
        assert "hookdemo-0.1.0/kernels.lock" in t.getnames()
        t.extractall(tmp_path / "unpacked", filter="data")
    from_sdist = tmp_path / "unpacked" / "hookdemo-0.1.0"
    ok([str(hatch_bin / "hatchling"), "build", "-t", "wheel"], from_sdist, env)
    files = wheel_files(next((from_sdist / "dist").glob("*.whl")))
    assert files["hookdemo-0.1.0.dist-info/kernels.lock"].decode() == FAKE_LOCK


@pytest.mark.parametrize(
    ("case", "lock", "extra", "deps"),
    [
        ("missing", None, "", True),
        ("invalid", "{not json", "", True),
        ("warn", None, '[tool.kernels]\nmissing-lock = "warn"\n\n', True),
        ("no-kernels", None, "", False),
    ],
    ids=["missing", "invalid", "warn", "no-kernels"],
)
def test_build_hook_lock_policy(hatch_bin, wheels, tmp_path, case, lock, extra, deps):  # type: ignore[no-untyped-def]
    """A missing or broken lock fails the build with one line; `missing-lock = "warn"` builds
    without it; a project without kernel dependencies builds as if the hook were absent."""
    proj = small_project(tmp_path / "p", lock=lock, extra=extra, deps=deps)
    out = call(
        [str(hatch_bin / "hatchling"), "build", "-t", "wheel"],
        proj,
        tool_env(tmp_path, wheels, hatch_bin),
    )
    if case in ("missing", "invalid"):
        assert out.returncode != 0
        assert "Traceback" not in out.stderr
        (line,) = [ln for ln in out.stderr.splitlines() if ln.strip()]
        fix = "is missing; run `kernels lock" if case == "missing" else "is not valid JSON"
        assert line.startswith("error: ") and fix in line, out.stderr
        return
    assert out.returncode == 0, out.stderr
    files = wheel_files(next((proj / "dist").glob("*.whl")))
    assert not any(n.endswith("kernels.lock") for n in files)
    if case == "warn":
        assert (
            "warning: " in out.stdout + out.stderr
            and "kernels.lock is missing" in out.stdout + out.stderr
        )
    else:
        assert "kernels" not in out.stdout + out.stderr


def test_environment_collector_rewrites_environments(hatch_bin, tmp_path):  # type: ignore[no-untyped-def]
    """The collector makes `virtual` environments `kernels` ones, gives other types a post-install
    download, and leaves environments that do not install the project alone."""
    code = textwrap.dedent(
        """\
        import json
        from hatch_kernels.env import KernelsEnvironment, KernelsEnvironmentCollector
        from hatch.env.virtual import VirtualEnvironment
        assert issubclass(KernelsEnvironment, VirtualEnvironment)
        config = {
            "default": {"type": "virtual"},
            "lint": {"type": "virtual", "skip-install": True},
            "hatch-build": {"type": "virtual", "builder": True},
            "conda": {"type": "conda", "post-install-commands": ["echo hi"]},
            "mine": {"type": "kernels"},
        }
        KernelsEnvironmentCollector(".", {}).finalize_environments(config)
        print(json.dumps(config))
        """
    )
    out = ok([str(hatch_bin / "python"), "-c", code], tmp_path, env_without_venv())
    config = json.loads(out.strip().splitlines()[-1])
    assert config["default"]["type"] == "kernels"
    assert config["mine"] == {"type": "kernels"}
    assert config["lint"]["type"] == "virtual" and config["hatch-build"]["type"] == "virtual"
    assert config["conda"]["type"] == "conda"
    assert config["conda"]["post-install-commands"] == [
        "echo hi",
        'python -m kernels download "{root}"',
    ]


# ---- end to end: hatch, and pip over hatchling ------------------------------------------------------


@pytest.mark.slow
def test_hatch_guide_as_written(hatch_bin, wheels, hub, tmp_path):  # type: ignore[no-untyped-def]
    """docs/integrations/hatch.md as written: its marked blocks in order, with Hatch (its own
    plugin install included) and pip finding this repo's wheels through the guide's settings; the
    default environment uses pip, the installer the example's test does not.

    Instead of the guide's torch step, a pre-install command makes the shared CPU torch visible in
    the default environment."""
    repo = unique_repo("hatch-guide")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    env = tool_env(tmp_path, wheels, hatch_bin)
    del env["PIP_FIND_LINKS"], env["UV_FIND_LINKS"]  # the guide's first block sets them

    def uninstall_plugin(g: Guide) -> None:
        # So that Hatch installs `[tool.hatch.env] requires` itself, from the guide's folder.
        ok(
            [str(hatch_bin / "python"), "-m", "pip", "uninstall", "-q", "-y", "hatch-kernels"],
            tmp_path,
            env,
        )

    def give_torch(g: Guide) -> None:
        pyproject = g.here() / "pyproject.toml"
        command = json.dumps("python -c " + json.dumps(TORCH_PTH))
        pyproject.write_text(
            pyproject.read_text()
            + f"\n[tool.hatch.envs.default]\npre-install-commands = [{command}]\n"
        )

    def publish_newer(g: Guide) -> None:
        publish(hub.endpoint, repo, [universal_rmsnorm("0.2.0")], branch="v1", tags=["v0.2.0"])

    guide = Guide("hatch.md", tmp_path, env, {DIST: str(wheels), EXAMPLE_REPO: repo})
    try:
        guide.run({"lock": uninstall_plugin, "create": give_torch, "upgrade": publish_newer})
    except BaseException:
        install_local(hatch_bin, wheels, "hatch-kernels")  # for the tests that follow
        raise
    out = guide.outputs
    assert "wrote" in out["lock"] and "downloaded 1/1" in out["create"], out
    assert "tensor([[1.0000, 1.0000, 1.0000, 1.0000]," in out["create"], out["create"]
    assert re.search(rf"^{re.escape(repo)}\s.*\soutdated$", out["upgrade"], re.M), out["upgrade"]
    assert "downloaded 1/1" in out["upgrade"], out["upgrade"]
    proj = tmp_path / "my-package"
    lock = (proj / "kernels.lock").read_text()
    assert json.loads(lock)["kernels"][repo]["ref"] == "v1"
    files = wheel_files(next((proj / "dist").glob("*.whl")))
    assert files["my_package-0.1.0.dist-info/kernels.lock"].decode() == lock
    with tarfile.open(next((proj / "dist").glob("*.tar.gz"))) as t:
        assert "my_package-0.1.0/kernels.lock" in t.getnames()


@pytest.mark.slow
def test_hatch_env_create_then_run_offline(hatch_bin, wheels, hub, tmp_path):  # type: ignore[no-untyped-def]
    """The example project with the `uv` installer (the guide's test covers pip):
    `hatch run kernels:lock`, `hatch env create` (downloads), `hatch run python` loads the locked
    kernel offline; an edited kernels.lock re-embeds and re-downloads on the next `hatch run`;
    `hatch build` wheels carry the lock."""
    installer = "uv"
    repo = unique_repo("hatch-env")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    proj = example_project(tmp_path / "proj", repo, installer)
    env = tool_env(tmp_path, wheels, hatch_bin)
    hatch = str(hatch_bin / "hatch")

    # The `kernels` env skips installing the project, so locking works before any lock exists.
    assert "wrote" in ok([hatch, "run", "kernels:lock"], proj, env)
    lock_v1 = (proj / "kernels.lock").read_text()

    out = ok([hatch, "env", "create"], proj, env)
    assert "downloaded 1/1" in out
    python = Path(ok([hatch, "env", "find"], proj, env).strip()) / "bin" / "python"
    assert "/env/kernels/" in str(python)  # the collector switched the default env to our type
    info = next(python.parent.parent.glob("lib/python3*/site-packages/hatch_demo-0.1.0.dist-info"))
    assert (info / "kernels.lock").read_text() == lock_v1
    assert (info / "top_level.txt").read_text().split() == ["hatch_demo"]  # editable wheel
    assert kernel_version_offline([hatch, "run", "python"], proj, env, hub) == "0.1.0"

    # `hatch run kernels ...` also works in the default env, and the lock is current.
    assert "is up to date" in ok([hatch, "run", "kernels", "check"], proj, env)

    # Lock a newer build: the next `hatch run` reinstalls the project and downloads it.
    publish(hub.endpoint, repo, [universal_rmsnorm("0.2.0")], branch="v1", tags=["v0.2.0"])
    ok([hatch, "run", "kernels:lock", "--upgrade"], proj, env)
    lock_v2 = (proj / "kernels.lock").read_text()
    assert lock_v2 != lock_v1
    out = ok(
        [hatch, "run", "python", "-c", "import hatch_demo; print(hatch_demo.rmsnorm.__version__)"],
        proj,
        env,
    )
    assert "downloaded 1/1" in out and "0.2.0" in out.splitlines()
    assert (info / "kernels.lock").read_text() == lock_v2
    # ... and only once.
    assert kernel_version_offline([hatch, "run", "python"], proj, env, hub) == "0.2.0"

    ok([hatch, "build", "-t", "wheel"], proj, env)
    files = wheel_files(next((proj / "dist").glob("*.whl")))
    assert files["hatch_demo-0.1.0.dist-info/kernels.lock"].decode() == lock_v2


@pytest.mark.slow
def test_hatch_env_without_kernels_is_one_clear_error(hatch_bin, wheels, tmp_path):  # type: ignore[no-untyped-def]
    """A project that declares kernels but forgot `kernels` in its dependencies gets one line
    naming the fix from `hatch env create`, not a traceback from inside the environment."""
    proj = example_project(tmp_path / "proj", "kernels-test/unused")
    pyproject = proj / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text().replace('dependencies = ["kernels==0.18.2"]', "dependencies = []", 1)
    )
    (proj / "kernels.lock").write_text(FAKE_LOCK)
    out = call(
        [str(hatch_bin / "hatch"), "env", "create"], proj, tool_env(tmp_path, wheels, hatch_bin)
    )
    assert out.returncode != 0
    assert (
        "has no kernels>=0.18" in out.stdout + out.stderr
        and "add kernels>=0.18" in out.stdout + out.stderr
    )
    assert "Traceback" not in out.stdout + out.stderr


@pytest.mark.slow
def test_pip_install_editable_and_regular(wheels, hub, tmp_path):  # type: ignore[no-untyped-def]
    """pip with build isolation (hatchling + hatch-kernels from our wheels): editable and regular
    installs carry the lock, and the package loads its kernel offline after `kernels download`."""
    repo = unique_repo("hatch-pip")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    proj = example_project(tmp_path / "proj", repo)
    python = project_venv(tmp_path / "venv")
    env = tool_env(tmp_path, wheels)
    pip = [str(python), "-m", "pip", "install", "-q"]
    ok([*pip, "kernels==0.18.2"], tmp_path, env)
    ok([str(python), "-m", "kernels", "lock", str(proj)], tmp_path, env)
    lock = (proj / "kernels.lock").read_text()
    ok([str(python), "-m", "kernels", "download", str(proj)], tmp_path, env)

    site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    for editable in (True, False):
        ok(
            [*pip, "--no-deps", "--force-reinstall", *(["-e"] if editable else []), str(proj)],
            tmp_path,
            env,
        )
        info = site / "hatch_demo-0.1.0.dist-info"
        assert (info / "kernels.lock").read_text() == lock
        direct = json.loads((info / "direct_url.json").read_text())
        assert bool(direct.get("dir_info", {}).get("editable")) is editable
        assert kernel_version_offline([str(python)], tmp_path, env, hub) == "0.1.0"
