"""The one validation helper for numbers a caller passes (the pipeline, the player, the app and the CLI use it):
each bad value is a GIDInputError that names the argument and says what it must be."""

from __future__ import annotations

import math
import numbers
from typing import Any

from .errors import GIDInputError


def is_real(value: Any) -> bool:
    """A finite real number (not a bool; numpy scalars count)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(float(value))


def check_number(
    name: str,
    value: Any,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    integer: bool = False,
    low_open: bool = False,
) -> float | int:
    """``value`` as a float (an int with integer=True) if it is a finite number in [low, high] ((low, high] with
    low_open), else a GIDInputError naming ``name``."""
    if not is_real(value):
        raise GIDInputError(f"{name} must be a finite number, got {value!r}")
    value = float(value)
    below = value <= low if low_open else value < low
    if below or value > high:
        left = "(" if low_open else "["
        raise GIDInputError(f"{name} must be in {left}{low:g}, {high:g}], got {value:g}")
    if integer:
        if value != int(value):
            raise GIDInputError(f"{name} must be a whole number, got {value:g}")
        return int(value)
    return value


def check_pair(name: str, value: Any, layout: str) -> tuple[float, float]:
    """A pair of finite numbers, e.g. a poke's point (x, y) or force (dx, dy)."""
    try:
        first, second = value
    except (TypeError, ValueError):
        raise GIDInputError(f"{name} must be a pair of numbers {layout}, got {value!r}") from None
    return check_number(f"{name}[0]", first), check_number(f"{name}[1]", second)
