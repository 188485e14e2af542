"""``Mode``: what a model is kernelized for, and which registered modes serve each request."""

from __future__ import annotations

from enum import Flag, auto


class Mode(Flag):
    """What :func:`~kernels.kernelize` selects layers for, and what a mapping registers them for.

    ``INFERENCE`` and ``TRAINING`` exclude each other; either may be combined with
    ``TORCH_COMPILE``. ``FALLBACK`` is only for mappings: the layer used when no other mode matches
    (a bare repository in a mapping means ``{Mode.FALLBACK: repository}``).
    """

    FALLBACK = auto()
    TRAINING = auto()
    INFERENCE = auto()
    TORCH_COMPILE = auto()

    def __or__(self, other: object) -> Mode:
        union = super().__or__(other)  # type: ignore[operator]
        if not isinstance(union, Mode):
            return union  # type: ignore[no-any-return]
        if Mode.INFERENCE in union and Mode.TRAINING in union:
            raise ValueError("Mode.INFERENCE and Mode.TRAINING are mutually exclusive.")
        if Mode.FALLBACK in union and union != Mode.FALLBACK:
            raise ValueError("Mode.FALLBACK cannot be combined with other modes.")
        return union


# For each mode kernelize accepts, the registered modes that may serve it, best first. Training
# never borrows an inference layer (it may lack a backward); a compiled model only takes layers
# registered for torch.compile; every request may end at FALLBACK.
_SERVED_BY: dict[Mode, tuple[Mode, ...]] = {
    Mode.INFERENCE: (
        Mode.INFERENCE,
        Mode.INFERENCE | Mode.TORCH_COMPILE,
        Mode.TRAINING,
        Mode.TRAINING | Mode.TORCH_COMPILE,
        Mode.FALLBACK,
    ),
    Mode.TRAINING: (Mode.TRAINING, Mode.TRAINING | Mode.TORCH_COMPILE, Mode.FALLBACK),
    Mode.INFERENCE | Mode.TORCH_COMPILE: (
        Mode.INFERENCE | Mode.TORCH_COMPILE,
        Mode.TRAINING | Mode.TORCH_COMPILE,
        Mode.FALLBACK,
    ),
    Mode.TRAINING | Mode.TORCH_COMPILE: (Mode.TRAINING | Mode.TORCH_COMPILE, Mode.FALLBACK),
}

REGISTRABLE: frozenset[Mode] = frozenset({*_SERVED_BY, Mode.FALLBACK})
"""The modes a mapping may register a repository for."""


def check_kernelize_mode(mode: object) -> Mode:
    """Return ``mode`` if :func:`~kernels.kernelize` accepts it; raise ``ValueError`` otherwise."""
    if not isinstance(mode, Mode):
        raise TypeError(f"mode must be a kernels.Mode, got {mode!r}")
    if mode == Mode.FALLBACK:
        raise ValueError("Mode.FALLBACK can only be used to register kernel mappings.")
    if mode not in _SERVED_BY:
        raise ValueError(
            f"kernelize mode must contain Mode.INFERENCE or Mode.TRAINING (optionally "
            f"| Mode.TORCH_COMPILE), got {mode}"
        )
    return mode


def served_by(mode: Mode) -> tuple[Mode, ...]:
    """The registered modes that may serve a ``kernelize(mode=mode)`` request, best first."""
    return _SERVED_BY[check_kernelize_mode(mode)]
