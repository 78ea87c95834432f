"""Pictures of motion: a per-pixel amplitude map drawn as a colour heatmap over its photo, with a scale bar.

Pure functions on arrays (no model, no I/O). Images are (H, W, 3) uint8 RGB; a map is (h, w) float, any unit
(the app passes pixels of displacement), resized to the image when its grid differs (values are not rescaled:
convert units before).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..errors import GIDInputError

SCALE_PERCENTILE = 99.0
"""The top of the colour scale is this percentile of the map (one stray pixel cannot wash out the rest)."""


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (any shape, clipped) -> the same shape + (3,) uint8 RGB of matplotlib's "inferno" map (dark
    purple to yellow, luminance rising throughout: readable on a photo and in grey scale)."""
    from matplotlib import colormaps  # imported on use: the library itself never needs matplotlib

    values = np.clip(np.asarray(values, dtype=np.float64), 0.0, 1.0)
    return colormaps["inferno"](values, bytes=True)[..., :3]


def _as_map(values: np.ndarray | torch.Tensor, height: int, width: int) -> np.ndarray:
    """(h, w) values -> (height, width) float64, bilinear when the grids differ; refuses NaN or wrong shapes."""
    tensor = torch.as_tensor(values).detach().float().cpu()
    if tensor.dim() != 2:
        raise GIDInputError(f"a map to draw is (H, W), got shape {tuple(tensor.shape)}")
    if not bool(torch.isfinite(tensor).all()):
        raise GIDInputError("the map to draw contains NaN or infinite values")
    if tuple(tensor.shape) != (height, width):
        tensor = torch.nn.functional.interpolate(
            tensor[None, None], size=(height, width), mode="bilinear", align_corners=False, antialias=True
        )[0, 0]
    return tensor.double().numpy()


def heatmap_overlay(
    image: np.ndarray,
    values: np.ndarray | torch.Tensor,
    vmax: float | None = None,
    opacity: float = 0.8,
) -> tuple[np.ndarray, float]:
    """Draw a map over its photo: the photo half desaturated, then the colour of each value blended over it.

    Args:
        image: (H, W, 3) uint8 RGB.
        values: (h, w) map >= 0, e.g. motion amplitude in pixels; resized (bilinear) to H x W when different.
        vmax: the value shown at the top of the colour scale; None: the map's SCALE_PERCENTILE-th percentile.
        opacity: blend weight of the colour at vmax, in [0, 1]; a value v gets opacity * min(v / vmax, 1), so
            where the map is 0 the (desaturated) photo shows unchanged.

    Returns:
        ((H, W, 3) uint8 picture, the vmax used). A map that is 0 everywhere gives vmax 0 and no colour.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise GIDInputError(f"the photo to draw on must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if not 0.0 <= opacity <= 1.0:
        raise GIDInputError(f"opacity must be in [0, 1], got {opacity}")
    height, width = image.shape[:2]
    field = np.maximum(_as_map(values, height, width), 0.0)
    if vmax is None:
        vmax = float(np.percentile(field, SCALE_PERCENTILE))
    if not (np.isfinite(vmax) and vmax >= 0):
        raise GIDInputError(f"vmax must be a finite number >= 0, got {vmax}")
    level = np.clip(field / vmax, 0.0, 1.0) if vmax > 0 else np.zeros_like(field)
    photo = image.astype(np.float64)
    grey = photo @ np.array([0.299, 0.587, 0.114])
    base = 0.5 * photo + 0.5 * grey[..., None]
    weight = (opacity * level)[..., None]
    picture = (1.0 - weight) * base + weight * colormap(level).astype(np.float64)
    return np.rint(picture).clip(0, 255).astype(np.uint8), float(vmax)


def with_scale_bar(picture: np.ndarray, vmax: float, unit: str = "px") -> np.ndarray:
    """The picture with a colour bar underneath, labelled 0 at the left and ``vmax`` (in ``unit``) at the right.

    Args:
        picture: (H, W, 3) uint8 (e.g. heatmap_overlay's).
        vmax: the value at the bar's right end.

    Returns:
        (H + bar height, W, 3) uint8; the bar is about 1/12 of the width high (at least 18 px for the labels).
    """
    height, width = picture.shape[:2]
    bar_height = max(18, width // 12)
    ramp = colormap(np.linspace(0.0, 1.0, width))  # (W, 3)
    bar = np.repeat(ramp[None], bar_height, axis=0)
    canvas = Image.fromarray(np.concatenate([picture, bar], axis=0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=max(10, bar_height * 2 // 3))
    top = height + bar_height // 2
    draw.text((4, top), "0", fill=(255, 255, 255), font=font, anchor="lm")
    draw.text((width - 4, top), f"{vmax:.2g} {unit}", fill=(0, 0, 0), font=font, anchor="rm")
    return np.asarray(canvas)
