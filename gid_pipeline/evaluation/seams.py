"""How visible a loop's seam is: the step from its last frame back to its first, against its ordinary steps.

A loop that plays seamlessly has a seam step |x[T-1] -> x[0]| like any other step |x[t] -> x[t+1]|; a frame that
stands out (the photo pasted at frame 0 while the others are rendered, an encoder's key frame, a trajectory that
snaps back) makes it larger. Both ratios are 1 for a perfect loop:

    seam ratio = mean_p |x_0(p) - x_{T-1}(p)| / median_t mean_p |x_{t+1}(p) - x_t(p)|

on decoded frames (grey levels, x the (H, W, 3) frame) or on displacements (pixels, x the (2, H, W) field).
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import GIDInputError


def _seam_ratio(steps: torch.Tensor, seam: torch.Tensor) -> float:
    """Mean |seam| over the median of the mean |step| of each ordinary step; inf for a still loop with a seam."""
    typical = float(steps.flatten(1).mean(dim=1).median())
    jump = float(seam.mean())
    if typical == 0.0:
        return 0.0 if jump == 0.0 else float("inf")
    return jump / typical


def pixel_seam_ratio(frames: np.ndarray | torch.Tensor) -> float:
    """Seam ratio of one loop period of frames: (T, H, W, 3) uint8 (decoded video) or float, T >= 3."""
    video = torch.as_tensor(np.asarray(frames) if not isinstance(frames, torch.Tensor) else frames).float()
    if video.ndim != 4 or video.shape[0] < 3:
        raise GIDInputError(f"a loop to measure is (T >= 3, H, W, C) frames, got shape {tuple(video.shape)}")
    return _seam_ratio((video[1:] - video[:-1]).abs(), (video[0] - video[-1]).abs())


def motion_seam_ratio(displacements: torch.Tensor) -> float:
    """Seam ratio of a loop's motion: (T, 2, H, W) displacements in pixels of one period, T >= 3; the step of a
    pixel is the length of its displacement change."""
    if displacements.ndim != 4 or displacements.shape[1] != 2 or displacements.shape[0] < 3:
        raise GIDInputError(f"a loop's motion is (T >= 3, 2, H, W), got shape {tuple(displacements.shape)}")
    motion = displacements.double()
    steps = (motion[1:] - motion[:-1]).norm(dim=1)
    return _seam_ratio(steps, (motion[0] - motion[-1]).norm(dim=0))
