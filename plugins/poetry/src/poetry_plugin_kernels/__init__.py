"""Poetry plugin for ``kernels``: lock, download and embed Hub kernels beside ``poetry.lock``.

Entry point (group ``poetry.application.plugin``): :class:`poetry_plugin_kernels.plugin.KernelsPlugin`.
Install it per project with ``[tool.poetry.requires-plugins]`` or globally with ``poetry self add``.
"""

from __future__ import annotations

__version__ = "0.18.2"
