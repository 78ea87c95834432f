"""Motion controls: how a spectral volume plays, changed without touching the picture or the model.

Pure functions from a SpectralVolume to a SpectralVolume (or a map), vectorised over frequencies and pixels (the
player composes them with the loop's timing, gid_pipeline.player):

- ``band_limited``: keep only the frequency slices inside a band, in Hz of the volume as given;
- ``masked``: a soft (H, W) mask in [0, 1] multiplies every displacement (0 holds a region still);
- ``scaled``: multiply every displacement by an amplitude (linear; a negative one flips the motion);
- ``amplitude_map``: the RMS displacement of each pixel over one loop, in pixels, for heatmaps.

Spectral volumes are (K, 4, H, W) float, pixels of their H x W grid, channels (x.real, y.real, x.imag, y.imag),
slice k at k * fps / num_frames Hz (spectral_volume.SpectralVolume). Bad values raise GIDInputError naming them.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import replace

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GIDInputError
from ..rendering.loop import ASPECT_TOLERANCE
from .volume import SpectralVolume

__all__ = ["amplitude_map", "band_limited", "masked", "scaled"]

# Band edges are compared with the bins' frequencies to within this fraction of the Nyquist frequency, so that a
# band given as (0.2, 1.0) keeps the bins at exactly 0.2 and 1.0 Hz despite floating-point rounding.
_BAND_TOLERANCE = 1e-9

FrequencyBand = tuple[float | None, float | None]
Mask = torch.Tensor | np.ndarray


def _is_real(value: object) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_volume(volume: object) -> None:
    if not isinstance(volume, SpectralVolume):
        raise GIDInputError(
            f"need a SpectralVolume (spectrum plus num_frames and fps), got {type(volume).__name__}; wrap a bare "
            f"tensor as SpectralVolume(spectrum, num_frames, fps)"
        )


def band_limited(volume: SpectralVolume, low_hz: float | None = None, high_hz: float | None = None) -> SpectralVolume:
    """Keep the frequency slices with low_hz <= f_k <= high_hz; zero the others.

    Args:
        volume: (K, 4, H, W) spectral volume; slice k is at k * fps / num_frames Hz (volume.frequencies_hz).
        low_hz, high_hz: band edges in Hz, each in [0, fps / 2] (the Nyquist frequency), low <= high; None means
            no limit on that side. A band holding no slice gives a volume without motion; the DC slice (0 Hz)
            never moves anything (frame 0 is pinned), so keeping or dropping it changes no frame.

    Returns:
        A new SpectralVolume with the same time base.

    Raises:
        GIDInputError: an edge that is not a number in [0, Nyquist], or low_hz > high_hz.
    """
    _check_volume(volume)
    nyquist = volume.fps / 2.0
    for name, value in (("low_hz", low_hz), ("high_hz", high_hz)):
        if value is not None and not (_is_real(value) and 0.0 <= value <= nyquist):
            raise GIDInputError(
                f"{name} must be a frequency in [0, {nyquist:g}] Hz (the Nyquist frequency at {volume.fps:g} fps), "
                f"got {value!r}"
            )
    if low_hz is not None and high_hz is not None and low_hz > high_hz:
        raise GIDInputError(f"frequency band is reversed: low_hz {low_hz:g} > high_hz {high_hz:g}")
    frequencies = volume.frequencies_hz  # (K,) float64
    tolerance = _BAND_TOLERANCE * nyquist
    keep = torch.ones_like(frequencies, dtype=torch.bool)
    if low_hz is not None:
        keep &= frequencies >= low_hz - tolerance
    if high_hz is not None:
        keep &= frequencies <= high_hz + tolerance
    weights = keep.to(volume.spectrum.device, volume.spectrum.dtype).view(-1, 1, 1, 1)
    return replace(volume, spectrum=volume.spectrum * weights)


def _mask_tensor(mask: object, size: tuple[int, int]) -> torch.Tensor:
    """A region mask -> (H, W) float32 in [0, 1] on the volume's grid (resized when the aspect ratios agree)."""
    if isinstance(mask, np.ndarray):
        mask = torch.from_numpy(np.ascontiguousarray(mask))
    if not isinstance(mask, torch.Tensor):
        raise GIDInputError(f"region mask must be an (H, W) tensor or numpy array, got {type(mask).__name__}")
    if mask.dim() != 2:
        raise GIDInputError(f"region mask must be 2-D (H, W), got shape {tuple(mask.shape)}")
    mask = mask.detach().float()  # bool and integer masks too
    if mask.numel() == 0 or not bool(torch.isfinite(mask).all()):
        raise GIDInputError("region mask must be non-empty and hold finite values")
    low, high = float(mask.min()), float(mask.max())
    if low < 0.0 or high > 1.0:
        raise GIDInputError(f"region mask values must be in [0, 1], got values from {low:g} to {high:g}")
    height, width = size
    mask_height, mask_width = mask.shape
    if (mask_height, mask_width) == (height, width):
        return mask
    if abs((mask_width / mask_height) / (width / height) - 1.0) > ASPECT_TOLERANCE:
        raise GIDInputError(
            f"region mask is {mask_width}x{mask_height} but the motion is {width}x{height} (width x height): their "
            f"aspect ratios differ"
        )
    resized = F.interpolate(mask[None, None], size=(height, width), mode="bilinear", antialias=True,
                            align_corners=False)  # fmt: skip
    return resized[0, 0].clamp_(0.0, 1.0)


