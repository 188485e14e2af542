"""Where a layer comes from: a Hub repository, a local folder, or a lock; and the deprecated
function repositories.

Constructing a repository makes no request (a locked one reads its lock file); ``str()`` never
makes one either. Equal repositories compare and hash equal, so ``kernelize`` loads each once.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from kernels.errors import InvalidArgumentError, LayerError
from kernels.trust import TrustRemoteCode, validate_trust_remote_code

if TYPE_CHECKING:
    from torch import nn

    from kernels.lockfile import LockedKernel

logger = logging.getLogger(__name__)

# Device types of a mapping -> the loader's compute backends, so that a model kernelized for the
# CPU of a CUDA machine gets the CPU build. Other types keep the detected backend.
_BACKEND_OF_DEVICE = {
    "cpu": "cpu",
    "cuda": "cuda",
    "rocm": "rocm",
    "xpu": "xpu",
    "mps": "metal",
    "npu": "npu",
}


def backend_for(device_type: str | None) -> str | None:
    """The loader backend that serves ``device_type`` (``None``: detect it)."""
    return None if device_type is None else _BACKEND_OF_DEVICE.get(device_type)


def validate_repo_id(repo_id: object) -> str:
    """The loader's repo id check, imported when first needed (it brings the HTTP layer)."""
    from kernels.hub import validate_repo_id as check

    return check(repo_id)


def _frozen_trust(trust: TrustRemoteCode) -> bool | tuple[str, ...]:
    # Hashable, and a copy: the caller's list may change after construction.
    checked = validate_trust_remote_code(trust)
    return checked if isinstance(checked, bool) else tuple(checked)


def _trust_arg(trust: bool | tuple[str, ...]) -> TrustRemoteCode:
    return list(trust) if isinstance(trust, tuple) else trust


def _check_version(repo_id: str, revision: str | None, version: int | str | None) -> None:
    if revision is not None and version is not None:
        raise InvalidArgumentError(
            f"{repo_id}: either a revision or a version must be specified, not both."
        )
    if revision is None and version is None:
        raise InvalidArgumentError(
            f"{repo_id}: either a revision or a version must be specified "
            "(version=N for branch vN, or revision=<branch, tag or commit>)."
        )


class _Repository:
    """Shared behaviour: identity by value, and loading a named attribute of a kernel."""

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._key() == self._key()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"

    def load(self) -> type[nn.Module]:
        """Load the kernel (for the detected backend) and return the layer class."""
        return self.load_for(None)

    def load_for(self, device_type: str | None) -> type[nn.Module]:
        """Load the build of the kernel that serves ``device_type`` and return the layer class."""
        return self._extract(self._kernel(backend_for(device_type)))

    def _kernel(self, backend: str | None) -> ModuleType:
        raise NotImplementedError

    def _extract(self, kernel: ModuleType) -> type[nn.Module]:
        raise NotImplementedError


class _LayerRepository(_Repository):
    layer_name: str

    def _extract(self, kernel: ModuleType) -> type[nn.Module]:
        layers = getattr(kernel, "layers", None)
        if layers is None:
            raise LayerError(f"Kernel repo {self} does not define any layers.")
        layer = getattr(layers, self.layer_name, None)
        if layer is None:
            have = sorted(n for n in dir(layers) if not n.startswith("_") and n[0].isupper())
            raise LayerError(
                f"Layer `{self.layer_name}` not found in kernel repo {self}; it has: "
                f"{', '.join(have) or 'none'}."
            )
        return layer  # type: ignore[no-any-return]


def _revision_text(revision: str | None, version: int | str | None) -> str:
    return f"version {version}" if version is not None else f"revision {revision}"


class LayerRepository(_LayerRepository):
    """The layer ``layer_name`` of the Hub kernel ``repo_id`` at ``version`` or ``revision``.

    Exactly one of ``version`` (an int: branch ``vN``; or a specifier over ``v<version>`` tags) and
    ``revision`` (branch, tag or commit) is given. It is resolved at each load, following the
    loader's rules (``KERNELS_REF_MAX_AGE``, ``HF_HUB_OFFLINE``).
    """

    def __init__(
        self,
        repo_id: str,
        *,
        layer_name: str,
        revision: str | None = None,
        version: int | str | None = None,
        trust_remote_code: TrustRemoteCode = False,
        user_agent: str | dict[str, str] | None = None,
    ) -> None:
        validate_repo_id(repo_id)
        _check_version(repo_id, revision, version)
        self.repo_id = repo_id
        self.layer_name = layer_name
        self.revision = revision
        self.version = version
        self._trust = _frozen_trust(trust_remote_code)
        self.user_agent = user_agent

    @property
    def trust_remote_code(self) -> TrustRemoteCode:
        """What the loader is told to trust for this repository."""
        return _trust_arg(self._trust)

    def _key(self) -> tuple[Any, ...]:
        return (self.repo_id, self.layer_name, self.revision, self.version, self._trust)

    def _kernel(self, backend: str | None) -> ModuleType:
        from kernels.loader import get_kernel

        return get_kernel(
            self.repo_id,
            revision=self.revision,
            version=self.version,
            backend=backend,
            user_agent=self.user_agent,
            trust_remote_code=self.trust_remote_code,
        )

    def __str__(self) -> str:
        where = _revision_text(self.revision, self.version)
        return f"`{self.repo_id}` ({where}), layer `{self.layer_name}`"


