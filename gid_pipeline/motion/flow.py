"""Long-range dense optical flow: the ground-truth motion that spectral volumes are fitted to.

Every frame of a clip is matched *directly* against one reference frame (frame 0 by default) with OpenCV's
classical estimators, instead of chaining frame-to-frame flow, whose errors accumulate into drift
(``benchmarks/bench_flow.py`` measures both). Optionally the global camera motion is removed and a
forward-backward consistency mask marks the pixels whose flow can be trusted.

Conventions: frames are uint8 (T, H, W, 3) RGB; flow is float32 (T, 2, H, W) in pixels, channel 0 = x
(columns), 1 = y (rows); pixel p of the reference frame is at p + flow[t][:, p] in frame t, and
flow[reference] is exactly 0.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..errors import GIDInputError

Method = Literal["dis", "tvl1"]
Stabilize = Literal["none", "median", "homography"]

METHODS: tuple[str, ...] = ("dis", "tvl1")
STABILIZE_MODES: tuple[str, ...] = ("none", "median", "homography")
# DIS needs frames larger than its 8 px patches; one limit for every method keeps the rule simple.
MIN_SIDE = 16
# Points fed to the RANSAC homography fit: plenty for 8 unknowns, and the fit stays ~1 ms per frame.
_HOMOGRAPHY_POINTS = 4096
_RANSAC_THRESHOLD_PX = 1.0


@dataclass(frozen=True)
class FlowResult:
    """Output of :func:`estimate_flow`.

    Attributes:
        flow: (T, 2, H, W) float32, pixels; displacement from the reference frame to frame t, camera motion
            removed if stabilisation was requested. ``flow[reference]`` is exactly zero.
        reliability: (T, H, W) bool, True where the forward-backward check passed (see
            :func:`forward_backward_consistency`); ``reliability[reference]`` is all True. None unless
            requested.
        camera_motion: (T,) float32, pixels; mean over the frame of the magnitude of the removed global
            displacement (0 at the reference). None when ``stabilize="none"``.
    """

    flow: np.ndarray
    reliability: np.ndarray | None
    camera_motion: np.ndarray | None


def create_estimator(method: Method = "dis") -> cv2.DenseOpticalFlow:
    """A configured OpenCV dense-flow estimator; ``.calc(gray0, gray1, None)`` gives (H, W, 2) float32 pixels.

    DIS: the MEDIUM preset refined down to full resolution (finest scale 0 instead of the preset's 1, i.e.
    half resolution). On synthetic oscillations at 256x160 this cuts the end-point error by a third and still
    runs ~90 pairs/s on 2 cores; a denser patch stride or more variational iterations cost ~40 % of the speed
    for no gain. TV-L1: OpenCV's defaults (5 scales, 5 warps); fewer scales or warps were barely faster and
    lost accuracy on motions beyond ~10 px.
    """
    if method == "dis":
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)
        return dis
    if method == "tvl1":
        return cv2.optflow.DualTVL1OpticalFlow_create()
    raise GIDInputError(f"unknown optical flow method {method!r}; expected one of {METHODS}")


def estimate_flow(
    frames: np.ndarray,
    *,
    method: Method = "dis",
    reference: int = 0,
    stabilize: Stabilize = "none",
    reliability: bool = False,
    progress: bool = False,
) -> FlowResult:
    """Dense flow from frame ``reference`` directly to every frame of a clip.

    Args:
        frames: (T, H, W, 3) uint8 RGB, T >= 2, H and W >= 16.
        method: "dis" (fast, default) or "tvl1" (some 40x slower); both run on grayscale.
        reference: index of the frame that every flow starts from.
        stabilize: "none"; "median" subtracts each frame's median flow (camera translation); "homography"
            fits a homography per frame with RANSAC and expresses the flow in frame t warped back onto the
            reference by it (camera pan, tilt, zoom and roll of a distant scene).
        reliability: also compute the backward flow and a forward-backward consistency mask (twice the cost).
        progress: show a tqdm progress bar.

    Returns:
        A :class:`FlowResult`; ``flow`` is (T, 2, H, W) float32 pixels.

    Raises:
        GIDInputError: on a malformed clip or an unknown option.
    """
    _check_frames(frames)
    estimator = create_estimator(method)  # also validates ``method``
    if stabilize not in STABILIZE_MODES:
        raise GIDInputError(f"unknown stabilize mode {stabilize!r}; expected one of {STABILIZE_MODES}")
    n_frames, height, width = frames.shape[:3]
    try:
        reference = operator.index(reference)
    except TypeError:
        raise GIDInputError(f"reference frame must be an integer, got {reference!r}") from None
    if not 0 <= reference < n_frames:
        raise GIDInputError(f"reference frame {reference} is out of range for a clip of {n_frames} frames")

    gray = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in frames]
    flow = np.zeros((n_frames, 2, height, width), np.float32)
    mask = np.ones((n_frames, height, width), bool) if reliability else None
    others = [t for t in range(n_frames) if t != reference]
    # Sequential on purpose: OpenCV already spreads each DIS call over the cores; a Python thread pool on top
    # gained at most ~10 % on 2 cores. Initialising a pair with the previous pair's flow left the error
    # unchanged on oscillations (benchmarks/bench_flow.py), so every pair starts from scratch.
    for t in tqdm(others, desc=f"optical flow ({method})", unit="frame", disable=not progress):
        forward = estimator.calc(gray[reference], gray[t], None)
        flow[t] = forward.transpose(2, 0, 1)
        if mask is not None:
            backward = estimator.calc(gray[t], gray[reference], None)
            mask[t] = forward_backward_consistency(flow[t], backward.transpose(2, 0, 1))

    camera_motion = None
    if stabilize != "none":
        camera_motion = np.zeros(n_frames, np.float32)
        flow[others], camera_motion[others] = remove_camera_motion(flow[others], stabilize)
    return FlowResult(flow=flow, reliability=mask, camera_motion=camera_motion)


def sample_fields(fields: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Fields read at displaced points: out[n](p) = fields[n](p + d_n(p)), bilinear, edges replicated.

    Args:
        fields: (N, C, H, W) float, e.g. flows in pixels or images.
        displacement: (2, H, W) pixels for every field, or (N, 2, H, W) one per field; channel 0 = x (columns),
            1 = y (rows); pixel centres at integers.

    Returns:
        (N, C, H, W), the dtype of fields.
    """
    count, _, height, width = fields.shape
    shift = displacement.to(device=fields.device, dtype=fields.dtype).expand(count, 2, height, width)
    xs = torch.arange(width, dtype=fields.dtype, device=fields.device).view(1, 1, width) + shift[:, 0]
    ys = torch.arange(height, dtype=fields.dtype, device=fields.device).view(1, height, 1) + shift[:, 1]
    grid = torch.stack([xs * (2.0 / max(width - 1, 1)) - 1.0, ys * (2.0 / max(height - 1, 1)) - 1.0], dim=-1)
    return F.grid_sample(fields, grid, mode="bilinear", padding_mode="border", align_corners=True)


