"""What the plugin does to a Poetry project, shared by its commands and its event listeners.

Everything kernel-specific is the ``kernels`` core's job (locking, staleness, downloading); this
module only finds Poetry's pieces (project root, target environment, the root package's installed
dist-info) and reports through cleo's IO. ``kernels`` modules are imported inside functions so that
loading the plugin stays cheap for commands that never need them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from kernels_lockembed import LOCK_NAME, add_to_dist_info

if TYPE_CHECKING:
    from cleo.io.io import IO
    from kernels.project import LockResult
    from poetry.poetry import Poetry
    from poetry.utils.env import Env

BACKEND = "poetry_kernels_backend"


class PluginError(Exception):
    """A failure the plugin reports as one line (``str`` is the message) and a non-zero exit."""


def one_line(message: object) -> str:
    """``message`` folded onto one line (core messages may list failures on indented lines)."""
    return " ".join(part.strip() for part in str(message).splitlines() if part.strip())


def report_error(io: IO, message: object) -> None:
    """Write ``message`` to stderr as Poetry-styled one-line error."""
    io.write_error_line(f"<error>Error: {one_line(message)}</error>")


def project_root(poetry: Poetry) -> Path:
    """The folder holding the project's ``pyproject.toml``."""
    return poetry.pyproject_path.parent


def uses_kernels(poetry: Poetry) -> bool:
    """True when the project has a ``[tool.kernels]`` table or a ``kernels.lock``.

    Projects without either are left alone, so the plugin costs nothing there.
    """
    tool = poetry.pyproject.data.get("tool", {})
    return "kernels" in tool or (project_root(poetry) / LOCK_NAME).exists()


def stale_reasons(root: Path) -> list[str]:
    """Why ``kernels.lock`` does not match ``[tool.kernels.dependencies]`` (offline; empty = fresh)."""
    from kernels.project import stale_reasons as core_stale_reasons

    reasons: list[str] = core_stale_reasons(root)
    return reasons


def has_dependencies(root: Path) -> bool:
    """True when ``[tool.kernels.dependencies]`` names at least one kernel."""
    from kernels.config import read_config

    return bool(read_config(root).dependencies)


def lock_summary(result: LockResult) -> str:
    """One line saying what a lock run did."""
    state = "Wrote" if result.written else "Unchanged"
    return (
        f"{state} <c1>{LOCK_NAME}</c1>: {len(result.lock.kernels)} kernel(s) "
        f"({len(result.updated)} resolved, {len(result.kept)} kept, {len(result.removed)} removed)"
    )


def lock(root: Path, io: IO, *, upgrade: bool | list[str] = False) -> LockResult:
    """Resolve the kernel dependencies and write ``kernels.lock`` (the core keeps fresh entries)."""
    from kernels.project import lock_project

    result = lock_project(root, upgrade=upgrade)
    io.write_line(lock_summary(result))
    return result


def _editable_root(direct_url: str | None) -> Path | None:
    if not direct_url:
        return None
    try:
        data: dict[str, Any] = json.loads(direct_url)
    except ValueError:
        return None
    url = urlparse(str(data.get("url", "")))
    if not data.get("dir_info", {}).get("editable") or url.scheme != "file":
        return None
    return Path(unquote(url.path)).resolve()


def installed_dist_info(poetry: Poetry, env: Env) -> Path | None:
    """The dist-info of this project's editable install in ``env``, or None when not installed.

    Only an editable install of this very folder counts: a wheel installed from elsewhere carries
    its own lock and is left untouched.
    """
    root = project_root(poetry).resolve()
    try:
        dists = list(env.site_packages.distributions(name=poetry.package.name, writable_only=True))
    except Exception:
        return None
    for dist in dists:
        if _editable_root(dist.read_text("direct_url.json")) != root:
            continue
        # importlib.metadata.PathDistribution keeps its folder in _path (Poetry relies on it too).
        path = getattr(dist, "_path", None)
        if path is not None and Path(path).is_dir():
            return Path(path)
    return None


def embed_lock(poetry: Poetry, env: Env, io: IO) -> bool:
    """Copy ``kernels.lock`` (and ``top_level.txt``) into the installed root package's dist-info.

    ``poetry install`` writes the root package's editable install itself without calling a build
    backend, so no build hook can do this. Returns True when the files were written.
    """
    lock_file = project_root(poetry) / LOCK_NAME
    if not lock_file.is_file():
        return False
    dist_info = installed_dist_info(poetry, env)
    if dist_info is None:
        return False
    from poetry_kernels_backend import top_level_names

    add_to_dist_info(dist_info, lock_file.read_text(encoding="utf-8"), top_level_names(poetry))
    if io.is_verbose():
        io.write_line(f"Embedded <c1>{LOCK_NAME}</c1> in <b>{dist_info}</b>")
    return True


def _kernels_version(python: Path) -> str | None:
    code = "import kernels; print(kernels.__version__)"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def _download_failure(python: Path, proc: subprocess.CompletedProcess[str]) -> str:
    out = f"{proc.stderr}\n{proc.stdout}"
    if "No module named kernels" in out:
        return (
            f"the project environment ({python}) has no `kernels` package, which downloads and "
            "loads locked kernels; add it to the project's dependencies and run `poetry install`"
        )
    errors = [line[len("error: ") :] for line in out.splitlines() if line.startswith("error: ")]
    if errors:
        return "; ".join(errors)
    version = _kernels_version(python)
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    last = lines[-1] if lines else f"exit code {proc.returncode}"
    if version is not None:
        from packaging.version import InvalidVersion, Version

        try:
            too_old = Version(version) < Version("0.18")
        except InvalidVersion:
            too_old = False
        if too_old:
            return (
                f"the project environment ({python}) has kernels {version}, which cannot read this "
                f"{LOCK_NAME}; require kernels>=0.18 in the project's dependencies ({last})"
            )
    return f"`{python} -m kernels download` failed: {last}"


def download(poetry: Poetry, env: Env, io: IO, *, all_variants: bool = False) -> None:
    """Download and verify the locked kernels for ``env``'s interpreter, in that interpreter.

    Poetry's own Python usually has no torch, and the variant to fetch depends on the project's torch,
    so the core's download runs in the project environment. Raises :class:`PluginError`.
    """
    from kernels.project import download_in_interpreter

    root = project_root(poetry)
    if not (root / LOCK_NAME).is_file():
        return
    python = Path(env.python)
    io.write_line("<info>Downloading locked kernels</info>")
    proc = download_in_interpreter(python, root, all_variants=all_variants)
    if proc.returncode != 0:
        raise PluginError(_download_failure(python, proc))
    for line in proc.stdout.splitlines():
        if line.strip():
            io.write_line(f"  {line.strip()}")


def stale_message(root: Path, reasons: list[str], *, fix: str) -> str:
    """The one-line error for a stale (or missing) lock."""
    path = root / LOCK_NAME
    if not path.exists():
        return f"{path} is missing; run `{fix}` to create it"
    return f"{path} is out of date ({'; '.join(reasons)}); run `{fix}` to update it"


def build_backend(poetry: Poetry) -> str | None:
    """The project's ``[build-system] build-backend``."""
    backend = poetry.pyproject.data.get("build-system", {}).get("build-backend")
    return str(backend) if backend is not None else None
