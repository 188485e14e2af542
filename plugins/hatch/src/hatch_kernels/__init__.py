"""Hatch and hatchling plugins for ``kernels``.

- ``hatch_kernels.build``: the hatchling build hook ``kernels`` that embeds ``kernels.lock`` in
  wheels (standard and editable, at the dist-info root) and in sdists. Standard library + hatchling
  only: it runs in isolated build environments and imports nothing of the ``kernels`` core.
- ``hatch_kernels.env``: for the Hatch CLI, the environment type ``kernels`` (a ``virtual``
  environment that downloads the locked kernels when it is created and again whenever
  ``kernels.lock`` changes) and the environment collector ``kernels`` (turns that on for every
  environment that installs the project).
"""

__version__ = "0.18.2"
