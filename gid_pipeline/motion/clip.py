"""The spectral volume of a real clip: classical optical flow from its first frame, then the temporal DFT.

This is how ground-truth motion is measured for training and evaluation, and what ``gid from-video`` uses to
turn a short clip of something swaying into a seamless loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import GIDInputError
from ..spectral.transform import DEFAULT_NUM_FREQUENCIES, fit_loop_spectrum
from ..spectral.volume import SpectralVolume
from .flow import estimate_flow, flow_jitter, sample_fields

DRIFT_TAPER = 0.2
"""Taper of a loop fitted without a closing frame: its drift is still in it, and the fit eases through the jump."""
CLOSING_BLEND = 0.1
"""Share of a loop period at its end measured from the closing frame rather than from frame 0 (closed_trajectory)."""
# A clip whose largest per-pixel motion amplitude stays below this many pixels has nothing to loop.
MIN_MOTION_PIXELS = 0.05


@dataclass(frozen=True)
class ClipMotion:
    """A clip's first frame and the spectral volume of its motion.

    Attributes:
        image: (H, W, 3) uint8 RGB, frame 0 of the analysed window.
        volume: spectral volume on the same H x W grid.
        camera_motion: (T,) pixels of global motion removed per frame, or None if not stabilised.
        flow_noise: (H, W) float32 pixels, the flow's frame-to-frame noise per pixel (flow.flow_jitter), or None
            for a clip of fewer than 3 frames.
    """

    image: np.ndarray
    volume: SpectralVolume
    camera_motion: np.ndarray | None
    flow_noise: np.ndarray | None = None
    drift: np.ndarray | None = None
    """(H, W) float32 pixels: how far each pixel had drifted over one period (the flow to the closing frame),
    removed before fitting the loop; None without a closing frame."""


def closed_trajectory(forward: torch.Tensor, backward: torch.Tensor) -> torch.Tensor:
    """One loop period's displacements, measured near its end from the closing frame, with the drift removed.

    A flow measured from frame 0 grows noisier the further a frame is from it, so the last step of the period,
    the one the loop's seam repeats, would be its noisiest (tree.avi: the mean step grows from 0.1 px near frame 0
    to 0.2 px at frame 29, making the seam step 1.4x-1.6x the median step). Over the last CLOSING_BLEND of the
    period the trajectory is measured from the closing frame T instead, which looks like frame 0: pixel p, at
    p + F_T(p) in frame T, is at B_t(p) = F_T(p) + G_t(p + F_T(p)) in frame t. With w(t) rising linearly from 0 to
    1 over that stretch, and the drift F_T removed (t / T of it from frame t, as without the closing reference),

        D_t(p) = (1 - w(t)) F_t(p) + w(t) B_t(p) - (t/T) F_T(p),

    so D_0 = 0, D_t -> 0 as t -> T (the trajectory returns where it started), both sides of the seam are measured
    from nearby frames, and the rest of the period is the flow from frame 0 as it was (blending the two
    references over the whole period averaged away up to a fifth of some clips' motion).

    Args:
        forward: (T + 1, 2, H, W) pixels, F_t: flow from frame 0 to frames 0..T (F_0 = 0).
        backward: (T + 1, 2, H, W) pixels, G_t: flow from the closing frame T to frames 0..T (G_T = 0).

    Returns:
        (T, 2, H, W) pixels, D_0..D_{T-1}.
    """
    if forward.shape != backward.shape or forward.ndim != 4 or forward.shape[1] != 2 or forward.shape[0] < 2:
        raise GIDInputError(f"forward and backward flows must be (T + 1, 2, H, W) alike, got "
                            f"{tuple(forward.shape)} and {tuple(backward.shape)}")  # fmt: skip
    num_frames = forward.shape[0] - 1
    time = (torch.arange(num_frames, dtype=forward.dtype) / num_frames).view(-1, 1, 1, 1)
    weight = ((time - (1.0 - CLOSING_BLEND)) / CLOSING_BLEND).clamp(0.0, 1.0)
    drift = forward[num_frames]
    blended = weight.flatten() > 0  # the closing frame's flow is read (and needed) only there
    from_end = forward[:num_frames].clone()
    from_end[blended] = drift + sample_fields(backward[:num_frames][blended], drift)
    return (1.0 - weight) * forward[:num_frames] + weight * from_end - time * drift


def clip_motion(
    frames: np.ndarray,
    fps: float,
    num_frequencies: int = DEFAULT_NUM_FREQUENCIES,
    method: str = "dis",
    stabilize: str = "none",
    loop_taper: float | None = None,
    progress: bool = False,
    closing_frame: np.ndarray | None = None,
) -> ClipMotion:
    """Spectral volume of a clip's motion, measured from its first frame.

    Args:
        frames: (T, H, W, 3) uint8 RGB; frame 0 is the still the motion belongs to, T the loop period.
        fps: frame rate of ``frames``.
        num_frequencies: K lowest frequencies kept (spacing fps / T Hz).
        method, stabilize: optical flow method and camera-motion removal (flow.estimate_flow).
        loop_taper: fraction of frames faded at each end when fitting the loop (spectral.fit_loop_spectrum);
            0 fits all frames equally. None: 0 with a closing frame (the drift is removed, so the trajectory
            closes and fading its ends would only round off real motion at the seam: tree.avi's motion seam
            ratio is 0.77 with 0, 1.90 with 0.2), else DRIFT_TAPER.
        closing_frame: (H, W, 3) the frame one period after frame 0 (the clip's frame T), for a loop: where
            things have drifted by then (the flow to it) is removed linearly over the period, t / T of it from
            frame t, so that the trajectories return to where they started and the loop closes without a snap
            back (motion.loop_window picks windows whose closing frame matches frame 0); the period's last tenth
            is measured from the closing frame (closed_trajectory), so the seam is not its noisiest step.

    Raises:
        GIDInputError: too few frames for K, or no motion in the clip.
    """
    num_frames = frames.shape[0]
    if num_frames < 2 * (num_frequencies - 1):
        raise GIDInputError(
            f"a {num_frames}-frame clip can hold at most {num_frames // 2 + 1} frequencies; {num_frequencies} "
            f"need at least {2 * (num_frequencies - 1)} frames"
        )
    analysed = frames if closing_frame is None else np.concatenate([frames, closing_frame[None]])
    result = estimate_flow(analysed, method=method, stabilize=stabilize, progress=progress)
    flow, drift = torch.from_numpy(result.flow), None
    if closing_frame is not None:
        # Only the frames closed_trajectory reads from the closing frame need its flow (a tenth of the period).
        first = math.floor((1.0 - CLOSING_BLEND) * num_frames)
        backward = torch.zeros_like(flow)
        backward[first:] = torch.from_numpy(estimate_flow(analysed[first:], method=method,
                                                          reference=num_frames - first, stabilize=stabilize).flow)
        drift = flow[-1].norm(dim=0).numpy()
        flow = closed_trajectory(flow, backward)
    if loop_taper is None:
        loop_taper = 0.0 if closing_frame is not None else DRIFT_TAPER
    spectrum = fit_loop_spectrum(flow, num_frequencies, loop_taper)
    volume = SpectralVolume(spectrum, num_frames, fps)
    peak = float(volume.amplitude()[1:].sum(dim=0).amax()) if num_frequencies > 1 else 0.0
    if peak < MIN_MOTION_PIXELS:
        raise GIDInputError(
            f"no motion found in the clip: its largest oscillation is {peak:.3f} px (need >= {MIN_MOTION_PIXELS})"
        )
    noise = flow_jitter(flow.numpy()) if num_frames >= 3 else None
    camera = result.camera_motion
    if camera is not None and closing_frame is not None:
        camera = camera[:-1]
    return ClipMotion(image=frames[0], volume=volume, camera_motion=camera, flow_noise=noise, drift=drift)
