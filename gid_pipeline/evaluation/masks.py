"""Which pixels move: the moving / still / uncertain masks of the motion evaluation (DESIGN.md, section 7).

Written down once, here. Every quantity is on the evaluation grid (e.g. 256x160); grey levels are 0-255 luma
(Rec. 601 weights) of frames Gaussian-blurred with sigma GREY_BLUR_PX.

Prepared datasets (exact procedural motion): the amplitude mask of metrics.moving_mask, still = the rest,
nothing uncertain (amplitude_masks).

Real clips (clip_masks). Optical flow on dark, flickering or noisy footage reports motion everywhere: on a black
background around a candle flame, on a plain wall under moving leaf shadows or behind a swinging bauble, DIS fills
the untextured area with several pixels of smooth, made-up motion. So a pixel of a real clip's window is judged by
four measurements:

    A(p)    true motion amplitude (metrics.motion_amplitude of the window's spectral volume), pixels;
    G(p)    temporal std over the window's frames of the blurred grey level (grey_change): does the picture
            visibly change there?
    tau(p)  texture of the first frame (texture): RMS gradient of the blurred grey levels over a DIS-patch-sized
            Gaussian window (sigma TEXTURE_WINDOW_PX), grey levels per pixel; below TEXTURE_MIN the flow has
            nothing to track and its amplitude is no evidence either way (the plain wall a bauble swings across
            changes, but does not move);
    N       flow noise floor: the median over the frame of sigma(p) sqrt(2 (K - 1) / T), the in-band amplitude
            the flow's frame-to-frame jitter sigma (flow.flow_jitter) alone would give (noise_amplitude).

    threshold  T_move = max(MOVING_MIN_PX, MOVING_RELATIVE x 99th percentile of A, NOISE_FACTOR x N)
    moving     A > T_move  and  G > MOVING_GREY_STD  and  tau >= TEXTURE_MIN
    still      G < STILL_GREY_STD  and  (A < STILL_FRACTION x T_move  or  tau < TEXTURE_MIN)
    uncertain  the rest: left out of the AUROC

Ignored pixels (boxes of an ignore file, evaluation.ignore) are in none of the three masks, and the percentile and
the median are taken over the other pixels. The numbers were chosen by looking at the masks of the 14 real_val
clips and tests/data/tree.avi (DESIGN.md section 7: masks a person would agree with): candle flames moving against
a still dark background, leaf shadows moving on a still plain wall, the swinging bauble moving against the wall
(the arc it sweeps uncertain), swaying trees against the sky, breaking waves against sky and sand. Typical values
there at 256x160: G of a visibly moving texture 3-60 levels, of a still dark or plain background 0-1.5; tau of a
plain wall or black background < 0.5, of foliage 4-17 levels/px; N 0.01-0.2 px on clean footage, 1.6-2 px on the
darkest candle clips (where it, not the percentile, sets the threshold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import GIDInputError
from ..models.render_losses import gaussian_window
from ..spectral.guided import LUMA
from .metrics import MOVING_MIN_PX, MOVING_PERCENTILE, MOVING_RELATIVE, moving_threshold, quantile

GREY_BLUR_PX = 1.0
MOVING_GREY_STD = 3.0
STILL_GREY_STD = 1.5
STILL_FRACTION = 0.5
TEXTURE_WINDOW_PX = 4.0
TEXTURE_MIN = 1.0
NOISE_FACTOR = 2.0


@dataclass(frozen=True)
class MotionMasks:
    """Moving, still and ignored pixels of one case; (H, W) bool each, moving, still and ignore disjoint.

    Attributes:
        threshold: T_move in pixels. noise_floor: N in pixels (0 for prepared datasets).
    """

    moving: torch.Tensor
    still: torch.Tensor
    ignore: torch.Tensor
    threshold: float
    noise_floor: float = 0.0

    @property
    def uncertain(self) -> torch.Tensor:
        """(H, W) bool: neither moving, still nor ignored."""
        return ~(self.moving | self.still | self.ignore)

    @property
    def scored(self) -> torch.Tensor:
        """(H, W) bool: the pixels that enter threshold-free metrics (all but the ignored)."""
        return ~self.ignore


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, 1, H, W) float images, same size (edges replicated), taps to 3 sigma."""
    radius = max(1, math.ceil(3.0 * sigma))
    taps = gaussian_window(2 * radius + 1, sigma, images.dtype, images.device)
    padded = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    rows = F.conv2d(padded, taps.view(1, 1, 1, -1))
    return F.conv2d(rows, taps.view(1, 1, -1, 1))


