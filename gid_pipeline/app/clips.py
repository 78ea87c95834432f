"""A clip's motion measured for the From-video tab, within the app's limits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction

from ..checks import check_number
from ..errors import GIDInputError
from ..limits import (
    APP_MAX_AMPLITUDE,
    APP_MAX_CLIP_FPS,
    APP_MAX_CLIP_SECONDS,
    APP_MAX_CLIP_SIDE,
    APP_MAX_CLIP_START_SECONDS,
    APP_MAX_FRAMES,
    APP_MIN_VIDEO_SIDE,
)
from ..media.video import frames_at_rate, probe_video, read_video
from ..motion.clip import ClipMotion
from ..motion.loop_window import clip_loop
from ..spectral.transform import DEFAULT_NUM_FREQUENCIES

MIN_CLIP_FRAMES = 2 * (DEFAULT_NUM_FREQUENCIES - 1)
"""Fewest frames a clip window needs: K = 16 frequencies need 30 frames."""


@dataclass(frozen=True)
class ClipRequest:
    """Which part of an uploaded clip to loop, and at what size (checked on construction).

    Attributes:
        start: seconds into the clip where the loop's window starts (its first frame is the loop's still).
        duration: seconds of the window (the loop's period); cut to the clip's end and to APP_MAX_FRAMES frames.
        long_side: longer side in pixels at which flow is measured and the loop rendered.
        amplitude: amplitude factor of the loop.
    """

    start: float = 0.0
    duration: float = 5.0
    long_side: int = 320
    amplitude: float = 1.0

    def __post_init__(self) -> None:
        checks = {
            "start": ("start", 0.0, APP_MAX_CLIP_START_SECONDS, False),
            "duration": ("duration", 1.0, APP_MAX_CLIP_SECONDS, False),
            "long_side": ("size", APP_MIN_VIDEO_SIDE, APP_MAX_CLIP_SIDE, True),
            "amplitude": ("motion strength", 0.0, APP_MAX_AMPLITUDE, False),
        }
        for field, (name, low, high, integer) in checks.items():
            object.__setattr__(self, field, check_number(name, getattr(self, field), low, high, integer=integer))


def measure_clip(path: str | os.PathLike[str] | None, request: ClipRequest) -> tuple[ClipMotion, str | None]:
    """Motion of a window of an uploaded clip: its ClipMotion (time base in ``volume``) and a note for the user.

    The window is sampled at the clip's own rate (at most APP_MAX_CLIP_FPS) and cut to what the clip holds; fewer
    than MIN_CLIP_FRAMES frames, a still image, an unreadable file or a clip without motion raise GIDInputError.
    The frame after the window, where the clip has one, closes the loop: the drift over the period is removed so
    the loop does not snap back at its seam (motion.loop_window.clip_loop).
    """
    if path is None or str(path) == "":
        raise GIDInputError("no clip: upload a short video of something swaying first")
    info = probe_video(path)
    fps = min(info.fps, APP_MAX_CLIP_FPS)
    available = frames_at_rate(info.num_frames, _rate(info.fps), _rate(fps))
    start = round(request.start * fps)
    wanted = min(round(request.duration * fps), APP_MAX_FRAMES)
    frames = min(wanted, available - start)
    if frames < MIN_CLIP_FRAMES:
        have = f"{info.num_frames} frame{'s' if info.num_frames != 1 else ''}"
        after = f" after {request.start:g} s" if start else ""
        raise GIDInputError(
            f"the clip is too short: it has {have} ({info.duration_s:.1f} s at {info.fps:g} fps) and the window "
            f"holds {max(frames, 0)}{after}; a loop needs at least {MIN_CLIP_FRAMES} frames "
            f"({MIN_CLIP_FRAMES / fps:.1f} s at {fps:g} fps)"
        )
    note = None
    if frames < wanted:
        note = f"the clip ends early: looping {frames / fps:.1f} s ({frames} frames) instead of {request.duration:g} s"
    closing = 1 if start + frames < available else 0
    clip = read_video(path, fps=fps, start=start, num_frames=frames + closing, long_side=request.long_side)
    motion, _ = clip_loop(clip.frames, clip.fps, start=0, num_frames=min(frames, len(clip.frames)))
    return motion, note


def _rate(fps: float) -> Fraction:
    """A frame rate as the exact fraction video.read_video uses (29.97 -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)
