"""Hatch plugin registrations (entry-point group ``hatch``).

hatchling loads this module inside isolated build environments where the Hatch CLI is absent, so the
Hatch-only plugins are imported inside their hook functions, never at module level.
"""

from __future__ import annotations

from typing import Any

from hatchling.plugin import hookimpl


@hookimpl
def hatch_register_build_hook() -> Any:
    """The build hook ``kernels`` (``[tool.hatch.build.targets.wheel.hooks.kernels]``)."""
    from hatch_kernels.build import KernelsBuildHook

    return KernelsBuildHook


@hookimpl
def hatch_register_environment() -> Any:
    """The environment type ``kernels`` (``type = "kernels"`` in ``[tool.hatch.envs.<name>]``)."""
    from hatch_kernels.env import KernelsEnvironment

    return KernelsEnvironment


@hookimpl
def hatch_register_environment_collector() -> Any:
    """The environment collector ``kernels`` (``[tool.hatch.env.collectors.kernels]``)."""
    from hatch_kernels.env import KernelsEnvironmentCollector

    return KernelsEnvironmentCollector
