"""Photos as the app shows them: read within its limits, previewed, and marked where a poke goes."""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import GIDInputError
from ..limits import APP_MAX_PHOTO_ASPECT, APP_MAX_PHOTO_PIXELS, APP_MIN_PHOTO_SIDE
from ..media.images import fit_long_side, read_image

PREVIEW_SIDE = 768
"""Longer side of the picture shown for choosing a poke point (never enlarged)."""


def load_photo(path: str | os.PathLike[str] | None) -> np.ndarray:
    """Read an uploaded photo as (H, W, 3) uint8 RGB, refusing a missing, unreadable or oversized one.

    The size is checked from the file's header, before anything is decoded.
    """
    if path is None or str(path) == "":
        raise GIDInputError("no photo: upload an image (or pick an example) first")
    too_large = f"the app takes at most {APP_MAX_PHOTO_PIXELS / 1e6:.0f} megapixels, please upload a smaller photo"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit is stricter
            with Image.open(path) as header:
                width, height = header.size
    except Image.DecompressionBombError:
        raise GIDInputError(f"the photo is far too large: {too_large}") from None
    except (OSError, SyntaxError, ValueError):
        raise GIDInputError(
            f"{Path(path).name} is not an image: its contents are not a picture format (JPEG, PNG, WebP, ...)"
        ) from None
    if width * height > APP_MAX_PHOTO_PIXELS:
        raise GIDInputError(f"the photo is too large ({width}x{height}, {width * height / 1e6:.0f} MP): {too_large}")
    if min(width, height) < APP_MIN_PHOTO_SIDE:
        raise GIDInputError(
            f"the photo is too small ({width}x{height}): its shorter side must be at least {APP_MIN_PHOTO_SIDE} px"
        )
    if max(width, height) > APP_MAX_PHOTO_ASPECT * min(width, height):
        raise GIDInputError(
            f"the photo is too elongated ({width}x{height}): its longer side may be at most {APP_MAX_PHOTO_ASPECT:g} "
            f"times its shorter side; crop it first"
        )
    return read_image(path)


def preview_image(image: np.ndarray, long_side: int = PREVIEW_SIDE) -> np.ndarray:
    """The picture shown for choosing a poke point (or to paint on): at most ``long_side`` on the longer side,
    never enlarged."""
    if max(image.shape[:2]) <= long_side:
        return image
    return fit_long_side(image, long_side)


def to_image_pixels(x: float, y: float, source: tuple[int, int], target: tuple[int, int]) -> tuple[float, float]:
    """Map a point from one (width, height) pixel grid of a picture to another: pixel centres stay centres."""
    return (x + 0.5) * target[0] / source[0] - 0.5, (y + 0.5) * target[1] / source[1] - 0.5


def force_vector(direction_degrees: float, force: float) -> tuple[float, float]:
    """(dx, dy) image pixels of a push of ``force`` pixels towards ``direction_degrees`` (0 right, 90 up)."""
    angle = math.radians(direction_degrees)
    return force * math.cos(angle), -force * math.sin(angle)


def draw_poke_marker(image: np.ndarray, x: float, y: float, force: tuple[float, float] | None = None) -> np.ndarray:
    """A copy of (H, W, 3) uint8 with a ring at pixel (x, y) and, if given, a white arrow along force (dx, dy)
    whose length grows with the force up to 10 px (then stays at four ring radii)."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    radius = max(4.0, max(image.shape[:2]) / 60)
    width = max(2, round(radius / 3))
    magnitude = math.hypot(*force) if force is not None else 0.0
    if magnitude > 0:
        ux, uy = force[0] / magnitude, force[1] / magnitude  # type: ignore[index]
        reach = radius + 4 * radius * min(1.0, magnitude / 10)
        tip = (x + ux * reach, y + uy * reach)
        back = (tip[0] - ux * radius, tip[1] - uy * radius)  # the arrow head's base, across (-uy, ux)
        side = (0.6 * radius * -uy, 0.6 * radius * ux)
        head = [tip, (back[0] + side[0], back[1] + side[1]), (back[0] - side[0], back[1] - side[1])]
        draw.line([(x + ux * radius, y + uy * radius), tip], fill=(255, 255, 255), width=width)
        draw.polygon(head, fill=(255, 255, 255))
    box = [x - radius, y - radius, x + radius, y + radius]
    draw.ellipse(box, outline=(0, 0, 0), width=width + 2)
    draw.ellipse(box, outline=(255, 80, 40), width=width)
    return np.asarray(canvas)


def image_digest(image: np.ndarray) -> str:
    """A content hash of an image array (size included): the key of the prediction cache."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16)
    digest.update(repr(image.shape).encode())
    return digest.hexdigest()
