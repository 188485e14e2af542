"""``kernelize``: bind the ``forward`` of each marked module to the hub layer its mapping names.

For each marked module the repository is chosen by layer name, device type, capability (CUDA and
ROCm: the narrowest registered range holding the device's) and mode. Each repository is loaded once
per call and each (module class, layer) pair validated once; a layer that cannot be used keeps the
module's own ``forward`` where ``use_fallback`` covers the reason, with one log line saying why.
"""

from __future__ import annotations

import inspect
import logging
import os
from dataclasses import dataclass, field
from enum import Flag, auto
from types import MethodType
from typing import TYPE_CHECKING, Any

from kernels.errors import LayerError, LayerValidationError
from kernels.layers.device import ANY_CAPABILITY
from kernels.layers.mapping import LayerMapping, RepositoryProtocol, current_mapping
from kernels.layers.mode import Mode, check_kernelize_mode, served_by

if TYPE_CHECKING:
    import torch
    from torch import nn

logger = logging.getLogger("kernels.layers")


class KernelizeFallback(Flag):
    """The cases in which :func:`kernelize` keeps a module's own ``forward`` instead of raising.

    ``NO_LAYER``: no mapping for the layer name; ``NO_DEVICE``: none for the device type;
    ``NO_COMPATIBLE_PROPERTIES``: no capability range holds the device's; ``NO_COMPATIBLE_MODE``:
    no repository or layer serves the mode; ``CANNOT_LOAD``: the layer cannot be loaded or does
    not fit (missing repo or variant, Hub error, missing layer, failed validation). ``DEFAULT`` is
    the first four, ``ALL`` all five.
    """

    NONE = 0
    NO_LAYER = auto()
    NO_DEVICE = auto()
    NO_COMPATIBLE_PROPERTIES = auto()
    NO_COMPATIBLE_MODE = auto()
    CANNOT_LOAD = auto()

    DEFAULT = NO_LAYER | NO_DEVICE | NO_COMPATIBLE_PROPERTIES | NO_COMPATIBLE_MODE
    ALL = DEFAULT | CANNOT_LOAD


_CAPABILITY_TYPES = ("cuda", "rocm")
_TRUE = {"1", "true", "yes", "on"}


def mapping_disabled() -> bool:
    """True when ``DISABLE_KERNEL_MAPPING`` is set: every marked module keeps its own forward."""
    return os.environ.get("DISABLE_KERNEL_MAPPING", "").strip().lower() in _TRUE


@dataclass
class _Target:
    """The device a call kernelizes for; the capability is read once, when first needed."""

    type: str
    index: int | None
    _capability: int | None = None
    _capability_read: bool = False

    def capability(self) -> int | None:
        if not self._capability_read:
            self._capability_read = True
            self._capability = _read_capability(self.index)
        return self._capability


def _read_capability(index: int | None) -> int | None:
    import torch

    try:
        if not torch.cuda.is_available():
            return None
        major, minor = torch.cuda.get_device_capability(
            torch.cuda.current_device() if index is None else index
        )
    except (RuntimeError, AssertionError):
        return None
    return int(major) * 10 + int(minor)


def _first_tensor_device(model: nn.Module) -> torch.device | None:
    for param in model.parameters():
        return param.device
    for buffer in model.buffers():
        return buffer.device
    return None


def _is_rocm() -> bool:
    import torch

    return getattr(torch.version, "hip", None) is not None


def _target(model: nn.Module, device: Any) -> _Target:
    own = _first_tensor_device(model)
    if device is None:
        if own is None:
            raise LayerError(
                "Cannot determine model device, provide as `device` argument to `kernelize`."
            )
        kind = "rocm" if own.type == "cuda" and _is_rocm() else own.type
        return _Target(kind, own.index)
    if isinstance(device, str):
        kind, _, index_text = device.partition(":")
        index = int(index_text) if index_text.isdigit() else None
    elif isinstance(getattr(device, "type", None), str):
        kind, index = device.type, getattr(device, "index", None)
    else:
        raise TypeError(f"kernelize: device must be a str, torch.device or Device, got {device!r}")
    if index is None and own is not None and own.type == "cuda" and kind in _CAPABILITY_TYPES:
        # A model on cuda:1 kernelized with device="cuda" is read on cuda:1, not device 0.
        index = own.index
    return _Target(kind, index if isinstance(index, int) else None)


@dataclass
class _Choice:
    repo: RepositoryProtocol
    registered: Mode


@dataclass
class _Miss:
    reason: KernelizeFallback
    message: str


def _narrowest(ranges: Any, capability: int | None) -> Any:
    # Narrowest range holding the capability; ties (equal width) go to the higher minimum, so the
    # choice never depends on registration order. Without a capability only full ranges serve.
    holding = [
        rng
        for rng in ranges
        if (capability is None and rng == ANY_CAPABILITY)
        or (capability is not None and rng[0] <= capability <= rng[1])
    ]
    if not holding:
        return None
    return ranges[min(holding, key=lambda r: (r[1] - r[0], -r[0]))]


