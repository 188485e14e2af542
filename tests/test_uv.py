"""uv end to end: `uv sync` embeds kernels.lock through the project's build backend, `uv run kernels
download` fills the cache in the project environment, and the package loads its kernel offline.

Each backend (hatchling + hatch-kernels, setuptools + kernels, pdm-backend + pdm-kernels,
poetry-kernels-backend) is driven by the real uv. Build environments resolve from PyPI plus a folder
of this repo's wheels (``UV_FIND_LINKS``); build requirements pin ``==0.18.2`` so that it is ours that
runs (the ``kernels`` on PyPI is 0.17.2). Project environments are venvs made by ``uv venv`` plus ``share_torch`` (they
see the shared torch through a ``.pth`` file); uv syncs into them and never resolves torch.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest
from envs import (
    BASE_PYTHON,
    ROOT,
    local_wheels,
    run,
    share_torch,
    uv_bin,
)
from envs import uv_env as envs_uv_env
from guides import DIST, Guide
from kernelhub import publish, unique_repo, universal_rmsnorm

EXAMPLES = ROOT / "examples" / "projects"
EXAMPLE_REPO = "kernels-community/rmsnorm"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def uv() -> Path:
    """The real uv, installed once into .cache/tools."""
    return uv_bin()


@pytest.fixture(scope="session")
def find_links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder with this repo's wheels: core, kernels-lockembed, plugins, the Poetry wrapper."""
    return local_wheels(tmp_path_factory.mktemp("local-wheels"))


def uv_env(find_links: Path, **extra: str) -> dict[str, str]:
    """The environment uv runs in: shared cache, our wheels, no user configuration."""
    return {**envs_uv_env(), "UV_FIND_LINKS": str(find_links), **extra}


def package_code(module: str, repo: str) -> str:
    """A package that loads ``repo`` from its embedded lock at import time."""
    return textwrap.dedent(
        f"""\
        import torch

        from kernels import load_kernel

        rmsnorm = load_kernel({repo!r})


        def normalize(x: torch.Tensor) -> torch.Tensor:
            return rmsnorm.rms_norm(x, torch.ones(x.shape[-1], dtype=x.dtype))
        """
    )


CACHE_KEYS = '[tool.uv]\ncache-keys = [{ file = "pyproject.toml" }, { file = "kernels.lock" }]\n'


def pin_ours(text: str, repo: str) -> str:
    """Point an example's pyproject at the test repo and pin this repo's distributions."""
    text = text.replace(EXAMPLE_REPO, repo)
    return re.sub(
        r'"(kernels|hatch-kernels|pdm-kernels|poetry-kernels-backend)>=0\.18"',
        r'"\1==0.18.2"',
        text,
    )


def make_project(backend: str, dest: Path, repo: str) -> tuple[Path, str, str]:
    """A sample project built by ``backend``; returns (root, distribution name, import name)."""
    if backend in ("hatchling", "setuptools"):
        example = EXAMPLES / ("uv" if backend == "hatchling" else "setuptools")
        shutil.copytree(example, dest, ignore=shutil.ignore_patterns(".venv", "dist", "*.egg-info"))
        for path in [dest / "pyproject.toml", *dest.rglob("*.py")]:
            path.write_text(pin_ours(path.read_text(), repo))
        module = "uv_demo" if backend == "hatchling" else "setuptools_demo"
        return dest, module.replace("_", "-"), module
    module = {"pdm-backend": "pdmb_demo", "poetry": "poetryb_demo"}[backend]
    build_system = {
        "pdm-backend": 'requires = ["pdm-backend>=2.4", "pdm-kernels==0.18.2"]\n'
        'build-backend = "pdm.backend"\n',
        "poetry": 'requires = ["poetry-kernels-backend==0.18.2"]\n'
        'build-backend = "poetry_kernels_backend"\n',
    }[backend]
    (dest / "src" / module).mkdir(parents=True)
    (dest / "src" / module / "__init__.py").write_text(package_code(module, repo))
    (dest / "pyproject.toml").write_text(
        f"[build-system]\n{build_system}\n"
        f'[project]\nname = "{module.replace("_", "-")}"\nversion = "0.1.0"\n'
        'requires-python = ">=3.10"\ndependencies = ["kernels==0.18.2"]\n\n'
        f'[tool.kernels.dependencies]\n"{repo}" = 1\n\n' + CACHE_KEYS
    )
    return dest, module.replace("_", "-"), module


