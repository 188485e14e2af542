"""PDM integration for ``kernels``.

- :mod:`pdm_kernels.plugin`: the PDM plugin (``pdm kernels ...`` and the lock/install hooks);
- :mod:`pdm_kernels.build_hook`: the pdm-backend build hook that embeds ``kernels.lock``.

This module imports nothing: the build hook is loaded in isolated build environments where neither
PDM nor the ``kernels`` core may be importable.
"""

__version__ = "0.18.2"
