"""Marking the layers ``kernelize`` may swap: classes, functions, and functions used by a class."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from torch import nn

T = TypeVar("T")
Condition = Callable[["nn.Module"], bool]


def _always(module: nn.Module) -> bool:
    return True


def replace_kernel_forward_from_hub(
    cls: type[nn.Module], layer_name: str, condition: Condition | None = None
) -> None:
    """Mark ``cls`` (and its subclasses) as the layer ``layer_name`` for :func:`~kernels.kernelize`.

    ``condition(module)``, when given, is asked for each instance at kernelize time; an instance
    for which it is false keeps its forward. Prefer :func:`use_kernel_forward_from_hub` for classes
    you own: this is for third-party classes.
    """
    if not inspect.isclass(cls):
        raise TypeError(f"replace_kernel_forward_from_hub needs a class, got {cls!r}")
    if not isinstance(layer_name, str) or not layer_name:
        raise TypeError(f"layer name must be a non-empty string, got {layer_name!r}")
    cls.kernel_layer_name = layer_name  # type: ignore[attr-defined]
    # A staticmethod, so that reading it through an instance does not bind the module to it.
    cls.kernel_condition = staticmethod(condition or _always)  # type: ignore[attr-defined]


def function_module_class(func: Callable[..., Any]) -> type[nn.Module]:
    """An ``nn.Module`` class whose ``forward(self, ...)`` calls ``func`` with the same parameters.

    The class carries ``func``'s ``can_torch_compile`` and ``has_backward`` (default ``False`` and
    ``True``) and its name; ``inspect.signature`` of its ``forward`` is ``func``'s with ``self``
    first (a ``functools.wraps`` wrapper shows the wrapped function's parameters).
    """
    from torch import nn

    def forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    signature = inspect.signature(func)
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    forward.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *signature.parameters.values()]
    )
    name = getattr(func, "__name__", "func")
    namespace = {
        "forward": forward,
        "can_torch_compile": getattr(func, "can_torch_compile", False),
        "has_backward": getattr(func, "has_backward", True),
        "__doc__": getattr(func, "__doc__", None),
        "__module__": getattr(func, "__module__", __name__),
        "__qualname__": getattr(func, "__qualname__", name),
    }
    return type(name, (nn.Module,), namespace)


def use_kernel_forward_from_hub(
    layer_name: str, condition: Condition | None = None
) -> Callable[[T], T]:
    """Decorator: mark a class as the layer ``layer_name``, or turn a function into one.

    On a class it marks the class (see :func:`replace_kernel_forward_from_hub`) and returns it. On a
    function it returns one instance of a generated ``nn.Module`` whose ``forward`` calls the
    function (so it is still called like the function); attach it to a class with
    :func:`use_kernelized_func` so ``kernelize`` finds it. Anything else is a ``TypeError``.
    """

    def decorator(obj: T) -> T:
        if inspect.isclass(obj):
            replace_kernel_forward_from_hub(obj, layer_name, condition)  # type: ignore[arg-type]
            return obj
        if inspect.isfunction(obj) or inspect.ismethod(obj):
            cls = function_module_class(obj)
            replace_kernel_forward_from_hub(cls, layer_name, condition)
            return cls()  # type: ignore[return-value]
        raise TypeError(
            f"@use_kernel_forward_from_hub({layer_name!r}) can only be applied to classes or "
            f"functions, not {obj!r}"
        )

    return decorator


def use_kernel_func_from_hub(func_name: str) -> Callable[[T], T]:
    """Deprecated name of :func:`use_kernel_forward_from_hub` for functions (as in 0.17.2)."""
    import logging

    logging.getLogger(__name__).warning(
        "use_kernel_func_from_hub is deprecated; use use_kernel_forward_from_hub instead."
    )
    return use_kernel_forward_from_hub(func_name)


def use_kernelized_func(*funcs: Any) -> Callable[[type[T]], type[T]]:
    """Class decorator: keep the marked functions ``funcs`` in each instance so that
    :func:`~kernels.kernelize` swaps them too.

    Each function must come from :func:`use_kernel_forward_from_hub` (``ValueError`` otherwise). They
    are kept in the instance's ``_kernel_funcs`` (by layer name), not as submodules, so they add
    nothing to ``state_dict`` or ``named_modules``.
    """
    for fn in funcs:
        if not hasattr(fn, "kernel_layer_name"):
            name = getattr(fn, "__name__", repr(fn))
            raise ValueError(
                f"Function `{name}` is not decorated with @use_kernel_forward_from_hub and cannot "
                "be used with @use_kernelized_func"
            )

    def decorator(cls: type[T]) -> type[T]:
        original_init = cls.__init__

        @functools.wraps(original_init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            original_init(self, *args, **kwargs)
            kept = self.__dict__.setdefault("_kernel_funcs", {})
            for fn in funcs:
                kept[getattr(fn, "__name__", None) or fn.kernel_layer_name] = fn

        cls.__init__ = __init__  # type: ignore[misc,method-assign]
        return cls

    return decorator
