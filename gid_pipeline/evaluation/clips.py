"""Evaluation cases from real clips: windows of each clip, their ground-truth motion and their masks.

A clip is centre-cropped to the aspect ratio of the evaluation grid and resized to it (as ``gid prepare-data``
does). Each window is ``window_seconds`` of the clip from its start, at the clip's own frame rate (5 s: the model's
150 frames at 30 fps), or what the clip has after the start when that is less. Windows start at given frames or at
frames spread evenly over the clip (window_starts).
Ground truth: optical flow from the window's first frame (clip_motion), bins kept up to max_frequency_hz. Masks:
masks.clip_masks from the flow amplitude, the window's grey-level change, the first frame's texture and the flow's
jitter, with the clip's ignore boxes (evaluation.ignore) left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.builder import centre_crop, cover_size
from ..errors import GIDInputError
from ..media.video import probe_video, read_video
from ..motion.clip import ClipMotion, clip_motion
from .cases import DEFAULT_MAX_FREQUENCY_HZ, DEFAULT_SIZE, MotionCase
from .ignore import Box, ignore_mask
from .masks import MotionMasks, clip_masks, grey_change, noise_amplitude, texture
from .metrics import motion_amplitude

DEFAULT_WINDOW_SECONDS = 5.0
DEFAULT_NUM_WINDOWS = 3
# Spread window starts are at least this far apart, so that a clip no longer than one window still gives several.
MIN_START_STEP_SECONDS = 0.5


def clip_num_frequencies(window: int, fps: float, max_frequency_hz: float) -> int:
    """Bins of a window of ``window`` frames at ``fps`` up to max_frequency_hz (DC included), at most window//2+1."""
    return min(window // 2 + 1, math.floor(max_frequency_hz * window / fps + 1e-9) + 1)


def window_starts(usable: int, window: int, num_windows: int, min_step: int) -> tuple[int, ...]:
    """num_windows start frames spread evenly from 0 to max(usable - window, (num_windows - 1) x min_step): full
    windows over a long clip, starts min_step frames apart on a short one (rounded, duplicates dropped)."""
    last = max(usable - window, (num_windows - 1) * min_step)
    return tuple(int(s) for s in np.unique(np.linspace(0, last, num_windows).round()))


def window_masks(frames: np.ndarray, motion: ClipMotion, ignore: torch.Tensor | None = None) -> MotionMasks:
    """masks.clip_masks of one window: (T, H, W, 3) uint8 frames, their clip_motion, (H, W) bool ignored pixels."""
    volume = motion.volume
    height, width = volume.size
    jitter = torch.zeros(height, width) if motion.flow_noise is None else torch.from_numpy(motion.flow_noise)
    noise = noise_amplitude(jitter, volume.num_frames, volume.num_frequencies)
    return clip_masks(motion_amplitude(volume.spectrum), grey_change(frames), texture(frames[0]), noise, ignore)


@dataclass(frozen=True)
class ClipPlan:
    """A clip checked before any flow is computed.

    Attributes:
        path: the video. num_frames: usable frames. fps: its frame rate. size: native (width, height).
        windows: (start frame, frames) of each window.
        ignore: boxes left out of every metric (evaluation.ignore), fractions of the native frame.
    """

    path: Path
    num_frames: int
    fps: float
    size: tuple[int, int]
    windows: tuple[tuple[int, int], ...]
    ignore: tuple[Box, ...] = ()


def plan_clips(
    paths: Sequence[str | Path],
    start_frames: Sequence[int] | None = None,
    clip_frames: int | None = None,
    max_frequency_hz: float = DEFAULT_MAX_FREQUENCY_HZ,
    window_seconds: float = DEFAULT_WINDOW_SECONDS,
    num_windows: int = DEFAULT_NUM_WINDOWS,
    ignore: Mapping[str, tuple[Box, ...]] | None = None,
) -> list[ClipPlan]:
    """Probe clips and choose their windows; check that every window resolves at least one frequency.

    Args:
        paths: video files.
        start_frames: window starts, frames at the clip's own rate; None spreads num_windows starts over each clip
            (window_starts, at least MIN_START_STEP_SECONDS apart).
        clip_frames: use only the first clip_frames frames of each clip (e.g. 54 for tests/data/tree.avi, where a
            hand enters at frame 54); None uses all.
        max_frequency_hz: highest frequency of the ground truth.
        window_seconds: window length; a window is round(window_seconds x fps) frames, or all the frames left
            after its start when there are fewer.
        num_windows: windows per clip when start_frames is None.
        ignore: boxes per clip file name (evaluation.ignore.load_ignore); clips not named have none.

    Raises:
        GIDInputError: no paths, bad start frames or counts, unreadable clips, a clip too short for its windows.
    """
    if not paths:
        raise GIDInputError("no clips to evaluate")
    if start_frames is not None and (not start_frames or min(start_frames) < 0):
        raise GIDInputError(f"start frames must be a non-empty list of frames >= 0, got {list(start_frames)}")
    if num_windows < 1 or not window_seconds > 0:
        raise GIDInputError(f"need at least one window of positive length, got {num_windows} of {window_seconds} s")
    plans = []
    for path in paths:
        info = probe_video(path)
        usable = info.num_frames if clip_frames is None else clip_frames
        if clip_frames is not None and info.num_frames_exact and info.num_frames < clip_frames:
            raise GIDInputError(f"{path} has {info.num_frames} frames, fewer than the {clip_frames} asked for")
        full = round(window_seconds * info.fps)
        min_step = math.ceil(MIN_START_STEP_SECONDS * info.fps)
        starts = window_starts(usable, full, num_windows, min_step) if start_frames is None else tuple(start_frames)
        # The last window is the shortest: it must resolve at least one frequency.
        last = min(full, usable - max(starts))
        if last < 2 or clip_num_frequencies(max(last, 0), info.fps, max_frequency_hz) < 2:
            need = math.ceil(info.fps / max_frequency_hz)
            raise GIDInputError(
                f"{path}: {usable} usable frames at {info.fps:g} fps leave a {last}-frame window after start frame "
                f"{max(starts)}; resolving motion up to {max_frequency_hz:g} Hz needs at least {need} frames"
            )
        windows = tuple((start, min(full, usable - start)) for start in starts)
        boxes = (ignore or {}).get(Path(path).name, ())
        plans.append(ClipPlan(Path(path), usable, info.fps, (info.width, info.height), windows, boxes))
    return plans


def clip_cases(
    plans: Sequence[ClipPlan],
    size: tuple[int, int] = DEFAULT_SIZE,
    max_frequency_hz: float = DEFAULT_MAX_FREQUENCY_HZ,
    method: str = "dis",
    stabilize: str = "none",
    progress: bool = False,
) -> list[MotionCase]:
    """The windows of real clips as cases, with ground truth from clip_motion and masks from masks.clip_masks.

    A window's ground truth keeps the bins up to max_frequency_hz (e.g. 46 frames at 15 fps: 10 bins, 0.33 Hz apart,
    up to 2.93 Hz). stabilize defaults to "none", as for the training data (data.builder.VideoConfig).

    Args:
        plans: from plan_clips. size: (width, height) of the evaluation grid.
    """
    cases = []
    total = sum(len(plan.windows) for plan in plans)
    with tqdm(total=total, desc="ground truth (optical flow)", unit="window", disable=not progress) as bar:
        for plan in plans:
            needed = max(start + length for start, length in plan.windows)
            clip = read_video(plan.path, num_frames=needed, size=cover_size(plan.size, size), max_frames=needed)
            frames = centre_crop(clip.frames, size)
            ignore = ignore_mask(plan.ignore, plan.size, size)
            for start, length in plan.windows:
                window = frames[start : start + length]
                num_frequencies = clip_num_frequencies(length, clip.fps, max_frequency_hz)
                try:
                    motion = clip_motion(window, clip.fps, num_frequencies, method=method, stabilize=stabilize)
                    masks = window_masks(window, motion, ignore)
                except GIDInputError as error:
                    raise GIDInputError(f"{plan.path} from frame {start}: {error}") from error
                image = torch.from_numpy(motion.image).permute(2, 0, 1).float().div(255.0)
                meta = {"start_frame": start, "window_frames": length, "window_seconds": length / clip.fps,
                        "clip_fps": clip.fps, "source_size": list(plan.size), "flow": method, "stabilize": stabilize,
                        "ignore_boxes": [list(box) for box in plan.ignore]}  # fmt: skip
                cases.append(MotionCase(f"{plan.path.name}@{start}", str(plan.path), "clip", image, motion.volume,
                                        meta, masks))  # fmt: skip
                bar.update()
    return cases