def forward_backward_consistency(
    forward: np.ndarray, backward: np.ndarray, *, alpha: float = 0.01, beta: float = 0.5
) -> np.ndarray:
    """Pixels whose forward flow is undone by the backward flow at its end point.

    The criterion of Sundaram et al. (ECCV 2010): with w = forward(p) and w' = backward(p + w),
    |w + w'|^2 < alpha * (|w|^2 + |w'|^2) + beta. Pixels whose forward flow leaves the frame fail too.

    Args:
        forward: (2, H, W) float32, pixels, reference -> frame t.
        backward: (2, H, W) float32, pixels, frame t -> reference.
        alpha: tolerance growing with the motion (dimensionless, on squared lengths).
        beta: constant tolerance, squared pixels (0.5 allows ~0.7 px of round-trip error).

    Returns:
        (H, W) bool, True where the flow is consistent.
    """
    height, width = forward.shape[1:]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    end_x, end_y = xs + forward[0], ys + forward[1]
    back = np.stack(
        [cv2.remap(c, end_x, end_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) for c in backward]
    )
    round_trip = np.sum((forward + back) ** 2, axis=0)
    tolerance = alpha * (np.sum(forward**2, axis=0) + np.sum(back**2, axis=0)) + beta
    inside = (end_x >= 0) & (end_x <= width - 1) & (end_y >= 0) & (end_y <= height - 1)
    return (round_trip < tolerance) & inside