class LocalLayerRepository(_LayerRepository):
    """The layer ``layer_name`` of the kernel in the local folder ``repo_path`` (a checkout with
    ``build/``, or a variant folder)."""

    def __init__(self, repo_path: str | Path, *, layer_name: str) -> None:
        self.repo_path = Path(repo_path)
        self.layer_name = layer_name

    def _key(self) -> tuple[Any, ...]:
        return (str(self.repo_path), self.layer_name)

    def _kernel(self, backend: str | None) -> ModuleType:
        from kernels.loader import get_local_kernel

        return get_local_kernel(self.repo_path, backend=backend)

    def __str__(self) -> str:
        return f"`{self.repo_path}` (layer `{self.layer_name}`)"


def _locked(repo_id: str, lockfile: str | Path | None) -> LockedKernel:
    from kernels.locked import locked_entry

    return locked_entry(repo_id, lockfile)


def _load_locked(entry: LockedKernel, backend: str | None, trust: TrustRemoteCode) -> ModuleType:
    from kernels.hub import is_offline
    from kernels.locked import load_entry

    # Offline it is load_kernel (cache only); online get_locked_kernel (downloads if needed). A
    # cached locked commit makes no request either way.
    return load_entry(entry, backend=backend, cache_only=is_offline(), hint="kernels download")


class LockedLayerRepository(_LayerRepository):
    """The layer ``layer_name`` of ``repo_id`` at the commit a ``kernels.lock`` pins.

    Without ``lockfile`` the lock is the one in the installed metadata of the package that
    constructs the repository (as :func:`~kernels.load_kernel` finds it); it is read now.
    """

    def __init__(
        self,
        repo_id: str,
        *,
        lockfile: str | Path | None = None,
        layer_name: str,
        trust_remote_code: TrustRemoteCode = False,
    ) -> None:
        self.repo_id = validate_repo_id(repo_id)
        self.layer_name = layer_name
        self.lockfile = lockfile
        self._trust = _frozen_trust(trust_remote_code)
        self.entry = _locked(repo_id, lockfile)

    def _key(self) -> tuple[Any, ...]:
        pins = tuple(sorted(self.entry.variants.items()))
        return (self.repo_id, self.layer_name, self.entry.commit, pins, self._trust)

    def _kernel(self, backend: str | None) -> ModuleType:
        return _load_locked(self.entry, backend, _trust_arg(self._trust))

    def __str__(self) -> str:
        return f"`{self.repo_id}` (revision: {self.entry.commit}), layer `{self.layer_name}`"


# --- the deprecated function repositories ------------------------------------------------------


def _deprecated(name: str, instead: str) -> None:
    logger.warning("%s is deprecated and will be removed; use %s instead.", name, instead)


class _FuncRepository(_Repository):
    func_name: str

    def _extract(self, kernel: ModuleType) -> type[nn.Module]:
        from kernels.layers.marking import function_module_class

        func = getattr(kernel, self.func_name, None)
        if func is None:
            raise LayerError(f"Function `{self.func_name}` not found in `{self}`")
        return function_module_class(func)


class FuncRepository(_FuncRepository):
    """Deprecated: the function ``func_name`` of a Hub kernel, as a layer (use
    :class:`LayerRepository`)."""

    def __init__(
        self,
        repo_id: str,
        *,
        func_name: str,
        revision: str | None = None,
        version: int | str | None = None,
        trust_remote_code: TrustRemoteCode = False,
    ) -> None:
        _deprecated("FuncRepository", "LayerRepository")
        self._hub = LayerRepository(
            repo_id,
            layer_name=func_name,
            revision=revision,
            version=version,
            trust_remote_code=trust_remote_code,
        )
        self.func_name = func_name

    def _key(self) -> tuple[Any, ...]:
        return self._hub._key()

    def _kernel(self, backend: str | None) -> ModuleType:
        return self._hub._kernel(backend)

    def __str__(self) -> str:
        h = self._hub
        return (
            f"`{h.repo_id}` ({_revision_text(h.revision, h.version)}), function `{self.func_name}`"
        )


class LocalFuncRepository(_FuncRepository):
    """Deprecated: the function ``func_name`` of a local kernel (use :class:`LocalLayerRepository`)."""

    def __init__(self, repo_path: str | Path, *, func_name: str) -> None:
        _deprecated("LocalFuncRepository", "LocalLayerRepository")
        self._local = LocalLayerRepository(repo_path, layer_name=func_name)
        self.func_name = func_name

    def _key(self) -> tuple[Any, ...]:
        return self._local._key()

    def _kernel(self, backend: str | None) -> ModuleType:
        return self._local._kernel(backend)

    def __str__(self) -> str:
        return f"`{self._local.repo_path}` (function `{self.func_name}`)"


class LockedFuncRepository(_FuncRepository):
    """Deprecated: the function ``func_name`` of a locked kernel (use
    :class:`LockedLayerRepository`)."""

    def __init__(
        self,
        repo_id: str,
        *,
        lockfile: str | Path | None = None,
        func_name: str,
        trust_remote_code: TrustRemoteCode = False,
    ) -> None:
        _deprecated("LockedFuncRepository", "LockedLayerRepository")
        self.repo_id = validate_repo_id(repo_id)
        self.func_name = func_name
        self._trust = _frozen_trust(trust_remote_code)
        self.entry = _locked(repo_id, lockfile)

    def _key(self) -> tuple[Any, ...]:
        pins = tuple(sorted(self.entry.variants.items()))
        return (self.repo_id, self.func_name, self.entry.commit, pins, self._trust)

    def _kernel(self, backend: str | None) -> ModuleType:
        return _load_locked(self.entry, backend, _trust_arg(self._trust))

    def __str__(self) -> str:
        return f"`{self.repo_id}` (revision: {self.entry.commit}), function `{self.func_name}`"