def _lookup(mapping: LayerMapping, layer_name: str, target: _Target, mode: Mode) -> _Choice | _Miss:
    devices = mapping.get(layer_name)
    if devices is None:
        return _Miss(KernelizeFallback.NO_LAYER, f"No layer mapping for `{layer_name}`")
    ranges = devices.get(target.type)
    if ranges is None:
        return _Miss(
            KernelizeFallback.NO_DEVICE,
            f"No layer mapping for `{layer_name}` with device type `{target.type}`",
        )
    capability = target.capability() if target.type in _CAPABILITY_TYPES else 0
    repos = _narrowest(ranges, capability)
    if repos is None:
        return _Miss(
            KernelizeFallback.NO_COMPATIBLE_PROPERTIES,
            f"No layer mapping for `{layer_name}` device `{target.type}` with the right "
            f"properties (capability {capability if capability is not None else 'unknown'})",
        )
    for registered in served_by(mode):
        repo = repos.get(registered)
        if repo is not None:
            return _Choice(repo, registered)
    return _Miss(
        KernelizeFallback.NO_COMPATIBLE_MODE,
        f"No repository for `{layer_name}` for configuration mode={mode}",
    )


def _validate_layer(*, check_cls: type[nn.Module], cls: Any, repo: object = None) -> None:
    """Raise ``LayerValidationError`` unless ``cls`` may replace the forward of ``check_cls``."""
    from torch import nn

    what = f"Layer `{getattr(cls, '__name__', cls)}`" + (f" from {repo}" if repo else "")
    if not (inspect.isclass(cls) and issubclass(cls, nn.Module)):
        raise LayerValidationError(f"{what} is not a Torch layer (an nn.Module subclass).")
    # Stateless: no constructor of its own (it could add members)...
    if cls.__init__ is not nn.Module.__init__:
        raise LayerValidationError(f"{what} must not override nn.Module constructor.")
    # ... and no members beyond nn.Module's but the two flags.
    extra = {n for n, _ in inspect.getmembers(cls)} - {n for n, _ in inspect.getmembers(nn.Module)}
    extra -= {"can_torch_compile", "has_backward"}
    if extra:
        raise LayerValidationError(
            f"{what} must not contain additional members compared to `{check_cls.__name__}` "
            f"({', '.join(sorted(extra))})."
        )
    params = list(inspect.signature(cls.forward).parameters.values())
    ref = list(inspect.signature(check_cls.forward).parameters.values())
    if len(params) != len(ref):
        raise LayerValidationError(
            f"Forward signature of {what} does not match `{check_cls.__name__}`: different number "
            f"of arguments ({len(params)} and {len(ref)})."
        )
    for p, r in zip(params, ref, strict=True):
        if p.kind != r.kind:
            raise LayerValidationError(
                f"Forward signature of {what} does not match `{check_cls.__name__}`: different "
                f"kind of arguments ({p} ({p.kind.description}) and {r} ({r.kind.description}))."
            )


def _check_registered_mode(layer: Any, layer_name: str, repo: object, registered: Mode) -> None:
    # A repository registered for a mode its layer cannot serve is a broken mapping.
    if Mode.TRAINING in registered and not getattr(layer, "has_backward", True):
        raise LayerError(
            f"Function/layer from repo {repo} does not support backward.\n"
            f"Was registered for `{layer_name}` with mode `{registered}`"
        )
    if Mode.TORCH_COMPILE in registered and not getattr(layer, "can_torch_compile", False):
        raise LayerError(
            f"Function/layer from repo {repo} does not support torch.compile.\n"
            f"Was registered for `{layer_name}` with mode `{registered}`"
        )


def _with_context(err: BaseException, prefix: str) -> BaseException:
    """``err`` re-made with ``prefix`` before its message, keeping its type where possible."""
    message = f"{prefix}: {err}"
    try:
        out = type(err)(message)
    except Exception:
        out = LayerError(message)
    out.__cause__ = err
    return out


@dataclass
class _Call:
    """One ``kernelize`` call: its settings and what it has learnt."""

    mapping: LayerMapping
    target: _Target
    mode: Mode
    fallback: KernelizeFallback
    loaded: dict[Any, Any] = field(default_factory=dict)
    """repository -> layer class, or the exception its load raised."""
    checked: dict[tuple[type, Any], BaseException | None] = field(default_factory=dict)
    reported: set[tuple[str, str]] = field(default_factory=set)
    choices: dict[str, _Choice | _Miss] = field(default_factory=dict)
    """layer name -> its lookup: the mapping, device and mode are fixed for the call."""

    def lookup(self, layer_name: str) -> _Choice | _Miss:
        choice = self.choices.get(layer_name)
        if choice is None:
            choice = self.choices[layer_name] = _lookup(
                self.mapping, layer_name, self.target, self.mode
            )
        return choice

    def keep_own(self, module: nn.Module, reason: KernelizeFallback, message: str) -> None:
        if reason not in self.fallback:
            raise LayerError(message)
        self._report(reason, message)
        _restore(module)

    def _report(self, reason: KernelizeFallback, message: str) -> None:
        if (reason.name or "", message) in self.reported:
            return
        self.reported.add((reason.name or "", message))
        if reason in (KernelizeFallback.NO_LAYER, KernelizeFallback.CANNOT_LOAD):
            logger.warning("%s; using the original forward.", message)
        else:
            logger.info("%s; using the original forward.", message)

    def load(self, repo: RepositoryProtocol) -> Any:
        key: Any = repo
        try:
            hash(repo)
        except TypeError:
            key = id(repo)
        if key not in self.loaded:
            try:
                load_for = getattr(repo, "load_for", None)
                self.loaded[key] = load_for(self.target.type) if callable(load_for) else repo.load()
            except Exception as err:  # every load failure is CANNOT_LOAD
                self.loaded[key] = err
        return self.loaded[key]

    def check(self, module_cls: type, layer: Any, repo: object) -> BaseException | None:
        key = (module_cls, layer)
        if key not in self.checked:
            try:
                _validate_layer(check_cls=module_cls, cls=layer, repo=repo)
                self.checked[key] = None
            except LayerValidationError as err:
                self.checked[key] = err
        return self.checked[key]


