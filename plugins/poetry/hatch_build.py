"""Vendor ``core/src/kernels/_lockembed.py`` into this package at build time.

A plain ``force-include`` of ``../../core/...`` fails when a wheel is built from the sdist (that
path is not in it), so the copy is force-included only when the source exists; the sdist gets it at
``src/poetry_plugin_kernels/_lockembed.py``, where the wheel build from the sdist picks it up as an
ordinary package file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

PACKAGE = "poetry_plugin_kernels"
SOURCE = Path("..", "..", "core", "src", "kernels", "_lockembed.py")


class CustomBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    """Adds ``<PACKAGE>/_lockembed.py`` to the wheel and the sdist."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Force-include the core's ``_lockembed.py`` when building from the repository."""
        source = (Path(self.root) / SOURCE).resolve()
        in_package = Path(self.root) / "src" / PACKAGE / "_lockembed.py"
        if source.is_file():
            target = (
                f"src/{PACKAGE}/_lockembed.py"
                if self.target_name == "sdist"
                else f"{PACKAGE}/_lockembed.py"
            )
            build_data["force_include"][str(source)] = target
        elif not in_package.is_file():
            raise FileNotFoundError(f"{source} is missing and {in_package} is not in the sdist")