def make_venv(uv: Path, venv: Path, *, torch: bool = True) -> None:
    """The project's venv, made before `uv sync` so that it can see the shared torch.

    ``uv venv`` (fast, no pip) with this interpreter's base Python; ``share_torch`` adds the ``.pth``
    file, which `uv sync` leaves alone (it removes only distributions it does not want).
    """
    run([str(uv), "venv", "-q", "--python", BASE_PYTHON, str(venv)], env=uv_env(Path(".")))
    if torch:
        share_torch(venv / "bin" / "python")


def site_packages(venv: Path) -> Path:
    """The purelib folder of a project venv."""
    return next((venv / "lib").glob("python3*/site-packages"))


def installed_lock(venv: Path, dist: str) -> str:
    """The kernels.lock embedded in the installed dist-info of ``dist``."""
    infos = list(site_packages(venv).glob(f"{dist.replace('-', '_')}-*.dist-info"))
    assert len(infos) == 1, infos
    lock = infos[0] / "kernels.lock"
    assert lock.is_file(), (
        f"{infos[0]} has no kernels.lock: {sorted(p.name for p in infos[0].iterdir())}"
    )
    return lock.read_text()


def is_editable(venv: Path, dist: str) -> bool:
    """Whether uv installed ``dist`` editable (its direct_url.json says so)."""
    info = next(site_packages(venv).glob(f"{dist.replace('-', '_')}-*.dist-info"))
    data = json.loads((info / "direct_url.json").read_text())
    return bool(data.get("dir_info", {}).get("editable"))


