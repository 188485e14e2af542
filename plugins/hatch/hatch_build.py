"""Build hook of hatch-kernels itself: ship a copy of the core's stdlib-only ``_lockembed.py``.

In this repository the file lives at ``../../core/src/kernels/_lockembed.py``; the wheel gets it as
``hatch_kernels/_lockembed.py`` and the sdist as ``src/hatch_kernels/_lockembed.py``. A build from the
unpacked sdist has no ``../../core``; there the copy is already under ``src/`` and the wheel's
``packages`` selection picks it up. A plain ``force-include`` cannot express "either", hence a hook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

CORE_COPY = Path("..", "..", "core", "src", "kernels", "_lockembed.py")
IN_SDIST = Path("src", "hatch_kernels", "_lockembed.py")


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Force-include the core's ``_lockembed.py`` into hatch-kernels' wheel and sdist."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Map the core's file into the artifact, or check that the sdist already carries it."""
        if version == "editable":
            raise SystemExit(
                "error: hatch-kernels cannot be installed editable (its _lockembed.py is copied "
                "from the core at build time); install it normally"
            )
        root = Path(self.root)
        source = (root / CORE_COPY).resolve()
        if source.is_file():
            dest = "hatch_kernels/_lockembed.py" if self.target_name == "wheel" else str(IN_SDIST)
            build_data["force_include"][str(source)] = dest
        elif not (root / IN_SDIST).is_file():
            raise SystemExit(
                f"error: hatch-kernels needs {CORE_COPY} (build it from the kernels repository) "
                f"or {IN_SDIST} (build it from its sdist)"
            )
