"""Hatch environments that download the project's locked kernels.

Hatch has no hook that runs after an environment is synced, and ``post-install-commands`` run only
when an environment is created. Hatch does re-check an environment whenever its
``dependency_hash()`` changes, so the environment type ``kernels`` (a ``virtual`` environment) mixes
the SHA-256 of ``kernels.lock`` into that hash. When the lock changes, the next ``hatch run`` /
``hatch shell`` / ``hatch env create`` finds the environment out of sync and:

1. reinstalls the project (without its dependencies) so that the ``kernels.lock`` embedded in its
   installed metadata, which ``load_kernel`` reads, is the new one;
2. runs ``python -m kernels download <root>`` inside the environment, whose interpreter has torch
   and picks the right build variant;
3. records the lock's hash in ``<env>/.hatch-kernels-lock`` so that the next run does nothing.

The same happens right after the environment is created (nothing is recorded yet).

The collector ``kernels`` switches every ``virtual`` environment that installs the project to this
type; environments of other types (plugins such as hatch-conda) get a ``post-install-commands``
download instead, which runs only when they are created.

This module runs in Hatch's own Python (no torch): it only starts processes in the environment.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from hatch.env.collectors.plugin.interface import EnvironmentCollectorInterface
from hatch.env.virtual import VirtualEnvironment
from kernels_lockembed import LOCK_NAME, _load_toml

STATE_FILE = ".hatch-kernels-lock"
DOWNLOAD_COMMAND = 'python -m kernels download "{root}"'
# Exit 0 when the environment's `kernels` is a release with `kernels download DIR` (0.18+).
CORE_PROBE = (
    "import sys, kernels; "
    "sys.exit(tuple(int(p) for p in kernels.__version__.split('.')[:2]) < (0, 18))"
)


def uses_kernels(root: Path) -> bool:
    """True when ``root/pyproject.toml`` declares ``[tool.kernels.dependencies]``."""
    pyproject = Path(root) / "pyproject.toml"
    if not pyproject.is_file():
        return False
    table = _load_toml(pyproject).get("tool", {}).get("kernels", {})
    return isinstance(table, dict) and bool(table.get("dependencies"))


def lock_digest(root: Path) -> str | None:
    """SHA-256 of ``root/kernels.lock`` for a project with kernel dependencies, else ``None``."""
    lock = Path(root) / LOCK_NAME
    if not lock.is_file() or not uses_kernels(root):
        return None
    return hashlib.sha256(lock.read_bytes()).hexdigest()


class KernelsEnvironment(VirtualEnvironment):
    """A ``virtual`` environment that keeps the project's locked kernels downloaded.

    Downloads happen when the environment is created and after every change of ``kernels.lock``;
    a failed download aborts the Hatch command with the ``kernels download`` error line.
    """

    PLUGIN_NAME = "kernels"

    @property
    def _state_path(self) -> Path:
        return Path(self.virtual_env_path) / STATE_FILE

    def _kernels_digest(self) -> str | None:
        if self.skip_install:
            return None  # the project (and with it `kernels`) is not installed here
        return lock_digest(Path(self.root))

    def _recorded_digest(self) -> str | None:
        try:
            return self._state_path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

    def _kernels_stale(self) -> bool:
        digest = self._kernels_digest()
        return digest is not None and digest != self._recorded_digest()

    def dependency_hash(self) -> str:
        """Hatch's dependency hash with the ``kernels.lock`` digest mixed in."""
        base: str = super().dependency_hash()  # type: ignore[no-untyped-call]
        digest = self._kernels_digest()
        if digest is None:
            return base
        return hashlib.sha256(f"{base}\nkernels.lock:{digest}".encode()).hexdigest()

    def dependencies_in_sync(self) -> bool:
        """False also when the locked kernels were not downloaded for the current lock."""
        in_sync = bool(super().dependencies_in_sync())  # type: ignore[no-untyped-call]
        return in_sync and not self._kernels_stale()

    def sync_dependencies(self) -> None:
        """Sync dependencies, then (when the lock changed) re-embed the lock and download."""
        super().sync_dependencies()  # type: ignore[no-untyped-call]
        digest = self._kernels_digest()
        if digest is None or digest == self._recorded_digest():
            return
        if self._recorded_digest() is not None:
            self._reinstall_project()
        self._download()
        self._state_path.write_text(digest + "\n", encoding="utf-8")

    def _reinstall_project(self) -> None:
        # The installed metadata holds the lock the project was built with; rebuild it.
        target = self.apply_features(str(self.root))
        args = ["--no-deps"]
        if self.use_uv:
            args += ["--reinstall-package", self.metadata.name]
        else:
            args.append("--force-reinstall")
        args += ["--editable", target] if self.dev_mode else [target]
        with self.safe_activation():
            self.platform.check_command(self.construct_pip_install_command(args))

    def _download(self) -> None:
        with self.safe_activation():
            # Without this check a project that forgot `kernels` in its dependencies would get
            # "No module named kernels" from deep inside the sync.
            probe = self.platform.run_command(
                ["python", "-c", CORE_PROBE], capture_output=True, text=True
            )
            if probe.returncode != 0:
                self.app.abort(  # type: ignore[no-untyped-call]
                    f"environment `{self.name}` has no kernels>=0.18 but {self.root}/pyproject.toml "
                    "declares [tool.kernels.dependencies]; add kernels>=0.18 to [project] "
                    "dependencies (or to this environment's dependencies)"
                )
            self.platform.check_command(["python", "-m", "kernels", "download", str(self.root)])


class KernelsEnvironmentCollector(EnvironmentCollectorInterface):
    """Turn on kernel downloads for every environment that installs the project.

    ``virtual`` environments become ``kernels`` environments (download on creation and on every
    ``kernels.lock`` change); environments of other types get a post-install download (creation
    only). Environments that skip installing the project, and build environments, are left alone.
    """

    PLUGIN_NAME = "kernels"

    def finalize_environments(self, config: dict[str, dict[str, Any]]) -> None:
        """Rewrite the final environment configurations as described above."""
        for env in config.values():
            if env.get("skip-install") or env.get("builder"):
                continue
            kind = env.get("type", "virtual")
            if kind == "virtual":
                env["type"] = KernelsEnvironment.PLUGIN_NAME
            elif kind != KernelsEnvironment.PLUGIN_NAME:
                commands = list(env.get("post-install-commands", []))
                if DOWNLOAD_COMMAND not in commands:
                    commands.append(DOWNLOAD_COMMAND)
                env["post-install-commands"] = commands
