"""Augmentations of (image, spectral volume) pairs that keep the motion consistent with the picture.

A spectral volume holds displacements in pixels of its grid, so every geometric change of the image must change
the motion the same way: mirroring negates the x displacements, and resizing scales them by the size ratio
(spectral.resize_spectrum). Photometric changes (exposure, contrast, colour, haze) leave the motion as it is: they
widen the looks of rendered training scenes toward real photos (washed-out skies, haze, under- and over-exposure).
Images are (3, H, W) float in [0, 1], spectra (K, 4, H, W) float in spectral.CHANNELS order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GIDInputError
from ..spectral.transform import resize_spectrum

_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)  # Rec. 601 weights of R, G, B in luma
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


def reshape_motion(spectrum: torch.Tensor, gain: float = 1.0, tilt: float = 0.0) -> torch.Tensor:
    """The same motion, temporally filtered: bin k >= 1 times gain * k ** tilt / c, DC changed so that the
    displacement at t = 0 stays what it was (a pinned frame 0 stays pinned).

    (K, 4, H, W) spectrum in pixels. c keeps the RMS displacement over all pixels unchanged by the tilt, so tilt
    only moves energy between frequencies (tilt > 0 toward faster motion) and gain alone scales the amplitude.
    Frame 0 is untouched, so the picture (and features cached for it) still belong to the motion.
    """
    if spectrum.shape[0] < 2 or (gain == 1.0 and tilt == 0.0):
        return spectrum
    bins = torch.arange(1, spectrum.shape[0], dtype=spectrum.dtype, device=spectrum.device)
    weights = bins**tilt
    power = spectrum[1:].square().sum(dim=(1, 2, 3))  # (K-1,) total |S_k|^2
    norm = torch.sqrt(power.sum() / (power * weights.square()).sum().clamp_min(1e-30)) if tilt else 1.0
    scaled = spectrum[1:] * (gain * norm * weights).view(-1, 1, 1, 1)
    out = torch.cat([spectrum[:1], scaled])
    # x(0) = S_0 + 2 sum_k Re S_k (real channels 0 and 1): keep it.
    out[0, :2] = spectrum[0, :2] - 2.0 * (scaled[:, :2] - spectrum[1:, :2]).sum(dim=0)
    return out


def photometric(
    image: torch.Tensor,
    gamma: float = 1.0,
    contrast: float = 1.0,
    saturation: float = 1.0,
    gain: float = 1.0,
    haze: float = 0.0,
    haze_colour: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> torch.Tensor:
    """A camera- and weather-like change of a (3, H, W) image in [0, 1]; the result stays in [0, 1].

    In order: gamma (exposure curve, pixel ** gamma), contrast about the image mean, saturation (0 is grey, by
    Rec. 601 luma), gain (brighter or darker, clipped as a sensor saturates), then haze: a blend toward
    haze_colour with weight haze in [0, 1]. All defaults leave the image unchanged.
    """
    out = image.clamp(0.0, 1.0) ** gamma
    out = (out - out.mean()) * contrast + out.mean()
    luma = (out * _LUMA.to(out)).sum(0, keepdim=True)
    out = luma + (out - luma) * saturation
    out = (out * gain).clamp(0.0, 1.0)
    colour = torch.tensor(haze_colour, dtype=out.dtype, device=out.device).view(3, 1, 1)
    return out * (1.0 - haze) + colour * haze


@dataclass(frozen=True)
class Augment:
    """Random mirroring, zoom (scale jitter: a random crop resized back to the full size) and photometric change.

    flip_probability: chance of a left-right mirror.
    crop_probability: chance of a zoom; its crop keeps the image's aspect ratio and covers a side fraction drawn
        uniformly from scale_range (so it zooms in by 1 / fraction), at a uniform random position.
    photometric_probability: chance of a `photometric` change with random parameters (gamma 0.6-1.6, contrast
        0.5-1.2, saturation 0.3-1.3, gain 0.8-1.8, haze 0-0.6 toward a pale grey-blue); 0 (the default) draws
        the same random numbers as before it existed, so older runs replay exactly.
    motion_gain_range, tilt_range: a ``reshape_motion`` of every sample with a gain log-uniform and a tilt
        uniform in these ranges (the image is untouched: the motion of a still photo is not unique), to bring
        a generator's amplitudes and spectra toward real ones; the defaults (1, 1) and (0, 0) draw nothing.
    """

    flip_probability: float = 0.5
    crop_probability: float = 0.5
    scale_range: tuple[float, float] = (0.8, 1.0)
    photometric_probability: float = 0.0
    motion_gain_range: tuple[float, float] = (1.0, 1.0)
    tilt_range: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        low, high = self.scale_range
        probabilities = (self.flip_probability, self.crop_probability, self.photometric_probability)
        if not all(0.0 <= p <= 1.0 for p in probabilities):
            raise GIDInputError("augmentation probabilities must be in [0, 1]")
        if not 0.0 < low <= high <= 1.0:
            raise GIDInputError(f"scale_range must satisfy 0 < low <= high <= 1, got {self.scale_range}")
        if not 0.0 < self.motion_gain_range[0] <= self.motion_gain_range[1]:
            raise GIDInputError(f"motion_gain_range must satisfy 0 < low <= high, got {self.motion_gain_range}")
        if not self.tilt_range[0] <= self.tilt_range[1]:
            raise GIDInputError(f"tilt_range must satisfy low <= high, got {self.tilt_range}")

    @property
    def changes_pixels(self) -> bool:
        """Whether it can produce an image other than the stored one or its mirror (zoom or photometric change),
        which features cached per stored image (data.feature_cache) would no longer describe."""
        return self.crop_probability > 0.0 or self.photometric_probability > 0.0

    @property
    def reshapes_motion(self) -> bool:
        """Whether it changes motion amplitudes or spectra (so statistics fitted on the stored data would not hold)."""
        return self.motion_gain_range != (1.0, 1.0) or self.tilt_range != (0.0, 0.0)

    def motion_only(self) -> Augment:
        """The same motion reshaping, without mirroring, zoom or photometric changes."""
        return Augment(0.0, 0.0, self.scale_range, 0.0, self.motion_gain_range, self.tilt_range)

    def __call__(
        self, image: torch.Tensor, spectrum: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment one (3, H, W) image and its (K, 4, H, W) spectrum; the same rng state gives the same result."""
        image, spectrum, _ = self.apply(image, spectrum, rng)
        return image, spectrum

    def apply(
        self, image: torch.Tensor, spectrum: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """As ``__call__``, also saying whether the pair was mirrored (to pick the mirror's cached features)."""
        flip, crop, fraction, y, x = rng.random(5)
        flipped = bool(flip < self.flip_probability)
        if flipped:
            image, spectrum = hflip(image, spectrum)
        if crop < self.crop_probability:
            height, width = image.shape[-2:]
            side = self.scale_range[0] + fraction * (self.scale_range[1] - self.scale_range[0])
            crop_h, crop_w = max(1, math.floor(height * side)), max(1, math.floor(width * side))
            if (crop_h, crop_w) != (height, width):
                top, left = math.floor(y * (height - crop_h + 1)), math.floor(x * (width - crop_w + 1))
                image, spectrum = crop_resize(image, spectrum, (top, left, crop_h, crop_w), (height, width))
        if self.photometric_probability > 0.0 and rng.random() < self.photometric_probability:
            gamma, contrast, saturation, gain, haze, tint, blue = rng.random(7)
            pale = 0.75 + 0.25 * tint
            image = photometric(
                image,
                gamma=0.6 * (1.6 / 0.6) ** gamma,  # log-uniform, so brightening and darkening are as likely
                contrast=0.5 + 0.7 * contrast,
                saturation=0.3 + saturation,
                gain=0.8 + gain,
                haze=0.6 * haze,
                haze_colour=(pale, pale, min(1.0, pale + 0.1 * blue)),
            )
        if self.reshapes_motion:
            gain_draw, tilt_draw = rng.random(2)
            low, high = (math.log(v) for v in self.motion_gain_range)
            gain = math.exp(low + gain_draw * (high - low))
            tilt = self.tilt_range[0] + tilt_draw * (self.tilt_range[1] - self.tilt_range[0])
            spectrum = reshape_motion(spectrum, gain, tilt)
        return image, spectrum, flipped
