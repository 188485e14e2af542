"""Environments for end-to-end tests: real tools installed once, sample-project venvs sharing torch.

- :func:`tool_venv` installs a tool (pdm, poetry, hatch, uv, ...) into ``.cache/tools/<name>-<hash>``
  once per set of requirements; :func:`install_local` puts this repo's core/plugins into it.
- :func:`project_venv` makes a fresh venv whose interpreter sees the one shared torch install
  (``.cache/torch-site``, through a ``.pth`` file) so no test downloads torch.
- :func:`local_wheels` builds this repo's core and plugin wheels into one folder, once for a given
  state of their sources (``.cache/local-wheels/<hash>``, shared by parallel workers and later runs),
  for build environments and installers that resolve from an index: point them at it (find-links)
  and pin ``kernels==<our version>``, then check that ours ran.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from filelock import FileLock

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"
TORCH_SITE = CACHE / "torch-site"
BASE_PYTHON = getattr(sys, "_base_executable", sys.executable)
CORE_VERSION = "0.18.2"


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a command, capture text output, raise with its output when it fails."""
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if out.returncode != 0:
        raise AssertionError(f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out  # type: ignore[no-any-return]


def _purelib(python: Path) -> Path:
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    return Path(run([str(python), "-c", code]).stdout.strip())


def share_torch(python: Path) -> None:
    """Make the shared torch install importable from the venv of ``python``."""
    assert (TORCH_SITE / "torch").is_dir(), "run scripts/bootstrap.sh first (it installs torch)"
    (_purelib(python) / "_kernels_torch_site.pth").write_text(str(TORCH_SITE) + "\n")


def project_venv(path: Path, *, torch: bool = True) -> Path:
    """Create a venv at ``path`` (base interpreter of this one); return its python."""
    run([BASE_PYTHON, "-m", "venv", str(path)])
    python = path / "bin" / "python"
    if torch:
        share_torch(python)
    return python


UV_VERSION = "0.13.8"
UV_CACHE = CACHE / "uv-cache"


def tool_venv(name: str, requirements: list[str]) -> Path:
    """A venv holding ``requirements`` (from the index), made once and reused; returns its bin dir.

    uv itself is installed with pip; every other tool with that uv (``uv pip``, several times
    faster than pip on a clean clone), into a venv seeded with pip for :func:`install_local`.
    """
    key = hashlib.sha256("\n".join([BASE_PYTHON, *requirements]).encode()).hexdigest()[:12]
    venv = CACHE / "tools" / f"{name}-{key}"
    (CACHE / "tools").mkdir(parents=True, exist_ok=True)
    with FileLock(str(venv) + ".lock"):
        if not (venv / ".complete").exists():
            python = str(venv / "bin" / "python")
            if requirements == [f"uv=={UV_VERSION}"]:
                run([BASE_PYTHON, "-m", "venv", "--clear", str(venv)])
                run([python, "-m", "pip", "install", "-q", *requirements])
            else:
                uv, env = str(uv_bin()), uv_env()
                run(
                    [uv, "venv", "-q", "--clear", "--seed", "--python", BASE_PYTHON, str(venv)],
                    env=env,
                )
                run([uv, "pip", "install", "-q", "--python", python, *requirements], env=env)
            (venv / ".complete").write_text("ok")
    return venv / "bin"


def uv_bin() -> Path:
    """The uv the tests use (``UV_VERSION``), installed once into ``.cache/tools``."""
    return tool_venv("uv", [f"uv=={UV_VERSION}"]) / "uv"


def uv_env() -> dict[str, str]:
    """The environment for this repo's own uv calls: its cache, no user configuration."""
    env = env_without_venv()
    for key in ("PROJECT_ENVIRONMENT", "INDEX_URL", "EXTRA_INDEX_URL", "CONFIG_FILE", "FIND_LINKS"):
        env.pop(f"UV_{key}", None)
    env.update(
        UV_CACHE_DIR=str(UV_CACHE),
        UV_NO_CONFIG="1",
        UV_NO_PROGRESS="1",
        UV_PYTHON_DOWNLOADS="never",
    )
    return env


_session_wheels: dict[str, Path] = {}


def distributions() -> list[Path]:
    """The folders of this repository's distributions: the core, kernels-lockembed and the plugins."""
    return [ROOT / "core", *sorted(p.parent for p in (ROOT / "plugins").glob("**/pyproject.toml"))]


_SKIP_DIRS = {"__pycache__", ".venv", "dist", "build", ".mypy_cache", ".ruff_cache"}


def sources_hash(folders: list[Path]) -> str:
    """A hash of every file under ``folders`` (paths and bytes; build outputs left out)."""
    h = hashlib.sha256()
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = sorted(
                d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info")
            )
            for name in sorted(filenames):
                path = Path(dirpath) / name
                h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def local_wheels(dest: Path) -> Path:
    """A folder with a wheel of each of this repo's distributions, built from the current sources.

    Built once per state of the sources into ``.cache/local-wheels/<hash>`` (under a file lock, so
    parallel workers build it once) and copied to ``dest``; the first ``dest`` of the session is
    returned to every later caller.
    """
    if "dir" in _session_wheels:
        return _session_wheels["dir"]
    projects = distributions()
    built = CACHE / "local-wheels" / sources_hash(projects)
    built.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(built) + ".lock"):
        if not (built / ".complete").exists():
            shutil.rmtree(built, ignore_errors=True)
            # ``scripts/wheels.sh``: the command the guides give users.
            env = {**os.environ, "KERNELS_PYTHON": sys.executable}
            run(["bash", str(ROOT / "scripts" / "wheels.sh"), str(built)], env=env)
            (built / ".complete").write_text("ok")
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in built.glob("*.whl"):
        shutil.copy2(wheel, dest)
    _session_wheels["dir"] = dest
    return dest


def install_local(bin_dir: Path, wheels: Path, *names: str) -> None:
    """(Re)install this repo's distributions ``names`` from ``wheels`` into a tool venv, no deps
    from the index beyond what they declare. kernels-lockembed, which every one of them depends on,
    is reinstalled too (a tool venv outlives the session, and its version number does not change)."""
    python = bin_dir / "python"
    names = tuple(dict.fromkeys([*names, "kernels-lockembed"]))
    # Ours from the wheels (reinstalled: the version number stays while the code changes), pinned
    # so that PyPI's older `kernels` is never picked; their other dependencies from the index.
    reinstall = [arg for name in names for arg in ("--reinstall-package", name)]
    pinned = [f"{name}=={CORE_VERSION}" for name in names]
    cmd = [str(uv_bin()), "pip", "install", "-q", "--python", str(python), "--find-links"]
    run([*cmd, str(wheels), *reinstall, *pinned], env=uv_env())


def env_without_venv() -> dict[str, str]:
    """os.environ minus VIRTUAL_ENV and with this venv's bin dropped from PATH (tools pick their own)."""
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    venv_bin = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    return env


__all__ = [
    "BASE_PYTHON",
    "CORE_VERSION",
    "ROOT",
    "TORCH_SITE",
    "UV_CACHE",
    "UV_VERSION",
    "distributions",
    "env_without_venv",
    "install_local",
    "local_wheels",
    "project_venv",
    "run",
    "share_torch",
    "sysconfig",
    "tool_venv",
    "uv_bin",
    "uv_env",
]
