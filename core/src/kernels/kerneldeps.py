"""Kernels that depend on kernels: ``kernel-depends`` in ``metadata.json`` and ``get_kernel_dep``.

A kernel lists the kernels it imports (``[{"repo-id": "org/name", "version": 1}]``). The loader
resolves them recursively before importing the kernel (each with the same backend, trust and
architecture settings), refuses a cycle with :class:`~kernels.errors.DependencyCycleError` naming
it, imports the dependencies first, and then imports the kernel with the dependencies reachable
through :func:`get_kernel_dep` for the duration of its import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import TypeVar

from kernels.errors import DependencyCycleError, KernelDependencyError
from kernels.metadata import KernelDependency, Metadata

# None: not inside a kernel's import.
_DEPS: ContextVar[dict[str, ModuleType] | None] = ContextVar("kernels_deps", default=None)

T = TypeVar("T")


@contextmanager
def providing(deps: dict[str, ModuleType]) -> Iterator[None]:
    """Make ``deps`` (repo id -> module) what :func:`get_kernel_dep` returns inside the block."""
    token = _DEPS.set(dict(deps))
    try:
        yield
    finally:
        _DEPS.reset(token)


def get_kernel_dep(repo_id: str) -> ModuleType:
    """The module of ``repo_id``, a kernel the kernel being imported declares in ``kernel-depends``.

    Only works while a kernel is being imported (call it at the kernel's module level); raises
    :class:`~kernels.errors.KernelDependencyError` (a ``RuntimeError``) otherwise, or when the
    kernel does not declare ``repo_id``.
    """
    deps = _DEPS.get()
    if deps is None:
        raise KernelDependencyError(
            "get_kernel_dep only works while a kernel is being imported "
            "(call it at the top level of the kernel's package)"
        )
    module = deps.get(repo_id)
    if module is None:
        declared = ", ".join(sorted(deps)) or "none"
        raise KernelDependencyError(
            f"{repo_id} is not a dependency of the kernel being imported (it declares: "
            f"{declared}); add it to kernel-depends in the kernel's build configuration"
        )
    return module


def load_dependencies(
    meta: Metadata,
    *,
    chain: tuple[str, ...],
    load_one: Callable[[KernelDependency, tuple[str, ...]], T],
) -> dict[str, T]:
    """Call ``load_one(dep, chain + (dep,))`` for every ``kernel-depends`` entry of ``meta``, in
    order; return repo id -> its result (a module, for the loader).

    ``chain`` describes the kernels being loaded, outermost first; a dependency already in it is a
    cycle (:class:`~kernels.errors.DependencyCycleError`).
    """
    out: dict[str, T] = {}
    for dep in meta.kernel_depends:
        key = dep.describe()
        if key in chain:
            loop = " -> ".join((*chain[chain.index(key) :], key))
            raise DependencyCycleError(f"kernel dependencies form a cycle: {loop}")
        out[dep.repo_id] = load_one(dep, (*chain, key))
    return out
