"""Reading numeric settings from the environment, with errors that name the variable.

A bad value is the user's mistake, not the Hub's: it is reported as such (``KernelsError``
naming the variable, its value and what it accepts), before any request is made.
"""

from __future__ import annotations

import math
import os

from kernels.errors import KernelsError


def env_number(
    name: str, default: float, *, integer: bool = False, positive: bool = False
) -> float:
    """The number in environment variable ``name``; ``default`` when it is unset or empty.

    Accepts numbers >= 0 (> 0 with ``positive``; whole numbers only with ``integer``); anything
    else raises ``KernelsError`` naming the variable and what it accepts.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    kind = ("a whole number" if integer else "a number") + (" > 0" if positive else " >= 0")
    try:
        value = float(int(raw)) if integer else float(raw)
    except ValueError:
        value = math.nan
    if not (value > 0 if positive else value >= 0) or math.isinf(value):
        raise KernelsError(f"{name}={raw!r} is not valid: set it to {kind}, or unset it")
    return value
