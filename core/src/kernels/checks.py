"""Checks of a build variant's metadata, run before any of its other files is fetched or imported.

:func:`check_metadata` runs, in order: the ``python-depends`` allowlist and installed packages
(:mod:`kernels.pydeps`), ``kernels-minver`` (a kernel needing a newer release of this library is a
:class:`~kernels.errors.KernelsVersionError`, a ``RuntimeError`` as in 0.17.2) and the build's
provenance (a build from a dirty git tree loads, with a warning). The architecture check is
separate (:mod:`kernels.archs`), because it can make the loader pick another variant.
"""

from __future__ import annotations

import logging
from functools import cache

from packaging.version import InvalidVersion, Version

from kernels.errors import KernelsVersionError
from kernels.metadata import Metadata
from kernels.pydeps import check_python_depends

logger = logging.getLogger(__name__)


@cache
def installed_version() -> Version | None:
    """This library's release (``0.18.2``; pre-release and local parts dropped), or ``None``."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return Version(Version(version("kernels")).base_version)
    except (PackageNotFoundError, InvalidVersion):
        return None


def check_minver(meta: Metadata, where: str) -> None:
    """Raise ``KernelsVersionError`` when the kernel at ``where`` needs a newer ``kernels``."""
    have = installed_version()
    if meta.kernels_minver is None or have is None or have >= meta.kernels_minver:
        return
    raise KernelsVersionError(
        f"kernel {where} requires kernels>={meta.kernels_minver}, but kernels {have} is "
        "installed; upgrade with: pip install --upgrade kernels"
    )


def warn_if_dirty(meta: Metadata, where: str) -> None:
    """Log a warning when the build came from a git tree with uncommitted changes."""
    prov = meta.provenance
    if prov is None or not prov.dirty:
        return
    sources = []
    if prov.kernel is not None and prov.kernel.dirty:
        sources.append("the kernel source")
    if prov.kernel_builder.git is not None and prov.kernel_builder.git.dirty:
        sources.append("kernel-builder")
    logger.warning(
        "kernel %s was built from a dirty git tree (%s had uncommitted changes): its recorded "
        "revision does not identify the sources it was built from",
        where,
        " and ".join(sources),
    )


def check_metadata(meta: Metadata, *, where: str, backend: str) -> None:
    """Run every metadata check on the variant described by ``where`` (repo, commit, variant)."""
    check_python_depends(where, meta.python_depends, backend)
    check_minver(meta, where)
    warn_if_dirty(meta, where)