def uvx(uv: Path, args: list[str], proj: Path, env: dict[str, str]) -> str:
    """Run ``uv ARGS`` in ``proj``; return stdout+stderr, failing the test with them on error."""
    out = subprocess.run([str(uv), *args], cwd=proj, env=env, capture_output=True, text=True)
    assert out.returncode == 0, (
        f"uv {' '.join(args)} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    )
    return out.stdout + out.stderr


def load_offline(uv: Path, proj: Path, env: dict[str, str], module: str, hub) -> str:  # type: ignore[no-untyped-def]
    """Import the package with HF_HUB_OFFLINE=1 through ``uv run``; return the kernel version.

    Also checks that the import made no request to the Hub and that the kernel computes.
    """
    code = (
        f"import torch, {module}, kernels; assert kernels.__version__ == '0.18.2'; "
        f"y = {module}.normalize(torch.full((2, 4), 3.0)); "
        "assert torch.allclose(y, torch.ones(2, 4)), y; "
        f"print('version', {module}.rmsnorm.__version__)"
    )
    hub.reset_requests()
    out = uvx(uv, ["run", "python", "-c", code], proj, {**env, "HF_HUB_OFFLINE": "1"})
    assert hub.requests() == [], [r.path for r in hub.requests()]
    found = re.search(r"^version (\S+)$", out, re.M)
    assert found, out
    return found.group(1)


def archive_names(path: Path) -> list[str]:
    """File names inside a wheel or an sdist."""
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as z:
            return z.namelist()
    with tarfile.open(path) as t:
        return t.getnames()


# hatchling, the backend of the guide, is covered by test_uv_guide_as_written.
BACKENDS = ["setuptools", "pdm-backend", "poetry"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_uv_sync_run_and_build(backend, uv, find_links, hub, tmp_path):  # type: ignore[no-untyped-def]
    """The whole uv workflow for one build backend (editable, lock edit, regular, `uv build`)."""
    repo = unique_repo(f"uv-{backend}")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    proj, dist, module = make_project(backend, tmp_path / "proj", repo)
    venv = proj / ".venv"
    make_venv(uv, venv)
    env = uv_env(find_links)

    # Locking needs `kernels` but not the project (which cannot build before its lock exists).
    uvx(uv, ["sync", "--no-install-project"], proj, env)
    out = uvx(uv, ["run", "--no-sync", "kernels", "lock"], proj, env)
    assert "wrote" in out
    lock_v1 = (proj / "kernels.lock").read_text()

    # `uv sync` installs the project editable through its backend, which embeds the lock.
    out = uvx(uv, ["sync", "-v"], proj, env)
    if backend == "setuptools":  # our egg_info writer (PyPI's kernels 0.17.2 would be silent)
        assert "kernels: embedded kernels.lock from" in out
    assert is_editable(venv, dist)
    assert installed_lock(venv, dist) == lock_v1
    out = uvx(uv, ["run", "kernels", "download"], proj, env)
    assert "downloaded 1/1" in out
    assert load_offline(uv, proj, env, module, hub) == "0.1.0"

    # An edited kernels.lock (pyproject.toml untouched) reaches the package on the next `uv sync`
    # because kernels.lock is one of the project's cache-keys.
    # The guide's upgrade: `uv run` syncs before it runs, so the download sees the new lock.
    publish(hub.endpoint, repo, [universal_rmsnorm("0.2.0")], branch="v1", tags=["v0.2.0"])
    uvx(uv, ["run", "kernels", "lock", "--upgrade"], proj, env)
    lock_v2 = (proj / "kernels.lock").read_text()
    assert lock_v2 != lock_v1
    assert "downloaded 1/1" in uvx(uv, ["run", "kernels", "download"], proj, env)
    # Loading is the same for every backend once the lock is in the dist-info (the guide's test
    # loads the upgraded kernel with hatchling): here it stops at the metadata (time).
    assert installed_lock(venv, dist) == lock_v2

    # A regular (non-editable) install carries the lock in its dist-info too.
    uvx(uv, ["sync", "--no-editable"], proj, env)
    assert not is_editable(venv, dist)
    assert installed_lock(venv, dist) == lock_v2

    # `uv build`: the sdist carries kernels.lock, and the wheel built from that sdist embeds it.
    out = uvx(uv, ["build", "-o", str(tmp_path / "dist")], proj, env)
    if backend == "setuptools":
        assert "kernels: embedded kernels.lock from" in out
    sdist = next((tmp_path / "dist").glob("*.tar.gz"))
    wheel = next((tmp_path / "dist").glob("*.whl"))
    assert any(n.count("/") == 1 and n.endswith("/kernels.lock") for n in archive_names(sdist))
    with zipfile.ZipFile(wheel) as z:
        (name,) = [n for n in z.namelist() if n.endswith(".dist-info/kernels.lock")]
        assert name.count("/") == 1  # at the dist-info root, where the lookup reads it
        assert z.read(name).decode() == lock_v2
        record = z.read(name.replace("kernels.lock", "RECORD")).decode()
        assert f"{name},sha256=" in record


def test_uv_guide_as_written(uv, find_links, hub, tmp_path):  # type: ignore[no-untyped-def]
    """docs/integrations/uv.md as a new user follows it: its marked blocks, in order, with uv finding
    this repo's wheels through the guide's own setting; then a regular install and the built wheel.

    The project's environment gets the shared CPU torch (``make_venv``) instead of the guide's
    PyTorch-index step, which would download torch."""
    repo = unique_repo("uv-guide")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    env = uv_env(find_links)
    del env["UV_FIND_LINKS"]  # the guide's first block sets it
    env["PATH"] = f"{uv.parent}:{env['PATH']}"

    def publish_newer(guide: Guide) -> None:
        publish(hub.endpoint, repo, [universal_rmsnorm("0.2.0")], branch="v1", tags=["v0.2.0"])

    guide = Guide("uv.md", tmp_path, env, {DIST: str(find_links), EXAMPLE_REPO: repo})
    guide.run({"add": lambda g: make_venv(uv, g.here() / ".venv"), "upgrade": publish_newer})
    out = guide.outputs
    assert "rmsnorm 0.1.0: tensor([[1.0000, 1.0000, 1.0000, 1.0000]," in out["install"]
    assert re.search(rf"^{re.escape(repo)}\s.*\soutdated$", out["upgrade"], re.M), out["upgrade"]
    assert "rmsnorm 0.2.0:" in out["upgrade"]

    proj = tmp_path / "my-package"
    venv = proj / ".venv"
    lock = (proj / "kernels.lock").read_text()
    assert installed_lock(venv, "my-package") == lock and is_editable(venv, "my-package")
    # A regular (non-editable) install carries the lock in its dist-info too.
    uvx(uv, ["sync", "--no-editable"], proj, uv_env(find_links))
    assert not is_editable(venv, "my-package") and installed_lock(venv, "my-package") == lock
    sdist = next((proj / "dist").glob("*.tar.gz"))
    assert "my_package-0.1.0/kernels.lock" in archive_names(sdist)
    with zipfile.ZipFile(next((proj / "dist").glob("*.whl"))) as z:
        assert z.read("my_package-0.1.0.dist-info/kernels.lock").decode() == lock

    # Installed but not downloaded (an empty cache): one line naming uv's command, no traceback.
    empty = {**uv_env(find_links), "HF_HUB_CACHE": str(tmp_path / "empty-cache")}
    failed = subprocess.run(
        [str(uv), "run", "--no-sync", "my-package"],
        cwd=proj,
        env=empty,
        capture_output=True,
        text=True,
    )
    assert failed.returncode == 1 and "Traceback" not in failed.stderr, failed.stderr
    (line,) = [ln for ln in failed.stderr.splitlines() if ln.startswith("NotInCacheError: ")]
    assert "run `uv run kernels download`" in line and line.endswith("__init__.py:5)"), line


def test_uv_sync_without_cache_keys_keeps_a_stale_lock(uv, find_links, hub, tmp_path):  # type: ignore[no-untyped-def]
    """Why the guide asks for `cache-keys`: without kernels.lock there, uv does not rebuild."""
    repo = unique_repo("uv-nokeys")
    publish(hub.endpoint, repo, [universal_rmsnorm("0.1.0")], branch="v1", tags=["v0.1.0"])
    proj, dist, _ = make_project("hatchling", tmp_path / "proj", repo)
    pyproject = proj / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().split("[tool.uv]")[0])
    assert "cache-keys" not in pyproject.read_text()
    make_venv(uv, proj / ".venv", torch=False)
    env = uv_env(find_links)
    # The guide's other way to write the first lock: `kernels` in a throwaway tool environment.
    tool_env = {**env, "UV_TOOL_DIR": str(tmp_path / "uv-tools")}
    out = uvx(uv, ["tool", "run", "--from", "kernels==0.18.2", "kernels", "lock"], proj, tool_env)
    assert "wrote" in out
    uvx(uv, ["sync"], proj, env)
    lock_v1 = (proj / "kernels.lock").read_text()
    assert installed_lock(proj / ".venv", dist) == lock_v1
    publish(hub.endpoint, repo, [universal_rmsnorm("0.2.0")], branch="v1", tags=["v0.2.0"])
    uvx(uv, ["run", "--no-sync", "kernels", "lock", "--upgrade"], proj, env)
    assert (proj / "kernels.lock").read_text() != lock_v1
    uvx(uv, ["sync"], proj, env)
    assert installed_lock(proj / ".venv", dist) == lock_v1  # stale: uv saw nothing change


def test_uv_sync_missing_lock_is_one_clear_error(uv, find_links, tmp_path):  # type: ignore[no-untyped-def]
    """A project with kernel dependencies and no lock fails `uv sync` naming the fix."""
    proj, _, _ = make_project("hatchling", tmp_path / "proj", "kernels-test/never-locked")
    make_venv(uv, proj / ".venv", torch=False)
    out = subprocess.run(
        [str(uv), "sync"], cwd=proj, env=uv_env(find_links), capture_output=True, text=True
    )
    assert out.returncode != 0
    # uv runs the build with `UV` set: the fix named is uv's (the project cannot be synced yet).
    # uv wraps the backend's output to its width: compare with the white space folded.
    fix = "run `uv sync --no-install-project && uv run --no-sync kernels lock` and commit"
    assert f"kernels.lock is missing; {fix}" in " ".join(out.stderr.split()), out.stderr
    assert "Traceback" not in out.stderr


def test_uv_guide_commands_match_the_example() -> None:
    """The uv guide shows the example's pyproject settings that the tests above rely on."""
    guide = (ROOT / "docs" / "integrations" / "uv.md").read_text()
    example = (EXAMPLES / "uv" / "pyproject.toml").read_text()
    assert 'cache-keys = [{ file = "pyproject.toml" }, { file = "kernels.lock" }]' in example
    assert 'cache-keys = [{ file = "pyproject.toml" }, { file = "kernels.lock" }]' in guide
    for command in (
        "uv sync --no-install-project",
        "uv run --no-sync kernels lock",
        "uv run kernels download",
    ):
        assert command in guide, command


def test_compatibility_table_names_tests_that_exist() -> None:
    """Every test a cell of docs/compatibility.md names exists (and so does its parameter)."""
    page = (ROOT / "docs" / "compatibility.md").read_text()
    refs = re.findall(r"`(tests/\w+\.py)::(\w+)`(?: `\[([\w-]+)\]`)?", page)
    assert len(refs) >= 30
    for file, test, param in refs:
        source = (ROOT / file).read_text()
        assert re.search(rf"^(?:async )?def {test}\(", source, flags=re.M), (
            f"{file}::{test} does not exist"
        )
        if param and file == "tests/test_uv.py":
            assert param in BACKENDS, param
        elif param:
            assert re.search(rf"\b{param}\b", source), f"{file}::{test}[{param}]"
