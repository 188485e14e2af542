"""``Device`` keys of a kernel mapping, with CUDA / ROCm capability ranges."""

from __future__ import annotations

import sys
from dataclasses import dataclass


def _check_range(kind: str, min_capability: object, max_capability: object) -> None:
    for name, value in (("min_capability", min_capability), ("max_capability", max_capability)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{kind}.{name} must be an int (e.g. 90 for 9.0), got {value!r}")
    assert isinstance(min_capability, int) and isinstance(max_capability, int)
    if min_capability > max_capability:
        raise ValueError(
            f"min_capability ({min_capability}) must be <= max_capability ({max_capability})"
        )


@dataclass(frozen=True)
class CUDAProperties:
    """The CUDA compute capabilities a mapping entry serves, inclusive (``86`` is 8.6)."""

    min_capability: int
    max_capability: int

    def __post_init__(self) -> None:
        _check_range("CUDAProperties", self.min_capability, self.max_capability)


@dataclass(frozen=True)
class ROCMProperties:
    """The ROCm capabilities (``major * 10 + minor`` of the gfx arch) a mapping entry serves."""

    min_capability: int
    max_capability: int

    def __post_init__(self) -> None:
        _check_range("ROCMProperties", self.min_capability, self.max_capability)


@dataclass(frozen=True)
class Device:
    """A device type (``"cuda"``, ``"rocm"``, ``"cpu"``, ``"mps"``, ``"xpu"``, ...) as a mapping key.

    ``properties`` narrows a ``cuda`` entry to :class:`CUDAProperties` and a ``rocm`` entry to
    :class:`ROCMProperties`; without them the entry serves every capability.
    """

    type: str
    properties: CUDAProperties | ROCMProperties | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.type, str) or not self.type:
            raise TypeError(
                f"Device.type must be a device type name such as 'cuda', got {self.type!r}"
            )
        if isinstance(self.properties, CUDAProperties) and self.type != "cuda":
            raise ValueError("CUDAProperties is only supported for 'cuda' devices.")
        if isinstance(self.properties, ROCMProperties) and self.type != "rocm":
            raise ValueError("ROCMProperties is only supported for 'rocm' devices.")
        if self.properties is not None and not isinstance(
            self.properties, (CUDAProperties, ROCMProperties)
        ):
            raise TypeError(
                f"Device.properties must be CUDAProperties or ROCMProperties, got {self.properties!r}"
            )

    @property
    def capability_range(self) -> tuple[int, int]:
        """The inclusive capability range this key serves (everything without properties)."""
        if self.properties is None:
            return ANY_CAPABILITY
        return (self.properties.min_capability, self.properties.max_capability)


ANY_CAPABILITY: tuple[int, int] = (0, sys.maxsize)
"""The range of a key without properties, and the only one non-GPU device types have."""
