"""Where a clip's loop starts and how long it is, video-texture style (Schödl et al. 2000): the window whose seam, the
step from its last frame back to its first, looks most like an ordinary step of the clip. Frames are compared as
small blurred grey thumbnails (what a viewer sees of a step, not sensor noise), by mean absolute grey-level
difference, averaged over the frames just before and after (Schödl's filter that preserves dynamics: the loop must
not only return to where it started but move on as it did). The jump is judged against the window's median step,
because a cut is seen for what it is against how fast the picture changes around it: a mismatch that passes
unnoticed in a gust shows in a lull, and a closing frame that matches the first still makes a visible seam when
the motion right before the cut is faster than usual (tree.avi: the best-matching window's seam step was 1.4x the
median, in pixels and in thumbnails alike).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch

from ..errors import GIDInputError
from ..spectral.transform import DEFAULT_NUM_FREQUENCIES, min_loop_frames
from .clip import ClipMotion, clip_motion

THUMBNAIL_SIDE = 64  # pixels of the longer side of the thumbnails compared
THUMBNAIL_BLUR = 1.0  # Gaussian sigma in thumbnail pixels
# A longer loop is worth this much seam visibility (in median steps) per doubling of its length: among windows that
# close about as well, the longer one keeps more of the clip's motion and repeats less often.
LENGTH_PREFERENCE = 0.1
DYNAMICS_TAPS = 1  # frames on each side averaged into a window's mismatch (1: the pair before and after too)


@dataclass(frozen=True)
class LoopWindow:
    """A loop cut from a clip: frames start .. start + num_frames - 1; frame start + num_frames closes it.

    mismatch: mean |grey level| difference of the thumbnails of the first and the closing frame and of their
        neighbours (dynamics_distance; 0-255).
    seam_ratio: the thumbnails' jump from the window's last frame to its first (dynamics_distance) over the
        median step between its consecutive frames: about 1 for a seam like any other step; NaN when not chosen.
    """

    start: int
    num_frames: int
    mismatch: float
    seam_ratio: float = float("nan")


def thumbnails(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB -> (N, h * w) float32 blurred grey thumbnails, grey levels 0-255."""
    height, width = frames.shape[1:3]
    scale = THUMBNAIL_SIDE / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = [cv2.GaussianBlur(cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), size, interpolation=cv2.INTER_AREA
                                         ).astype(np.float32), (0, 0), THUMBNAIL_BLUR) for f in frames]  # fmt: skip
    return torch.from_numpy(np.stack(small).reshape(len(frames), -1))


def dynamics_distance(distance: torch.Tensor, taps: int = DYNAMICS_TAPS) -> torch.Tensor:
    """(N, N) frame distances -> the mean of distance[i + k, j + k] over k in -taps..taps (those inside the clip):
    small where frames i and j look alike and so do their neighbours, i.e. where the motion goes on alike."""
    total = distance.shape[0]
    summed, count = torch.zeros_like(distance), torch.zeros_like(distance)
    for k in range(-taps, taps + 1):  # 2 taps + 1 shifted copies of an (N, N) matrix, not a loop over frames
        lo, hi = max(0, -k), min(total, total - k)
        summed[lo:hi, lo:hi] += distance[lo + k : hi + k, lo + k : hi + k]
        count[lo:hi, lo:hi] += 1
    return summed / count


