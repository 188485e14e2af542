"""Build hook of pdm-kernels itself: ship the core's ``_lockembed.py`` inside ``pdm_kernels``.

The pdm-backend hook runs in isolated build environments and must not import the ``kernels`` core, so
the wheel carries a copy of the core's standard-library-only ``_lockembed.py``. A plain
``force-include`` of ``../../core/...`` would break a wheel built from the sdist (that path does not
exist there), so the sdist stores the file at ``src/pdm_kernels/_lockembed.py`` and a wheel built
from it picks it up as an ordinary package file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

CORE_FILE = Path("..", "..", "core", "src", "kernels", "_lockembed.py")
IN_PACKAGE = Path("src", "pdm_kernels", "_lockembed.py")


class LockEmbedCopyHook(BuildHookInterface):  # type: ignore[misc,type-arg]
    """Force-include the core's ``_lockembed.py`` unless the source tree already has it (an sdist)."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        if (root / IN_PACKAGE).is_file():
            return
        core = (root / CORE_FILE).resolve()
        if not core.is_file():
            raise FileNotFoundError(
                f"pdm-kernels: neither {root / IN_PACKAGE} nor {core} exists; build from the "
                "kernels repository (plugins/pdm) or from an sdist"
            )
        target = (
            "pdm_kernels/_lockembed.py" if self.target_name == "wheel" else IN_PACKAGE.as_posix()
        )
        build_data["force_include"][str(core)] = target