def masked(volume: SpectralVolume, mask: Mask) -> SpectralVolume:
    """Multiply every displacement by a soft region mask: 1 moves as before, 0 holds still, between scales.

    Args:
        volume: (K, 4, H, W) spectral volume.
        mask: (h, w) float (or bool) values in [0, 1], a tensor or numpy array; resized bilinearly (antialiased)
            to H x W when the aspect ratios agree (to within rendering.ASPECT_TOLERANCE).

    Returns:
        A new SpectralVolume with the same time base. Pixels where the mask is 0 have no motion; in a rendered
        frame they stay exactly as in the input image unless a moving neighbour is splatted over them.

    Raises:
        GIDInputError: not a 2-D array, values outside [0, 1] or not finite, or another aspect ratio.
    """
    _check_volume(volume)
    weights = _mask_tensor(mask, volume.size).to(volume.spectrum.device, volume.spectrum.dtype)
    return replace(volume, spectrum=volume.spectrum * weights)


def scaled(volume: SpectralVolume, amplitude: float) -> SpectralVolume:
    """Multiply every displacement by ``amplitude`` (any finite number: 0 is still, negative flips the motion).

    Returns:
        A new SpectralVolume, spectrum * amplitude, same time base.
    """
    _check_volume(volume)
    if not _is_real(amplitude):
        raise GIDInputError(f"amplitude must be a finite number, got {amplitude!r}")
    return replace(volume, spectrum=volume.spectrum * float(amplitude))


def amplitude_map(volume: SpectralVolume) -> torch.Tensor:
    """How far each pixel swings: the RMS over one loop of its displacement about its mean position.

    Exact by Parseval: over the T = num_frames frames of a period, F_t = sum_k 2 Re(S_k e^(2 pi i k t / T)) - F_0
    has mean square about its mean sum_k 2 |S_k|^2 per axis (4 Re(S_k)^2 for a bin at exactly T / 2), summed over
    x and y. A single harmonic of amplitude A pixels gives A / sqrt(2). Phase-independent, linear in |amplitude|.

    Args:
        volume: (K, 4, H, W) spectral volume, pixels.

    Returns:
        (H, W) float32 RMS displacement in pixels, on the volume's device.
    """
    _check_volume(volume)
    spectrum = volume.spectrum.float()
    k = torch.arange(1, volume.num_frequencies, device=spectrum.device)
    # (K - 1, 4) weights for (x.real, y.real, x.imag, y.imag): 2 for each, except at the Nyquist bin.
    at_nyquist = (2 * k == volume.num_frames).float().unsqueeze(1)
    weights = 2.0 + at_nyquist * torch.tensor([2.0, 2.0, -2.0, -2.0], device=spectrum.device)
    power = spectrum[1:].square().flatten(2)  # (K - 1, 4, H*W)
    mean_square = torch.einsum("kc,kcp->p", weights, power)
    return mean_square.sqrt().view(volume.size)
