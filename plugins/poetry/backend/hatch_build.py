"""Build hook of this plugin distribution: ship a copy of the core's stdlib-only ``_lockembed.py``.

The plugins' build hooks run in isolated build environments and import nothing of the ``kernels``
core, so each plugin's wheel carries the core's ``kernels/_lockembed.py`` inside its own package. A
plain ``force-include`` of the core's path would break a wheel built from the sdist (the path is not
there), so this hook maps the file into the wheel as ``<package>/_lockembed.py`` and into the sdist
as ``src/<package>/_lockembed.py``, where a wheel built from the sdist picks it up as an ordinary
package file. Configured in ``[tool.hatch.build.hooks.custom]`` by ``package`` and ``core-file``.
This file is the same in every plugin (tests/test_plugin_builds.py checks that).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class LockEmbedCopyHook(BuildHookInterface):  # type: ignore[misc,type-arg]
    """Force-include the core's ``_lockembed.py``, or check that the sdist already carries it."""

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        """Map the core's file into the artifact being built."""
        package = str(self.config["package"])
        root = Path(self.root)
        core = (root / str(self.config["core-file"])).resolve()
        in_sdist = Path("src", package, "_lockembed.py")
        if version == "editable":
            raise SystemExit(
                f"error: {package} cannot be installed editable (its _lockembed.py is copied from "
                "the core at build time); install it normally"
            )
        if core.is_file():
            target = (
                f"{package}/_lockembed.py" if self.target_name == "wheel" else in_sdist.as_posix()
            )
            build_data["force_include"][str(core)] = target
        elif not (root / in_sdist).is_file():
            raise SystemExit(
                f"error: {package} needs {core} (build it from the kernels repository) or "
                f"{in_sdist} (build it from its sdist)"
            )