def grey_levels(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 RGB -> (T, 1, H, W) float32 luma in 0-255, blurred with sigma GREY_BLUR_PX."""
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise GIDInputError(f"frames must be (T, H, W, 3) RGB, got shape {frames.shape}")
    luma = torch.from_numpy(np.ascontiguousarray(frames)).float() @ torch.tensor(LUMA)
    return gaussian_blur(luma.unsqueeze(1), GREY_BLUR_PX)


def grey_change(frames: np.ndarray) -> torch.Tensor:
    """G: (H, W) float32 temporal std (population) of the blurred grey levels of (T, H, W, 3) frames, levels."""
    return grey_levels(frames).std(dim=0, correction=0)[0]


def texture(frame: np.ndarray) -> torch.Tensor:
    """tau: (H, W) float32 RMS gradient of the blurred grey levels of one (H, W, 3) frame over a Gaussian window
    of sigma TEXTURE_WINDOW_PX, grey levels per pixel (central differences, edges replicated)."""
    grey = grey_levels(frame[None])
    padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")
    dx = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2.0
    dy = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2.0
    return gaussian_blur(dx.square() + dy.square(), TEXTURE_WINDOW_PX).clamp_min(0.0).sqrt()[0, 0]


def noise_amplitude(flow_noise: torch.Tensor, num_frames: int, num_frequencies: int) -> torch.Tensor:
    """(H, W) in-band amplitude, pixels, of white flow noise of RMS flow_noise (H, W) px per frame.

    White noise of E|n_t|^2 = sigma^2 puts E|S_k|^2 = sigma^2 / T in each bin of the forward-normalised DFT, so
    the K - 1 kept oscillating bins give amplitude sqrt(2 sum_k |S_k|^2) = sigma sqrt(2 (K - 1) / T).
    """
    return flow_noise * math.sqrt(2.0 * (num_frequencies - 1) / num_frames)


def clip_masks(
    amplitude: torch.Tensor,
    grey_std: torch.Tensor,
    texture_map: torch.Tensor,
    noise: torch.Tensor,
    ignore: torch.Tensor | None = None,
) -> MotionMasks:
    """The masks of a real clip's window (module docstring).

    Args:
        amplitude: A, (H, W) true amplitude in pixels.
        grey_std: G, (H, W) grey levels (grey_change).
        texture_map: tau, (H, W) grey levels per pixel (texture).
        noise: (H, W) in-band noise amplitude in pixels (noise_amplitude); its median is N.
        ignore: (H, W) bool pixels left out of everything, or None.
    """
    shape = amplitude.shape
    if any(m.shape != shape for m in (grey_std, texture_map, noise)) or (ignore is not None and ignore.shape != shape):
        raise GIDInputError(f"mask inputs must all be {tuple(shape)} maps")
    ignore = torch.zeros(shape, dtype=torch.bool) if ignore is None else ignore.bool()
    kept = ~ignore
    if not bool(kept.any()):
        raise GIDInputError("the ignore region covers the whole frame")
    noise_floor = float(noise[kept].median())
    relative = MOVING_RELATIVE * quantile(amplitude[kept], MOVING_PERCENTILE / 100.0)
    threshold = max(MOVING_MIN_PX, relative, NOISE_FACTOR * noise_floor)
    untrackable = texture_map < TEXTURE_MIN
    moving = (amplitude > threshold) & (grey_std > MOVING_GREY_STD) & ~untrackable & kept
    still = (grey_std < STILL_GREY_STD) & ((amplitude < STILL_FRACTION * threshold) | untrackable) & kept
    return MotionMasks(moving, still, ignore, threshold, noise_floor)


def amplitude_masks(amplitude: torch.Tensor) -> MotionMasks:
    """The masks of exact (procedural) motion: moving = metrics.moving_mask, still = the rest, nothing ignored."""
    threshold = moving_threshold(amplitude)
    moving = amplitude > threshold
    return MotionMasks(moving, ~moving, torch.zeros_like(moving), threshold)
