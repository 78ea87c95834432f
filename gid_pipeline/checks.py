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
        raise GIDInputError(f"{name} must be {_range_words(low, high, low_open)}, got {value:g}")
    if integer:
        if value != int(value):
            raise GIDInputError(f"{name} must be a whole number, got {value:g}")
        return int(value)
    return value


def _range_words(low: float, high: float, low_open: bool) -> str:
    """'between 1 and 100', 'greater than 0', 'at least 2', 'at most 5', 'greater than 0 and at most 60'."""
    lower = (f"greater than {low:g}" if low_open else f"at least {low:g}") if math.isfinite(low) else ""
    upper = f"at most {high:g}" if math.isfinite(high) else ""
    if lower and upper and not low_open:
        return f"between {low:g} and {high:g}"
    return " and ".join(part for part in (lower, upper) if part) or "finite"


def check_pair(name: str, value: Any, layout: str) -> tuple[float, float]:
    """A pair of finite numbers, e.g. a poke's point (x, y) or force (dx, dy)."""
    try:
        first, second = value
    except (TypeError, ValueError):
        raise GIDInputError(f"{name} must be a pair of numbers {layout}, got {value!r}") from None
    return check_number(f"{name}[0]", first), check_number(f"{name}[1]", second)