def remove_camera_motion(
    flow: np.ndarray, mode: Literal["median", "homography"]
) -> tuple[np.ndarray, np.ndarray]:
    """Remove the global (camera) part of each frame's flow.

    Args:
        flow: (N, 2, H, W) float32, pixels, reference -> frame t.
        mode: "median": subtract the per-frame median flow vector. "homography": fit a homography H to the
            flow of a pixel grid with RANSAC and return H^-1(p + flow(p)) - p, the flow to frame t warped back
            by H (what flow on a stabilised video would give; for a translation it equals the subtraction).

    Returns:
        flow: (N, 2, H, W) float32, pixels, with the camera motion removed.
        camera_motion: (N,) float32, pixels; mean over pixels of |g(p)|, the removed global displacement.
    """
    if mode == "median":
        shift = np.median(flow, axis=(2, 3)).astype(np.float32)
        return flow - shift[:, :, None, None], np.linalg.norm(shift, axis=1).astype(np.float32)
    if mode != "homography":
        raise GIDInputError(f"unknown camera motion mode {mode!r}; expected 'median' or 'homography'")

    height, width = flow.shape[2:]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    points = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size, np.float32)])  # (3, H*W) homogeneous
    stride = max(1, round(np.sqrt(height * width / _HOMOGRAPHY_POINTS)))
    grid = np.stack([xs[::stride, ::stride].ravel(), ys[::stride, ::stride].ravel()], axis=1)
    out = np.empty_like(flow)
    motion = np.empty(len(flow), np.float32)
    for i, f in enumerate(flow):
        moved = grid + np.stack([f[0, ::stride, ::stride].ravel(), f[1, ::stride, ::stride].ravel()], axis=1)
        homography, _ = cv2.findHomography(grid, moved, cv2.RANSAC, _RANSAC_THRESHOLD_PX, maxIters=2000)
        if homography is None:  # RANSAC found no model (degenerate flow): fall back to a pure translation
            homography = np.eye(3)
            homography[:2, 2] = np.median(f, axis=(1, 2))
        camera = _apply_homography(homography, points)
        motion[i] = np.linalg.norm(camera - points[:2], axis=0).mean()
        ends = points.copy()
        ends[:2] += f.reshape(2, -1)
        out[i] = (_apply_homography(np.linalg.inv(homography), ends) - points[:2]).reshape(2, height, width)
    return out, motion


def flow_jitter(flow: np.ndarray) -> np.ndarray:
    """Frame-to-frame noise of each pixel's measured trajectory: the RMS noise displacement per frame.

    For white noise n_t added to a smooth trajectory, the second difference n_{t+1} - 2 n_t + n_{t-1} has
    E|.|^2 = 6 E|n|^2, while a smooth motion's second difference is small (a 3 Hz oscillation at 30 fps keeps
    about 0.4 of its amplitude). So sigma(p) = sqrt(mean_t |F_{t+1} - 2 F_t + F_{t-1}|^2 / 6) estimates the RMS
    of the noise vector |n_t| (both components together).

    Args:
        flow: (T, 2, H, W) float32 pixels, T >= 3.

    Returns:
        (H, W) float32 sigma in pixels.
    """
    if flow.ndim != 4 or flow.shape[1] != 2 or flow.shape[0] < 3:
        raise GIDInputError(f"flow jitter needs a (T >= 3, 2, H, W) flow, got shape {flow.shape}")
    second = flow[2:] - 2.0 * flow[1:-1] + flow[:-2]
    return np.sqrt(np.square(second).sum(axis=1).mean(axis=0) / 6.0).astype(np.float32)


def _apply_homography(homography: np.ndarray, points: np.ndarray) -> np.ndarray:
    """(3, 3) homography applied to (3, N) homogeneous points; returns (2, N) float32 pixel coordinates."""
    mapped = homography @ points.astype(np.float64)
    return (mapped[:2] / mapped[2]).astype(np.float32)


def _check_frames(frames: np.ndarray) -> None:
    """Raise GIDInputError unless ``frames`` is a (T >= 2, H >= 16, W >= 16, 3) uint8 array."""
    if not isinstance(frames, np.ndarray):
        raise GIDInputError(f"frames must be a numpy array, got {type(frames).__name__}")
    if frames.dtype != np.uint8:
        raise GIDInputError(f"frames must be uint8 RGB, got dtype {frames.dtype}")
    if frames.ndim != 4 or frames.shape[3] != 3:
        raise GIDInputError(f"frames must have shape (T, H, W, 3), got {frames.shape}")
    if frames.shape[0] < 2:
        raise GIDInputError(f"a clip needs at least 2 frames for optical flow, got {frames.shape[0]}")
    if min(frames.shape[1:3]) < MIN_SIDE:
        raise GIDInputError(
            f"frames must be at least {MIN_SIDE}x{MIN_SIDE} pixels for optical flow, got "
            f"{frames.shape[2]}x{frames.shape[1]}"
        )
