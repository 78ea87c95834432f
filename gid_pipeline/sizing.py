"""Image sizing, written once: the grid the model samples on, the size a video is rendered at, and sizes with a
given long side. Sizes are in pixels; video sides are even (H.264 with yuv420p needs even sides)."""

from __future__ import annotations

import math

from .errors import GIDInputError
from .limits import MIN_IMAGE_SIDE

# The resolution the paper's (and our default) model is trained at, (height, width).
NATIVE_SIZE = (160, 256)
# Default cap on the long side of the rendered video (the motion is sampled at 256x160 whatever the output size).
DEFAULT_MAX_LONG_SIDE = 512


def model_resolution(
    height: int, width: int, multiple: int, native_size: tuple[int, int] = NATIVE_SIZE
) -> tuple[int, int]:
    """The grid the model samples on for an image of height x width: (model_height, model_width).

    Keeps the image's aspect ratio and the native pixel count (256 x 160 = 40960 by default): both sides are scaled
    by sqrt(native pixels / image pixels) and rounded to the nearest multiple of ``multiple`` (the VAE's x the
    U-Net's downsampling, 32 for the default models). A side that would round to zero becomes one multiple and the
    other side then keeps the pixel count. A 256x160 image samples at 256x160, a square one at 192x192, a 3:1 one at
    352x128, a 125:1 strip at 1280x32; a 16:9 one rounds to 256x160 (the spectrum is resized back to the output grid
    with x and y scaled separately, so rounding never distorts the motion's geometry).

    Args:
        height, width: the image (or output) size in pixels.
        multiple: the sides of the result are multiples of it.
        native_size: (height, width) the model was trained at.

    Returns:
        (model_height, model_width) in pixels.
    """
    if min(height, width, multiple) < 1:
        raise GIDInputError(f"need positive sizes, got {height}x{width} (h x w) and multiple {multiple}")
    pixels = native_size[0] * native_size[1]
    scale = math.sqrt(pixels / (height * width))
    model_height, model_width = (round(side * scale / multiple) * multiple for side in (height, width))
    if model_height < multiple:
        model_height, model_width = multiple, max(multiple, round(pixels / multiple / multiple) * multiple)
    elif model_width < multiple:
        model_height, model_width = max(multiple, round(pixels / multiple / multiple) * multiple), multiple
    return model_height, model_width


def output_resolution(
    image_height: int,
    image_width: int,
    height: int | None = None,
    width: int | None = None,
    max_long_side: int = DEFAULT_MAX_LONG_SIDE,
) -> tuple[int, int]:
    """The size a video is rendered at: (height, width), both even (H.264 yuv420p needs even sides).

    Both given: exactly those (they must be even). One given: the other follows the image's aspect ratio. None:
    the image's size, scaled down so that its long side is at most ``max_long_side``. Computed odd sides round to
    the nearest even number.
    """

    def even(value: float) -> int:
        return max(2, 2 * round(value / 2))

    aspect = image_width / image_height
    if height is not None and width is not None:
        if height % 2 or width % 2 or height < MIN_IMAGE_SIDE or width < MIN_IMAGE_SIDE:
            raise GIDInputError(f"height and width must be even and >= {MIN_IMAGE_SIDE}, got {height}x{width} (h x w)")
        return height, width
    if height is not None:
        return even(height), even(height * aspect)
    if width is not None:
        return even(width / aspect), even(width)
    shrink = min(1.0, max_long_side / max(image_height, image_width))
    return even(image_height * shrink), even(image_width * shrink)


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(width, height) with the longer side ``long_side``, the aspect ratio kept, both sides even."""
    scale = long_side / max(width, height)
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))
