"""The kernel mapping: which repository serves a layer name on a device type and mode.

The mapping is an immutable value, replaced (never mutated) on every registration, so a mapping
that holds unpicklable repositories is never copied deeply and a reader never sees half an update.
``register_kernel_mapping`` outside any ``use_kernel_mapping`` block changes the process-wide
mapping, visible from every thread; inside a block it changes that block's mapping only. A block's
mapping lives in a ``ContextVar``, so blocks nest, and threads and asyncio tasks each see their own.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType, TracebackType
from typing import Any, Protocol, TypeAlias

from kernels.layers.device import Device
from kernels.layers.mode import REGISTRABLE, Mode


class RepositoryProtocol(Protocol):
    """What a mapping value must offer: ``load()`` returning the layer class."""

    def load(self) -> Any: ...


Range: TypeAlias = tuple[int, int]
ModeRepos: TypeAlias = Mapping[Mode, RepositoryProtocol]
DeviceEntry: TypeAlias = Mapping[Range, ModeRepos]
"""Capability range -> mode -> repository, for one layer name and device type."""
LayerMapping: TypeAlias = Mapping[str, Mapping[str, DeviceEntry]]
"""Layer name -> device type -> capability range -> mode -> repository."""

UserMapping: TypeAlias = Mapping[
    str, Mapping["Device | str", "RepositoryProtocol | Mapping[Mode, RepositoryProtocol]"]
]

_EMPTY: LayerMapping = MappingProxyType({})
_process_mapping: LayerMapping = _EMPTY
_process_lock = threading.Lock()
_scoped: ContextVar[LayerMapping | None] = ContextVar("kernels_layer_mapping", default=None)


def current_mapping() -> LayerMapping:
    """The mapping ``kernelize`` uses here: the innermost ``use_kernel_mapping`` block's, else the
    process-wide one."""
    scoped = _scoped.get()
    return _process_mapping if scoped is None else scoped


def _as_device(key: object, layer_name: str) -> Device:
    if isinstance(key, Device):
        return key
    if isinstance(key, str):
        return Device(type=key)
    raise TypeError(
        f"kernel mapping for layer `{layer_name}`: device key {key!r} must be a device type name "
        "(e.g. 'cuda') or a kernels.Device"
    )


def _as_modes(value: object, layer_name: str, device: Device) -> dict[Mode, RepositoryProtocol]:
    where = f"kernel mapping for layer `{layer_name}` on `{device.type}`"
    modes: Mapping[object, object] = value if isinstance(value, Mapping) else {Mode.FALLBACK: value}
    out: dict[Mode, RepositoryProtocol] = {}
    for mode, repo in modes.items():
        if not isinstance(mode, Mode) or mode not in REGISTRABLE:
            raise ValueError(
                f"{where}: {mode!r} is not a mode a repository can be registered for (use "
                "Mode.INFERENCE or Mode.TRAINING, optionally | Mode.TORCH_COMPILE, or "
                "Mode.FALLBACK)"
            )
        if not callable(getattr(repo, "load", None)):
            raise TypeError(
                f"{where}: {repo!r} is not a layer repository (LayerRepository, "
                "LocalLayerRepository, LockedLayerRepository or an object with load())"
            )
        out[mode] = repo  # type: ignore[assignment]
    return out


def merged(base: LayerMapping, mapping: UserMapping) -> LayerMapping:
    """``base`` with ``mapping`` registered on top of it, as a new value (``base`` is unchanged).

    Entries merge at the finest level: registering ``{cpu: {INFERENCE: b}}`` over
    ``{cpu: {TRAINING: a}}`` keeps both modes, and a capability range registered again replaces
    the modes it names in that range, once.
    """
    if not isinstance(mapping, Mapping):
        raise TypeError(f"a kernel mapping must be a dict of layer names, got {mapping!r}")
    layers = dict(base)
    for layer_name, devices in mapping.items():
        if not isinstance(layer_name, str):
            raise TypeError(f"kernel mapping: layer name {layer_name!r} must be a string")
        if not isinstance(devices, Mapping):
            raise TypeError(
                f"kernel mapping for layer `{layer_name}` must map devices to repositories, "
                f"got {devices!r}"
            )
        by_type = dict(layers.get(layer_name, {}))
        for key, value in devices.items():
            device = _as_device(key, layer_name)
            modes = _as_modes(value, layer_name, device)
            ranges = dict(by_type.get(device.type, {}))
            rng = device.capability_range
            ranges[rng] = MappingProxyType({**ranges.get(rng, {}), **modes})
            by_type[device.type] = MappingProxyType(ranges)
        layers[layer_name] = MappingProxyType(by_type)
    return MappingProxyType(layers)


def register_kernel_mapping(mapping: UserMapping, inherit_mapping: bool = True) -> None:
    """Register ``mapping`` (``{layer_name: {device: repository | {Mode: repository}}}``).

    Device keys are type names (``"cuda"``) or :class:`~kernels.Device` values; a bare repository
    means ``{Mode.FALLBACK: repository}``. New entries merge into the current mapping; with
    ``inherit_mapping=False`` they replace it. Inside a :func:`use_kernel_mapping` block only that
    block's mapping changes.
    """
    global _process_mapping
    scoped = _scoped.get()
    if scoped is not None:
        _scoped.set(merged(scoped if inherit_mapping else _EMPTY, mapping))
        return
    with _process_lock:
        _process_mapping = merged(_process_mapping if inherit_mapping else _EMPTY, mapping)


class use_kernel_mapping:  # a context manager named like a function, as in 0.17.2
    """Use ``mapping`` inside a ``with`` block, on top of the current one unless
    ``inherit_mapping=False``; the previous mapping is back when the block ends.

    Blocks nest, and each thread and asyncio task has its own; registrations made inside a block
    end with it. The same object may be entered again, also while it is active.
    """

    def __init__(self, mapping: UserMapping, *, inherit_mapping: bool = True) -> None:
        # Validate now, so a malformed mapping fails where it is written.
        merged(_EMPTY, mapping)
        self._mapping = mapping
        self._inherit = inherit_mapping
        # The tokens of this object's active entries, per thread and asyncio task.
        self._tokens: ContextVar[tuple[Token[LayerMapping | None], ...]] = ContextVar(
            "kernels_mapping_tokens", default=()
        )

    def __enter__(self) -> None:
        base = current_mapping() if self._inherit else _EMPTY
        token = _scoped.set(merged(base, self._mapping))
        self._tokens.set((*self._tokens.get(), token))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        *rest, token = self._tokens.get()
        self._tokens.set(tuple(rest))
        _scoped.reset(token)
