"""argparse value types shared by the ``gid`` subcommands: each parses one option and names what is wrong."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..media.writer import VIDEO_SUFFIXES


def size(text: str) -> tuple[int, int]:
    """'256x160' -> (256, 160) as (width, height)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x160 (width x height), got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return width, height


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def seed(text: str) -> int:
    """A random seed: an integer in 0..MAX_SEED (torch generators take 64-bit seeds)."""
    from ..limits import MAX_SEED

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a seed is a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed must be between 0 and {MAX_SEED}, got {text}")
    return value


def long_side(text: str) -> int:
    """A video's longer side in pixels: MIN_IMAGE_SIDE..MAX_LONG_SIDE."""
    from ..limits import MAX_LONG_SIDE, MIN_IMAGE_SIDE

    value = positive_int(text)
    if not MIN_IMAGE_SIDE <= value <= MAX_LONG_SIDE:
        raise argparse.ArgumentTypeError(
            f"the long side must be between {MIN_IMAGE_SIDE} and {MAX_LONG_SIDE} px, got {value}"
        )
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return value


def taper(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"must be in [0, 0.5), got {text}")
    return value


def pair(text: str) -> tuple[float, float]:
    """'120,45' -> (120.0, 45.0)."""
    try:
        first, second = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers like 120,45, got {text!r}") from None
    return first, second


def video_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise argparse.ArgumentTypeError(f"output must end in one of {', '.join(VIDEO_SUFFIXES)}, got {text!r}")
    return path