def _restore(module: nn.Module) -> None:
    # The class's own forward: drop what an earlier kernelize bound to the instance.
    module.__dict__.pop("forward", None)


def _kernelize_one(call: _Call, module: nn.Module) -> None:
    module_cls = type(module)
    layer_name = str(module_cls.kernel_layer_name)  # type: ignore[attr-defined]
    choice = call.lookup(layer_name)
    if isinstance(choice, _Miss):
        call.keep_own(module, choice.reason, choice.message)
        return
    repo = choice.repo
    layer = call.load(repo)
    problem: BaseException | None = layer if isinstance(layer, BaseException) else None
    if problem is None:
        problem = call.check(module_cls, layer, repo)
    if problem is None:
        try:
            _check_registered_mode(layer, layer_name, repo, choice.registered)
        except LayerError as err:
            problem = err
    if problem is not None:
        prefix = f"cannot use layer `{layer_name}` from {repo}"
        if KernelizeFallback.CANNOT_LOAD not in call.fallback:
            raise _with_context(problem, prefix) from problem
        call._report(KernelizeFallback.CANNOT_LOAD, f"{prefix}: {problem}")
        _restore(module)
        return
    # A layer chosen through FALLBACK may still not serve the mode asked for.
    lacks_compile = Mode.TORCH_COMPILE in call.mode and not getattr(
        layer, "can_torch_compile", False
    )
    lacks_backward = Mode.TRAINING in call.mode and not getattr(layer, "has_backward", True)
    if lacks_compile or lacks_backward:
        needs = "torch.compile" if lacks_compile else "backward"
        call.keep_own(
            module,
            KernelizeFallback.NO_COMPATIBLE_MODE,
            f"Available kernel does not support mode: {call.mode} (layer `{layer_name}` from "
            f"{repo} has no {needs})",
        )
        return
    module.forward = MethodType(layer.forward, module)  # type: ignore[method-assign]


def kernelize(
    model: nn.Module,
    *,
    mode: Mode,
    device: str | torch.device | Any | None = None,
    use_fallback: bool | KernelizeFallback = True,
) -> nn.Module:
    """Swap the ``forward`` of every marked module of ``model`` for its mapped hub layer.

    ``mode`` is ``Mode.INFERENCE`` or ``Mode.TRAINING``, optionally ``| Mode.TORCH_COMPILE``.
    ``device`` (``"cuda"``, ``"cuda:1"``, ``"cpu"``, a ``torch.device``, ...) defaults to the device
    of the model's first parameter; it picks the mapping entry, the build variant loaded, and (for
    CUDA and ROCm) the capability. ``use_fallback`` (``True`` is ``KernelizeFallback.DEFAULT``,
    ``False`` is ``NONE``) says when a module keeps its own forward instead of raising. Returns
    ``model``. With ``DISABLE_KERNEL_MAPPING=1`` every marked module keeps its own forward.
    """
    mode = check_kernelize_mode(mode)
    if isinstance(use_fallback, bool):
        fallback = KernelizeFallback.DEFAULT if use_fallback else KernelizeFallback.NONE
    elif isinstance(use_fallback, KernelizeFallback):
        fallback = use_fallback
    else:
        raise TypeError(f"use_fallback must be a bool or KernelizeFallback, got {use_fallback!r}")
    disabled = mapping_disabled()
    call = _Call(current_mapping(), _target(model, device), mode, fallback)
    for _, module in model.named_modules():
        marked = [*module.__dict__.get("_kernel_funcs", {}).values()]
        if hasattr(type(module), "kernel_layer_name"):
            condition = getattr(type(module), "kernel_condition", None)
            if condition is None or condition(module):
                marked.append(module)
            else:
                logger.info(
                    "Skipping kernelization for `%s` using `%s` due to kernel_condition.",
                    type(module).__name__,
                    type(module).kernel_layer_name,
                )
        for target in marked:
            if disabled:
                _restore(target)
            else:
                _kernelize_one(call, target)
    return model


__all__ = ["KernelizeFallback", "kernelize"]