def window_medians(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(N,) values -> (N, L) median of values[s : s + lengths[j]] for every start s (NaN where it does not fit)."""
    medians = torch.full((len(values), len(lengths)), float("nan"), dtype=values.dtype)
    for column, length in enumerate(lengths.tolist()):  # one vectorised median per length, not per window
        if length <= len(values):
            medians[: len(values) - length + 1, column] = values.unfold(0, length, 1).median(dim=1).values
    return medians


def choose_loop_window(
    frames: np.ndarray, min_frames: int, max_frames: int, start: int | None = None, num_frames: int | None = None
) -> LoopWindow:
    """The window of a clip (N frames) that loops best, among lengths min_frames..max_frames (the closing frame
    start + length must exist, so length <= N - 1 - start).

    The score is (mismatch + |jump - step|) / step - LENGTH_PREFERENCE * log2(length), with step the window's median
    step and jump the step from its last frame to its first (module docstring): the seam must close (the frame
    after the window looks like its first) and the step shown there must be an ordinary one; longer loops are
    mildly preferred. start or num_frames given fixes that part of the choice.

    Raises:
        GIDInputError: no window fits (the clip is too short for min_frames, or the fixed parts do not fit).
    """
    total = len(frames)
    if not 2 <= min_frames <= max_frames:
        raise GIDInputError(f"loop lengths must satisfy 2 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
    thumbs = thumbnails(frames)
    raw = torch.cdist(thumbs[None], thumbs[None], p=1.0)[0] / thumbs.shape[1]
    distance = dynamics_distance(raw)
    starts = torch.arange(total) if start is None else torch.tensor([start])
    lengths = torch.arange(min_frames, max_frames + 1) if num_frames is None else torch.tensor([num_frames])
    ends = starts[:, None] + lengths[None, :]
    valid = (ends <= total - 1) & (starts[:, None] >= 0)
    if not bool(valid.any()):
        raise GIDInputError(
            f"no loop of {lengths.min().item()}-{lengths.max().item()} frames fits a {total}-frame clip from frame "
            f"{'any' if start is None else start} (a loop needs one more frame after it to close)"
        )
    row_index, end_index = starts[:, None].clamp(0, total - 1), ends.clamp(max=total - 1)
    mismatch = distance[row_index, end_index]
    jump = distance[end_index - 1, row_index]  # the seam: last frame, then the first again
    steps = torch.diagonal(raw, 1)  # steps[t]: frame t to frame t + 1
    typical = window_medians(steps, lengths)[row_index.clamp(max=len(steps) - 1)[:, 0]]
    typical = typical.clamp_min(1e-3)  # a still clip: grey-level steps of a thousandth are no motion
    ratio = jump / typical
    # The two ways a seam shows: the closing frame differs from the first (a jump), and the step the loop shows
    # there is unlike an ordinary one (a lurch, or a stall where the window holds a frame equal to its first).
    visibility = (mismatch + (jump - typical).abs()) / typical
    score = torch.where(valid, visibility - LENGTH_PREFERENCE * torch.log2(lengths.float())[None, :], torch.inf)
    best = int(score.argmin())
    row, column = divmod(best, len(lengths))
    return LoopWindow(int(starts[row]), int(lengths[column]), float(mismatch[row, column]),
                      float(ratio[row, column]))  # fmt: skip


def shortest_loop(num_frequencies: int, fps: float) -> int:
    """Fewest frames a chosen loop may have: 1.5 s, or what K frequencies need (min_loop_frames) if that is more."""
    return max(min_loop_frames(num_frequencies), round(1.5 * fps))


def clip_loop(
    frames: np.ndarray,
    fps: float,
    num_frequencies: int = DEFAULT_NUM_FREQUENCIES,
    start: int | None = None,
    num_frames: int | None = None,
    max_frames: int = 150,
    remove_drift: bool = True,
    **flow_options: Any,
) -> tuple[ClipMotion, LoopWindow]:
    """A clip's best loop (choose_loop_window; start and num_frames fix those parts) and its motion (clip_motion,
    with the drift over the period removed, from the window's closing frame, unless remove_drift is False).

    A window whose length is given and that reaches the clip's last frame (from start, default 0) has no closing
    frame: its drift stays.
    flow_options go to clip_motion (method, stabilize, loop_taper, progress).
    """
    total = len(frames)
    if num_frames is not None and (start or 0) + num_frames == total:  # the window reaches the clip's end
        window = LoopWindow(start or 0, num_frames, float("nan"))
    else:
        fewest = shortest_loop(num_frequencies, fps)
        longest = max(fewest, min(max_frames, total - 1))
        if num_frames is not None:
            fewest = longest = num_frames
        window = choose_loop_window(frames, min(fewest, longest), longest, start, num_frames)
    end = window.start + window.num_frames
    closing = frames[end] if remove_drift and end < total else None
    motion = clip_motion(frames[window.start : end], fps, num_frequencies, closing_frame=closing, **flow_options)
    return motion, window
