"""Which windows of a real clip make training samples: scene-cut, camera-motion, motion and flow-consistency scores
of a window, the filters that reject one (each with a reason), and the window's spectral volume when it passes."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..errors import GIDInputError
from ..motion.flow import (
    METHODS,
    STABILIZE_MODES,
    create_estimator,
    estimate_flow,
    forward_backward_consistency,
    remove_camera_motion,
)
from ..spectral.transform import motion_to_spectrum


@dataclass(frozen=True)
class WindowFilters:
    """Reliability thresholds for a window of a real clip; pixels are pixels at the dataset's resolution.

    The defaults were set from these scores, measured at 256x160 on tests/data/tree.avi (40-frame windows at
    15 fps), on procedural scenes rendered to frames, and on synthetic failures (cuts, pans, stills, noise):

    max_histogram_jump: scene cut if the total-variation distance between consecutive frames' 8x8x8 RGB
        histograms exceeds this (in [0, 1]). Swaying trees: <= 0.03; a hand entering the frame: 0.15; cuts
        between different scenes: >= 0.37.
    max_intensity_jump: scene cut if the mean absolute grey-level change between consecutive frames exceeds
        this fraction of 255. Trees: <= 0.026; the hand: 0.073; cuts: 0.10 - 0.31 (one scene mirrored: 0.24).
    max_camera_motion: camera motion if the global displacement removed by a per-frame RANSAC homography,
        averaged over pixels and frames, exceeds this (px). A static camera on a swaying tree that fills the
        frame: 0.24 - 0.54 (the homography absorbs some of the sway); a slow pan of 0.1 px / frame over 40
        frames: 2.9.
    max_motion: too much motion if 1 % of the pixels move further than this from their frame-0 position (px):
        the 99th percentile of the per-pixel peak displacement. Trees: 4 - 6.5; procedural scenes (capped at
        10): 1.8 - 5.1; the hand: 53.
    min_consistent_fraction: inconsistent flow if, in the worst checked frame, fewer than this fraction of the
        pixels pass the forward-backward check. Trees: >= 0.89; dense procedural foliage: 0.78; the hand: 0.66.
    min_motion: no motion if the same 99th percentile stays below this (px). A still picture through mp4: 0.01;
        DIS on sensor noise of sigma 3 grey levels: 0.57; trees: >= 4.
    """

    max_histogram_jump: float = 0.25
    max_intensity_jump: float = 0.10
    max_camera_motion: float = 1.0
    max_motion: float = 16.0
    min_consistent_fraction: float = 0.7
    min_motion: float = 0.5


@dataclass(frozen=True)
class VideoConfig:
    """How windows are cut from real clips and measured.

    stride: frames (at SampleConfig.fps) between window starts. method: optical flow method (flow.METHODS).
    check_every: the forward-backward check runs on every n-th frame and the last (consistent_fractions).
    stabilize: camera-motion removal applied to the training target (flow.STABILIZE_MODES). "none" by default:
        the filter already drops windows with camera motion, and on a static shot of something that fills the
        frame a homography or median absorbs part of the real sway, which would bias the target.
    """

    stride: int = 10
    method: str = "dis"
    stabilize: str = "none"
    filters: WindowFilters = field(default_factory=WindowFilters)
    check_every: int = 4

    def __post_init__(self) -> None:
        if self.stride < 1 or self.check_every < 1:
            raise GIDInputError(
                f"stride and check_every must be at least 1 frame, got {self.stride}, {self.check_every}"
            )
        if self.method not in METHODS:
            raise GIDInputError(f"unknown optical flow method {self.method!r}; expected one of {METHODS}")
        if self.stabilize not in STABILIZE_MODES:
            raise GIDInputError(f"unknown stabilize mode {self.stabilize!r}; expected one of {STABILIZE_MODES}")


def scene_cut_scores(frames: np.ndarray) -> dict[str, float]:
    """Largest frame-to-frame jumps of a window, the scene-cut evidence.

    Args:
        frames: (T, H, W, 3) uint8 RGB, T >= 2.

    Returns:
        histogram_jump: max over consecutive frames of the total-variation distance of their 8x8x8-bin RGB
            histograms, in [0, 1]. intensity_jump: max mean absolute grey-level difference, fraction of 255.
    """
    num_frames = len(frames)
    bins = (frames >> 5).astype(np.int64)  # 8 levels per channel
    index = (bins[..., 0] * 64 + bins[..., 1] * 8 + bins[..., 2]).reshape(num_frames, -1)
    index += 512 * np.arange(num_frames)[:, None]
    histograms = np.bincount(index.ravel(), minlength=512 * num_frames).reshape(num_frames, 512) / index.shape[1]
    gray = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return {
        "histogram_jump": float(0.5 * np.abs(np.diff(histograms, axis=0)).sum(axis=1).max()),
        "intensity_jump": float(np.abs(np.diff(gray, axis=0)).mean(axis=(1, 2)).max() / 255.0),
    }


def consistent_fractions(frames: np.ndarray, flow: np.ndarray, method: str = "dis", every: int = 4) -> np.ndarray:
    """Fraction of the pixels that pass the forward-backward check (flow.forward_backward_consistency) in frames
    every, 2 every, ... and the last.

    Consistency changes slowly along a window, so every 4th frame finds nearly the same worst frame as all of
    them (tree.avi, the window the hand enters: 0.658 either way; clean windows within 0.005) at a quarter of
    the backward flows, which would otherwise double the cost of a window.

    Args:
        frames: (T, H, W, 3) uint8 RGB. flow: (T, 2, H, W) px, frame 0 -> t, as estimated (not stabilised).
        method: the method the flow was estimated with. every: the checking interval in frames.

    Returns:
        (n,) float, one fraction per checked frame.
    """
    times = sorted({*range(every, len(frames), every), len(frames) - 1})
    estimator = create_estimator(method)  # type: ignore[arg-type]
    reference = cv2.cvtColor(frames[0], cv2.COLOR_RGB2GRAY)
    fractions = np.empty(len(times))
    for i, t in enumerate(times):
        backward = estimator.calc(cv2.cvtColor(frames[t], cv2.COLOR_RGB2GRAY), reference, None)
        fractions[i] = forward_backward_consistency(flow[t], backward.transpose(2, 0, 1)).mean()
    return fractions


def motion_scores(flow: np.ndarray, consistent: np.ndarray, camera_motion: np.ndarray) -> dict[str, float]:
    """Reliability evidence from a window's flow.

    Args:
        flow: (T, 2, H, W) px, frame 0 -> t (the training target's flow).
        consistent: (n,) fractions of forward-backward-consistent pixels in checked frames (consistent_fractions).
        camera_motion: (T - 1,) px, mean global displacement removed from frames 1.. (flow.remove_camera_motion).

    Returns:
        camera_motion_px: mean of camera_motion. consistent_fraction: the fraction of consistent pixels in the
        worst checked frame. motion_px: 99th percentile over pixels of the peak displacement over time (px).
    """
    peak = np.sqrt(np.square(flow).sum(axis=1)).max(axis=0)
    return {
        "camera_motion_px": float(camera_motion.mean()),
        "consistent_fraction": float(consistent.min()),
        "motion_px": float(np.percentile(peak, 99)),
    }


# (reason, score, WindowFilters field, what the score measures), checked in this order: the first failure is the
# recorded reason (camera motion causes large motion, large motion causes inconsistent flow).
_CHECKS = (
    ("scene_cut", "histogram_jump", "max_histogram_jump", "colour-histogram jump between consecutive frames"),
    ("scene_cut", "intensity_jump", "max_intensity_jump", "grey-level jump between consecutive frames (of 255)"),
    ("camera_motion", "camera_motion_px", "max_camera_motion", "mean camera displacement (px)"),
    ("too_much_motion", "motion_px", "max_motion", "99th-percentile peak displacement (px)"),
    ("inconsistent_flow", "consistent_fraction", "min_consistent_fraction", "consistent pixels in the worst frame"),
    ("no_motion", "motion_px", "min_motion", "99th-percentile peak displacement (px)"),
)


REJECTION_REASONS = ("too_short", "unreadable", *dict.fromkeys(reason for reason, *_ in _CHECKS))


def check_window(scores: dict[str, float], filters: WindowFilters) -> tuple[str, str] | None:
    """The first filter a window fails, as (reason, detail), or None if it passes every filter whose score is
    present in ``scores`` (scene-cut scores come before the flow is computed)."""
    for reason, score, threshold_name, what in _CHECKS:
        if score not in scores:
            continue
        value, threshold = scores[score], getattr(filters, threshold_name)
        if threshold_name.startswith("max_") and value > threshold:
            return reason, f"{what} {value:.3g} > {threshold:g}"
        if threshold_name.startswith("min_") and value < threshold:
            return reason, f"{what} {value:.3g} < {threshold:g}"
    return None


@dataclass(frozen=True)
class WindowAnalysis:
    """A window's spectral volume (K, 4, H, W) float32 px, or None with the reason it was rejected."""

    spectrum: torch.Tensor | None
    scores: dict[str, float]
    reason: str | None = None
    detail: str | None = None


def analyse_window(frames: np.ndarray, num_frequencies: int, video: VideoConfig) -> WindowAnalysis:
    """Filter one window of T frames (T, H, W, 3) uint8 and, if it passes, compute its spectral volume."""
    scores = scene_cut_scores(frames)
    failure = check_window(scores, video.filters)
    if failure is not None:  # no flow for a cut: it would be wasted time
        return WindowAnalysis(None, scores, *failure)
    flow = estimate_flow(frames, method=video.method).flow  # type: ignore[arg-type]
    consistent = consistent_fractions(frames, flow, video.method, video.check_every)
    stabilised, camera = remove_camera_motion(flow[1:], "homography")
    if video.stabilize != "none":
        if video.stabilize == "median":
            stabilised, _ = remove_camera_motion(flow[1:], "median")
        flow = np.concatenate([flow[:1], stabilised])
    scores.update(motion_scores(flow, consistent, camera))
    failure = check_window(scores, video.filters)
    if failure is not None:
        return WindowAnalysis(None, scores, *failure)
    return WindowAnalysis(motion_to_spectrum(torch.from_numpy(flow), num_frequencies), scores)
