"""Motion masks: where the user says the photo moves, stays still, or leaves it to the model.

A motion mask is (2, H, W) float32 in [0, 1]: channel 0 the fraction of each pixel painted "moves", channel 1
painted "stays still"; (0, 0) is unknown, so an all-zero mask asks nothing and the model is the ordinary prior. In
a mask *image* (``gid generate --mask``, the app's brush) white means moves, black stays still, and mid grey or
transparent unknown. A FrequencyUNet trained with ``motion_mask=True`` takes it as a condition; training draws
such masks from the true motion (data.motion_masks).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F

from ..errors import GIDInputError

# A mask image's grey level (0-1) at or above which a pixel means "moves", at or below which "stays still".
MOVES_LEVEL, STILL_LEVEL = 0.75, 0.25
# Aspect ratios of a mask and its photo may differ by this much (relative): rounding of resized sides.
ASPECT_TOLERANCE = 0.02

MaskInput = PIL.Image.Image | np.ndarray | torch.Tensor | str | os.PathLike


def mask_from_image(levels: np.ndarray, alpha: np.ndarray | None = None) -> np.ndarray:
    """A painted mask image -> a (2, H, W) float32 motion mask.

    Args:
        levels: (H, W) grey levels in [0, 1]: >= MOVES_LEVEL moves, <= STILL_LEVEL stays still, between unknown.
        alpha: optional (H, W) opacity in [0, 1]; transparent (< 0.5) pixels are unknown.

    Raises:
        GIDInputError: NaN or values outside [0, 1].
    """
    if levels.ndim != 2:
        raise GIDInputError(f"a mask must be one (H, W) grey image, got shape {levels.shape}")
    for name, values in (("mask", levels), ("mask alpha", alpha)):
        if values is None:
            continue
        if not np.isfinite(values).all():
            raise GIDInputError(f"the {name} contains NaN or infinite values")
        if values.min() < 0.0 or values.max() > 1.0:
            raise GIDInputError(
                f"the {name} must lie in [0, 1] (white moves, black stays still), got "
                f"{values.min():g}..{values.max():g}"
            )
    opaque = np.ones(levels.shape, bool) if alpha is None else alpha >= 0.5
    return np.stack([(levels >= MOVES_LEVEL) & opaque, (levels <= STILL_LEVEL) & opaque]).astype(np.float32)


def _levels_and_alpha(mask: MaskInput) -> tuple[np.ndarray, np.ndarray | None]:
    """Any accepted mask -> (H, W) float grey levels in [0, 1] and an optional (H, W) alpha (unchecked)."""
    if isinstance(mask, (str, os.PathLike, Path)):
        try:
            with PIL.Image.open(mask) as opened:
                mask = opened.copy()
        except (OSError, PIL.UnidentifiedImageError) as error:
            raise GIDInputError(f"cannot read the mask image {mask}: {error}") from None
    if isinstance(mask, PIL.Image.Image):
        has_alpha = mask.mode in ("RGBA", "LA", "PA") or (mask.mode == "P" and "transparency" in mask.info)
        converted = mask.convert("LA")
        levels = np.asarray(converted, np.float32) / 255.0
        return levels[..., 0], (levels[..., 1] if has_alpha else None)
    if isinstance(mask, torch.Tensor):
        mask = mask.detach().cpu().numpy()
    if not isinstance(mask, np.ndarray):
        raise GIDInputError(
            f"a motion mask must be a PIL image, an (H, W) array or tensor, or an image file, got {type(mask).__name__}"
        )
    if mask.ndim != 2:
        raise GIDInputError(f"a motion mask array must be (H, W) grey levels, got shape {mask.shape}")
    if mask.dtype == np.uint8:
        return mask.astype(np.float32) / 255.0, None
    if mask.dtype == bool:
        return mask.astype(np.float32), None
    if not np.issubdtype(mask.dtype, np.floating):
        raise GIDInputError(f"a motion mask array must be uint8, bool or float in [0, 1], got {mask.dtype}")
    return mask.astype(np.float32), None


def to_motion_mask(
    mask: MaskInput, height: int, width: int, photo_size: tuple[int, int] | None = None
) -> torch.Tensor:
    """A painted mask in any accepted form -> (2, height, width) float32 motion mask for a photo of that size.

    The mask may have any size with the photo's aspect ratio; it is resized by area (the result holds fractions
    near the edges of painted regions). photo_size: (height, width) of the photo when the grid is another's (the
    model's, whose sides are rounded to its multiple: a 4:3 photo samples on a 224x192 grid); the mask must have
    the photo's aspect ratio, and is stretched to the grid as the photo is.

    Raises:
        GIDInputError: unreadable, wrong dimensions, NaN or values outside [0, 1], another aspect ratio.
    """
    levels, alpha = _levels_and_alpha(mask)
    channels = torch.from_numpy(mask_from_image(levels, alpha))
    mask_height, mask_width = levels.shape
    photo_height, photo_width = photo_size or (height, width)
    aspect = photo_width / photo_height
    if min(mask_height, mask_width) < 1 or abs(mask_width / mask_height - aspect) > ASPECT_TOLERANCE * aspect:
        raise GIDInputError(
            f"the motion mask is {mask_width}x{mask_height}, the photo {photo_width}x{photo_height}: paint the mask "
            "on the photo (the same aspect ratio)"
        )
    if (mask_height, mask_width) == (height, width):
        return channels
    return F.interpolate(channels[None], size=(height, width), mode="bilinear", antialias=True,
                         align_corners=False)[0].clamp_(0.0, 1.0)  # fmt: skip


def hold_still(spectra: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Honour "stays still" exactly: scale each pixel's motion by the share of it not painted still.

    Args:
        spectra: (B, K, 4, H, W) spectral volumes, pixels.
        masks: (B, 2, h, w) motion masks on any grid of the same aspect ratio (resized bilinearly to H x W).

    Returns:
        (B, K, 4, H, W): zero where the mask is all "stays still", unchanged where nothing is painted still.
    """
    still = masks[:, 1:].to(spectra)
    if still.shape[-2:] != spectra.shape[-2:]:
        still = F.interpolate(still, size=spectra.shape[-2:], mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    return spectra * (1.0 - still).unsqueeze(1)
