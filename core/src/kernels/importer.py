"""Importing a kernel folder from outside ``sys.path`` under a unique module name.

The module name is the kernel's ``metadata.json`` ``id`` (a unique identifier that is also its
``torch.ops`` namespace); relative imports inside the kernel work because the folder is registered as
a package. The same folder imported twice returns the same module; two different folders that claim
one id get distinct names, so two versions of a kernel can live in one process. The kernels a kernel
depends on are passed in as ``deps`` and reachable through :func:`kernels.get_kernel_dep` while its
package runs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from kernels.errors import KernelsError
from kernels.metadata import Metadata

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class RepoInfo:
    """Where a loaded kernel came from: the Hub repository and the commit it was loaded at."""

    repo_id: str
    revision: str
    """The commit id (0.17.2 gives the requested revision for ``revision=`` loads)."""


@dataclass(frozen=True)
class LoadedKernel:
    """A kernel module this process imported, and where from.

    ``metadata``, ``module`` and ``repo_info`` are 0.17.2's fields (``repo_info`` is ``None`` for a
    kernel imported from a local folder); the others are this library's.
    """

    metadata: Metadata
    module: ModuleType
    repo_info: RepoInfo | None
    module_name: str = ""
    path: Path = Path()
    variant: str | None = None

    @property
    def repo_id(self) -> str | None:
        """The Hub repository, or ``None`` for a local folder."""
        return self.repo_info.repo_id if self.repo_info else None

    @property
    def commit(self) -> str | None:
        """The commit it was loaded at, or ``None`` for a local folder."""
        return self.repo_info.revision if self.repo_info else None


_loaded: dict[Path, LoadedKernel] = {}
_import_lock = threading.RLock()


def read_metadata(folder: Path) -> dict[str, Any]:
    """The variant's ``metadata.json`` as a dict (empty when absent or unreadable)."""
    try:
        data = json.loads((folder / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _package_dir(folder: Path, name: str | None) -> Path:
    if (folder / "__init__.py").is_file():
        return folder
    # Older layout: build/<variant>/<name>/__init__.py
    candidates = [folder / name.replace("-", "_")] if name else []
    candidates += sorted(p.parent for p in folder.glob("*/__init__.py"))
    for c in candidates:
        if (c / "__init__.py").is_file():
            return c
    raise KernelsError(f"{folder} holds no Python package (no __init__.py)")


def _kernel_name(folder: Path, repo_id: str | None) -> str:
    """The kernel's name for a module name when ``metadata.json`` gives none: the repo's name,
    else the folder's (``<name>/build/<variant>`` for a checkout)."""
    if repo_id:
        return repo_id.rsplit("/", 1)[-1]
    if folder.parent.name == "build" and folder.parent.parent.name:
        return folder.parent.parent.name
    return folder.name or "kernel"


def import_folder(
    folder: Path,
    *,
    repo_id: str | None = None,
    commit: str | None = None,
    variant: str | None = None,
    deps: dict[str, ModuleType] | None = None,
    metadata: Metadata | None = None,
) -> ModuleType:
    """Import the kernel package in ``folder`` (once per process) and return the module.

    ``deps`` (repo id -> module) are what ``get_kernel_dep`` returns during the import.
    """
    from kernels.kerneldeps import providing

    folder = Path(os.path.abspath(folder))
    with _import_lock:
        hit = _loaded.get(folder)
        if hit is not None:
            return hit.module
        meta = read_metadata(folder)
        if metadata is None:
            metadata = Metadata.from_json(meta, where=str(folder / "metadata.json"))
        name = meta.get("name") if isinstance(meta.get("name"), str) else None
        pkg = _package_dir(folder, name)
        wanted = meta.get("id")
        if not (isinstance(wanted, str) and _IDENT.match(wanted)):
            base = re.sub(r"\W", "_", name or _kernel_name(folder, repo_id))
            wanted = f"_{base}"
        digest = hashlib.sha256(str(folder).encode()).hexdigest()[:10]
        module_name = wanted if wanted not in sys.modules else f"{wanted}_{digest}"
        spec = importlib.util.spec_from_file_location(
            module_name, pkg / "__init__.py", submodule_search_locations=[str(pkg)]
        )
        if spec is None or spec.loader is None:
            raise KernelsError(f"cannot import the kernel in {pkg}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            with providing(deps or {}):
                spec.loader.exec_module(module)
        except BaseException as err:
            for key in [
                k for k in sys.modules if k == module_name or k.startswith(module_name + ".")
            ]:
                del sys.modules[key]
            if isinstance(err, ModuleNotFoundError) and err.name == "torch":
                what = repo_id or str(folder)
                raise KernelsError(
                    f"the kernel {what} ({variant or folder.name}) imports torch, which is not "
                    f"installed in this interpreter ({sys.executable}); install torch"
                ) from None
            raise
        info = RepoInfo(repo_id, commit) if repo_id is not None and commit is not None else None
        _loaded[folder] = LoadedKernel(metadata, module, info, module_name, folder, variant)
        return module


def loaded_kernels() -> list[LoadedKernel]:
    """Every kernel imported by this process, in import order."""
    with _import_lock:
        return list(_loaded.values())
