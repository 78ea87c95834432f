"""The ffmpeg binary that the imageio-ffmpeg wheel ships (no system ffmpeg needed), and small helpers shared by
the reader and the writer: argument checks and the telling line of ffmpeg's log."""

from __future__ import annotations

import math
import numbers
import re
from typing import Any

import imageio_ffmpeg

SCALE_FLAGS = "accurate_rnd+full_chroma_int+full_chroma_inp"


def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def is_count(x: Any, minimum: int = 1) -> bool:
    """An integer (not bool) >= minimum."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= minimum


def is_rate(x: Any) -> bool:
    """A finite real number > 0."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def is_size(size: Any) -> bool:
    """A (width, height) pair of positive integers."""
    return isinstance(size, (tuple, list)) and len(size) == 2 and all(is_count(s) for s in size)


def ffmpeg_complaint(stderr: str) -> str:
    """The most telling line of ffmpeg's log, for an error message."""
    # Without ffmpeg's "[component @ 0x...]" prefixes.
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", ln.strip()) for ln in stderr.splitlines() if ln.strip()]
    for key in ("partial file", "moov atom not found", "Invalid data found", "Invalid argument", "rror"):
        for ln in lines:
            if key in ln:
                return ln
    return lines[-1] if lines else "no output"
