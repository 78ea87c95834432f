"""Augmentations of (image, spectral volume) pairs that keep the motion consistent with the picture.

A spectral volume holds displacements in pixels of its grid, so every geometric change of the image must change
the motion the same way: mirroring negates the x displacements, and resizing scales them by the size ratio
(spectral.resize_spectrum). Images are (3, H, W) float, spectra (K, 4, H, W) float in spectral.CHANNELS order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GIDInputError
from ..spectral import resize_spectrum

# Mirroring left-right flips the sign of the x.real and x.imag channels (channel order of spectral.CHANNELS).
_FLIP_SIGN = torch.tensor([-1.0, 1.0, -1.0, 1.0]).view(4, 1, 1)


def hflip(image: torch.Tensor, spectrum: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror left-right: (C, H, W) image and (K, 4, H, W) spectrum flipped along W, x displacements negated."""
    return image.flip(-1), spectrum.flip(-1) * _FLIP_SIGN.to(spectrum)


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(C, h, w) float -> (C, height, width), size = (height, width); the interpolation of resize_spectrum
    (bilinear, area-antialiased when shrinking), so picture and motion are resampled alike."""
    height, width = size
    antialias = height < image.shape[-2] or width < image.shape[-1]
    resized = F.interpolate(image[None], size=size, mode="bilinear", align_corners=False, antialias=antialias)
    return resized[0]


def crop_resize(
    image: torch.Tensor, spectrum: torch.Tensor, box: tuple[int, int, int, int], size: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Crop both to box = (top, left, height, width) pixels, then resize both to size = (height, width).

    Displacements scale with the resize: 2 px on a 256-wide crop become 1 px at 128 wide, or 4 px when a
    128-wide crop is enlarged to 256.
    """
    top, left, height, width = box
    if (
        top < 0
        or left < 0
        or height < 1
        or width < 1
        or top + height > image.shape[-2]
        or left + width > image.shape[-1]
    ):
        raise GIDInputError(f"crop box {box} does not fit a {image.shape[-1]}x{image.shape[-2]} image")
    image = image[..., top : top + height, left : left + width]
    spectrum = spectrum[..., top : top + height, left : left + width]
    return resize_image(image, size), resize_spectrum(spectrum, size)


@dataclass(frozen=True)
class Augment:
    """Random mirroring and zoom (scale jitter: a random crop resized back to the full size).

    flip_probability: chance of a left-right mirror.
    crop_probability: chance of a zoom; its crop keeps the image's aspect ratio and covers a side fraction drawn
        uniformly from scale_range (so it zooms in by 1 / fraction), at a uniform random position.
    """

    flip_probability: float = 0.5
    crop_probability: float = 0.5
    scale_range: tuple[float, float] = (0.8, 1.0)

    def __post_init__(self) -> None:
        low, high = self.scale_range
        if not (0.0 <= self.flip_probability <= 1.0 and 0.0 <= self.crop_probability <= 1.0):
            raise GIDInputError("augmentation probabilities must be in [0, 1]")
        if not 0.0 < low <= high <= 1.0:
            raise GIDInputError(f"scale_range must satisfy 0 < low <= high <= 1, got {self.scale_range}")

    def __call__(
        self, image: torch.Tensor, spectrum: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment one (3, H, W) image and its (K, 4, H, W) spectrum; the same rng state gives the same result."""
        flip, crop, fraction, y, x = rng.random(5)
        if flip < self.flip_probability:
            image, spectrum = hflip(image, spectrum)
        if crop < self.crop_probability:
            height, width = image.shape[-2:]
            side = self.scale_range[0] + fraction * (self.scale_range[1] - self.scale_range[0])
            crop_h, crop_w = max(1, math.floor(height * side)), max(1, math.floor(width * side))
            if (crop_h, crop_w) != (height, width):
                top, left = math.floor(y * (height - crop_h + 1)), math.floor(x * (width - crop_w + 1))
                image, spectrum = crop_resize(image, spectrum, (top, left, crop_h, crop_w), (height, width))
        return image, spectrum
