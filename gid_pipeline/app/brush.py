"""The Loop tab's motion brush: what the user painted over the photo, as a motion-mask image for the pipeline.

The brush paints white ("moves") or black ("stays still") into the editor's layers, over the photo as background;
what is left unpainted (transparent) is unknown, for the model to decide. gid_pipeline.motion.mask reads such an
image; nothing here thresholds or resizes a mask itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import PIL.Image
import torch

from ..errors import GIDInputError
from ..motion.mask import mask_from_image, to_motion_mask
from .photos import image_digest


@dataclass(frozen=True)
class PaintedMask:
    """A painting of the motion brush as a mask image, compared and hashed by its content (a cache key).

    Attributes:
        pixels: (H, W, 2) uint8, grey level and opacity: white moves, black stays still, transparent unknown.
        digest: content hash of pixels (size included).
    """

    pixels: np.ndarray = field(compare=False, repr=False)
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        if self.pixels.ndim != 3 or self.pixels.shape[2] != 2 or self.pixels.dtype != np.uint8:
            raise GIDInputError(f"a painted mask is (H, W, 2) uint8, got {self.pixels.shape} {self.pixels.dtype}")
        object.__setattr__(self, "digest", image_digest(self.pixels))

    def image(self) -> PIL.Image.Image:
        """The painting as an "LA" mask image, as the pipeline's motion_mask takes it."""
        return PIL.Image.fromarray(self.pixels, "LA")

    def fitted(self, height: int, width: int) -> torch.Tensor:
        """(2, height, width) float32 motion mask for a photo of that size (motion.mask.to_motion_mask).

        Raises:
            GIDInputError: the painting has another aspect ratio than the photo.
        """
        return to_motion_mask(self.image(), height, width)


def painted_mask(value: Mapping[str, Any] | None) -> PaintedMask | None:
    """The motion brush's painting in a gr.ImageEditor value, or None when nothing was painted.

    Only the layers count (the background is the photo): they are stacked in order, then a white pixel of them means
    moves, a black one stays still, a transparent one (unpainted or erased) unknown.

    Args:
        value: the editor's value (EditorValue, type "numpy"): {"layers": [(H, W, 4) uint8 RGBA (or (H, W, 3) RGB,
            opaque; or (H, W) grey), ...], ...}, or None.

    Returns:
        The stacked layers as a PaintedMask, or None if no layer holds a pixel that says moves or stays still (no
        mask: the model's ordinary prior).

    Raises:
        GIDInputError: layers of different sizes, or not images.
    """
    layers = list((value or {}).get("layers") or [])
    if not layers:
        return None
    stacked = _stack(layers)
    if not mask_from_image(stacked[..., 0] / 255.0, stacked[..., 1] / 255.0).any():
        return None
    return PaintedMask(stacked)


def _stack(layers: Sequence[np.ndarray]) -> np.ndarray:
    """Layers, each over the ones before it -> (H, W, 2) uint8 grey level and opacity."""
    sizes = {np.shape(layer)[:2] for layer in layers}
    if len(sizes) > 1:
        raise GIDInputError(f"the motion brush's layers differ in size: {sorted(sizes)}")
    images = []
    for layer in layers:
        array = np.asarray(layer)
        if array.dtype != np.uint8 or array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
            raise GIDInputError(f"a motion brush layer must be a uint8 grey, RGB or RGBA image, got {array.shape} "
                                f"{array.dtype}")  # fmt: skip
        images.append(PIL.Image.fromarray(array).convert("RGBA"))
    canvas = PIL.Image.new("RGBA", images[0].size, (0, 0, 0, 0))
    for image in images:
        canvas = PIL.Image.alpha_composite(canvas, image)
    return np.asarray(canvas.convert("LA"))
