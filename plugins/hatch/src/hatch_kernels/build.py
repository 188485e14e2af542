"""The hatchling build hook ``kernels``: put ``kernels.lock`` where ``load_kernel`` finds it.

- wheels (standard and editable): ``<name>-<version>.dist-info/kernels.lock``, at the dist-info root
  (``build_data["extra_metadata"]`` would land in ``dist-info/extra_metadata/``, where nothing looks);
  editable wheels also get ``top_level.txt``, because they record only a ``.pth`` file and
  ``importlib.metadata`` could not map the import name back to the distribution otherwise;
- sdists: ``kernels.lock`` at the root, so that a wheel built from the sdist (what ``uv build`` and
  ``pip install <sdist>`` do) embeds it too, even when the sdist's file selection would drop it.

Isolated build environments resolve ``kernels`` from an index (possibly another release), so this
module imports nothing of the core: only the standard library, hatchling and the stdlib-only
``kernels_lockembed`` (distribution ``kernels-lockembed``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from kernels_lockembed import LOCK_NAME, LockEmbedError, lock_text_for_build


class KernelsBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Embed the project's ``kernels.lock`` in every wheel and sdist hatchling builds.

    A project with ``[tool.kernels.dependencies]`` and no ``kernels.lock`` fails the build with one
    line naming the fix (``[tool.kernels] missing-lock = "warn"`` makes it a warning). Projects
    without kernel dependencies build unchanged.
    """

    PLUGIN_NAME = "kernels"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Add ``kernels.lock`` (and, for editable wheels, ``top_level.txt``) to the artifact."""
        self._tmp: str | None = None
        root = Path(self.root)
        try:
            text = lock_text_for_build(
                root, warn=lambda m: self.app.display_warning(f"warning: {m}")
            )
        except LockEmbedError as err:
            # One line and a non-zero exit, not a traceback from inside the backend.
            raise SystemExit(f"error: {err}") from None
        if text is None:
            return
        lock = str(root / LOCK_NAME)
        if self.target_name == "sdist":
            build_data["force_include"][lock] = LOCK_NAME
        elif self.target_name == "wheel":
            dist_info = f"{self.build_config.builder.artifact_project_id}.dist-info"
            build_data["force_include"][lock] = f"{dist_info}/{LOCK_NAME}"
            if version == "editable":
                tops = self._top_level_names()
                if tops:
                    self._tmp = tempfile.mkdtemp(prefix="hatch-kernels-")
                    top_level = os.path.join(self._tmp, "top_level.txt")
                    Path(top_level).write_text("\n".join(tops) + "\n", encoding="utf-8")
                    build_data["force_include"][top_level] = f"{dist_info}/top_level.txt"
        else:
            return
        self.app.display_info(f"kernels: embedded {LOCK_NAME} from {root}")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        """Remove the temporary ``top_level.txt``."""
        if getattr(self, "_tmp", None):
            shutil.rmtree(str(self._tmp), ignore_errors=True)

    def _top_level_names(self) -> list[str]:
        """Top-level modules the wheel would install, from hatchling's own file selection.

        Best effort: the core also finds editable installs through ``direct_url.json``, so a
        selection hatchling cannot walk here only costs the ``top_level.txt`` shortcut.
        """
        names: set[str] = set()
        try:
            for included in self.build_config.builder.recurse_selected_project_files():
                if not included.distribution_path.endswith(".py"):
                    continue
                first = Path(included.distribution_path).parts[0]
                names.add(first[:-3] if first.endswith(".py") else first)
        except Exception:
            return []
        return sorted(n for n in names if n.isidentifier())
