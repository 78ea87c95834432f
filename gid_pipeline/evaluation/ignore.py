"""Ignore regions: parts of a clip left out of every motion metric (cars passing behind swaying trees).

An ignore file is JSON mapping clip file names (a video's name, without folders) to boxes, each box
[x0, y0, x1, y1] in fractions of the clip's own frame (0 = left / top, 1 = right / bottom, x0 < x1, y0 < y1), as a
list of boxes or as {"boxes": [...], "reason": "why"}:

    {"trees_fall.mp4": {"boxes": [[0.0, 0.62, 1.0, 1.0]], "reason": "cars pass on the road"}}

Names of clips that are not evaluated are allowed (one file serves several folders). A box covers the pixels of the
evaluation grid whose centres fall inside it once the frame is centre-cropped and resized to the grid as the clip is.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.builder import cover_size
from ..errors import GIDInputError

Box = tuple[float, float, float, float]


def _box(value: Any, clip: str, path: Path) -> Box:
    if not (
        isinstance(value, (list, tuple))
        and len(value) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    ):
        raise GIDInputError(f"ignore file {path}: a box of {clip} must be 4 numbers [x0, y0, x1, y1], got {value!r}")
    x0, y0, x1, y1 = (float(v) for v in value)
    if not (0.0 <= x0 < x1 <= 1.0 and 0.0 <= y0 < y1 <= 1.0):
        raise GIDInputError(f"ignore file {path}: box {list(value)} of {clip} must have 0 <= x0 < x1 <= 1 and "
                            "0 <= y0 < y1 <= 1 (fractions of the frame)")  # fmt: skip
    return x0, y0, x1, y1


def load_ignore(path: str | Path) -> dict[str, tuple[Box, ...]]:
    """The boxes of an ignore file (module docstring) per clip file name.

    Raises:
        GIDInputError: a missing or unreadable file, invalid JSON, or an entry that is not a list of valid boxes
            (the message names the clip).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GIDInputError(f"ignore file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GIDInputError(f"cannot read ignore file {path}: {error}") from None
    if not isinstance(data, dict):
        raise GIDInputError(f"ignore file {path} must hold a JSON object mapping clip names to boxes")
    regions = {}
    for clip, entry in data.items():
        boxes = entry.get("boxes") if isinstance(entry, dict) else entry
        if not isinstance(boxes, list):
            raise GIDInputError(f'ignore file {path}: {clip} must map to a list of boxes or to {{"boxes": [...]}}')
        regions[clip] = tuple(_box(box, clip, path) for box in boxes)
    return regions


def ignore_mask(boxes: tuple[Box, ...], source_size: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """(height, width) bool: grid pixels inside any box.

    Args:
        boxes: fractions of the source frame (load_ignore).
        source_size: (width, height) of the clip's frames.
        size: (width, height) of the evaluation grid; the frame is resized to cover it and centre-cropped
            (data.builder.cover_size and centre_crop).
    """
    width, height = size
    cover_width, cover_height = cover_size(source_size, size)
    left, top = (cover_width - width) // 2, (cover_height - height) // 2
    xs = (np.arange(width) + left + 0.5) / cover_width
    ys = (np.arange(height) + top + 0.5) / cover_height
    mask = np.zeros((height, width), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        mask |= ((ys >= y0) & (ys < y1))[:, None] & ((xs >= x0) & (xs < x1))[None, :]
    return torch.from_numpy(mask)
