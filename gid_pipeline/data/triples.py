"""Training triples for the learned renderer: (I_0, I_t, F_t, W) from procedural scenes and from real clips.

A *clip* is T frames and the displacement from frame 0 to each of them:

- procedural (exact motion, exact occlusions and disocclusions): ``generate_scene(seed, render_frames=True)``
  with T = 30 frames at 6 fps, i.e. the model's 5-second period and 0.2 Hz frequency spacing (150 frames at
  30 fps) sampled at every 5th frame. Frames are rendered one by one, so this costs a fifth of the full clip;
  the motion band ends at 2.8 Hz instead of 3 Hz (3 Hz is the Nyquist frequency at 6 fps).
- real (``VideoClips``): a window of T frames of a video, centre-cropped and resized to the training size, and
  DIS optical flow from frame 0 to each frame (``flow.estimate_flow``).

A triple takes a frame t >= 1 of a clip: ``image`` = frame 0, ``target`` = frame t, ``flow`` = F_t and ``metric``
= W = mean over the clip's T frames of |F_t| (the metric the renderer gets for a whole loop).

``TripleStream`` turns clip sources into an endless stream of batches that is a pure function of its arguments:
batch b (counted from 0) holds ``batch_size`` clips, and each clip serves ``reuse`` consecutive batches of its
lane at different frames t (rendering a scene costs more than a training step, so it is used several times).
With L lanes (one per DataLoader worker), batch b belongs to lane b mod L; the DataLoader's round-robin over its
workers then returns batches 0, 1, 2, ... in order, and ``start`` begins the stream at any batch without
generating the earlier ones (exact, cheap resume).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..errors import GIDInputError
from ..media.video import frames_at_rate, probe_video, read_video
from ..motion.flow import estimate_flow
from ..procedural.scenes import DEFAULT_SIZE, generate_scene
from ..rendering.splatting import motion_metric
from .builder import centre_crop, cover_size, find_videos

# Procedural clips: 30 frames at 6 fps span the model's 5-second period (module docstring).
CLIP_FRAMES, CLIP_FPS = 30, 6.0
# Procedural seeds from here on are held out for evaluation: training never generates them.
HELD_OUT_SEED = 10_000_000
PROCEDURAL = "procedural"


@dataclass(frozen=True)
class TripleClip:
    """One clip: frames (T, H, W, 3) uint8 RGB (frames[0] is I_0), displacements (T, 2, H, W) float32 pixels
    from frame 0 (displacements[0] == 0), metric (1, H, W) float32 W = mean_t |F_t| in pixels."""

    frames: np.ndarray
    displacements: torch.Tensor
    metric: torch.Tensor


def make_clip(frames: np.ndarray, displacements: torch.Tensor) -> TripleClip:
    """A TripleClip from frames and displacements, with its metric W."""
    return TripleClip(frames, displacements, motion_metric(displacements))


class ProceduralClips:
    """Clip i is procedural scene ``first_seed + i`` (training seeds stay below HELD_OUT_SEED)."""

    def __init__(
        self,
        size: tuple[int, int] = DEFAULT_SIZE,
        num_frames: int = CLIP_FRAMES,
        fps: float = CLIP_FPS,
        first_seed: int = 0,
        held_out: bool = False,
    ) -> None:
        self.size, self.num_frames, self.fps = tuple(size), num_frames, fps
        self.first_seed, self.held_out = first_seed, held_out
        if held_out != (first_seed >= HELD_OUT_SEED):
            side = "from" if held_out else "below"
            raise GIDInputError(f"{'held-out' if held_out else 'training'} seeds must start {side} {HELD_OUT_SEED}")

    def __call__(self, index: int) -> TripleClip:
        seed = self.first_seed + index
        if not self.held_out and seed >= HELD_OUT_SEED:
            raise GIDInputError(f"procedural seed {seed} is held out for evaluation (>= {HELD_OUT_SEED})")
        sample = generate_scene(seed, self.size, self.num_frames, self.fps, num_frequencies=1, render_frames=True)
        return make_clip(sample.frames, sample.displacements)


class VideoClips:
    """Clip i is a window of ``num_frames`` frames at ``fps`` of one of the videos under ``video_dir``, chosen
    (video uniformly, then start frame uniformly) by a generator seeded with (seed, i); flow by DIS."""

    def __init__(
        self,
        video_dir: str | Path,
        size: tuple[int, int] = DEFAULT_SIZE,
        num_frames: int = CLIP_FRAMES,
        fps: float = CLIP_FPS,
        seed: int = 0,
    ) -> None:
        self.size, self.num_frames, self.fps, self.seed = tuple(size), num_frames, fps, seed
        rate = Fraction(fps).limit_denominator(1001)
        self.videos: list[tuple[Path, int, tuple[int, int]]] = []  # path, windows, read size
        for path in find_videos(video_dir):
            try:
                info = probe_video(path)
            except GIDInputError:
                continue  # unreadable files are skipped, as gid prepare-data does
            available = frames_at_rate(info.num_frames, Fraction(info.fps).limit_denominator(1001), rate)
            if available >= num_frames:
                self.videos.append((path, available - num_frames + 1, cover_size((info.width, info.height), size)))
        if not self.videos:
            raise GIDInputError(f"no video under {video_dir} has {num_frames} frames at {fps:g} fps")

    def __call__(self, index: int) -> TripleClip:
        rng = np.random.default_rng([self.seed, index])
        path, windows, read_size = self.videos[int(rng.integers(len(self.videos)))]
        clip = read_video(path, fps=self.fps, start=int(rng.integers(windows)), num_frames=self.num_frames,
                          size=read_size)  # fmt: skip
        frames = centre_crop(clip.frames, self.size)
        return make_clip(frames, torch.from_numpy(estimate_flow(frames).flow))


ClipSource = Callable[[int], TripleClip]


class ShardedSource:
    """Clip i of process ``rank`` of ``world_size`` is clip i * world_size + rank of ``source``: disjoint clips."""

    def __init__(self, source: ClipSource, rank: int, world_size: int) -> None:
        self.source, self.rank, self.world_size = source, rank, world_size

    def __call__(self, index: int) -> TripleClip:
        return self.source(index * self.world_size + self.rank)


def open_clip_sources(
    data: Sequence[str],
    size: tuple[int, int] = DEFAULT_SIZE,
    num_frames: int = CLIP_FRAMES,
    fps: float = CLIP_FPS,
    seed: int = 0,
) -> list[ClipSource]:
    """One source per entry of ``data``: the word "procedural" (procedural scenes) or a folder of videos; clips
    of num_frames frames at fps."""
    if not data:
        raise GIDInputError('no training data given: "procedural" and/or folders of videos')
    procedural = ProceduralClips(size, num_frames, fps)
    return [procedural if entry == PROCEDURAL else VideoClips(entry, size, num_frames, fps, seed) for entry in data]


def triple_batch(clips: Sequence[TripleClip], times: Sequence[int], flips: Sequence[bool]) -> dict[str, torch.Tensor]:
    """Collate triples: clip i at frame times[i], mirrored left-right where flips[i] (flow x negated).

    Returns {"image": (B, 3, H, W), "target": (B, 3, H, W) float32 in [0, 1], "flow": (B, 2, H, W) float32
    pixels, "metric": (B, 1, H, W) float32 pixels, "time": (B,) int64}.
    """
    images = torch.from_numpy(np.stack([clip.frames[0] for clip in clips])).permute(0, 3, 1, 2)
    targets = torch.from_numpy(np.stack([clip.frames[t] for clip, t in zip(clips, times, strict=True)]))
    batch = {
        "image": images.float() / 255.0,
        "target": targets.permute(0, 3, 1, 2).float() / 255.0,
        "flow": torch.stack([clip.displacements[t] for clip, t in zip(clips, times, strict=True)]).float(),
        "metric": torch.stack([clip.metric for clip in clips]).float(),
    }
    mirror = torch.tensor(list(flips), dtype=torch.bool).view(-1, 1, 1, 1)
    for key, value in batch.items():
        batch[key] = torch.where(mirror, value.flip(-1), value)
    batch["flow"][:, 0] = torch.where(mirror[:, 0], -batch["flow"][:, 0], batch["flow"][:, 0])
    batch["time"] = torch.tensor(list(times), dtype=torch.int64)
    return batch


class TripleStream(IterableDataset):
    """Endless batches of renderer triples (module docstring); iterate it through ``make_loader``.

    Args:
        sources: clip sources (``open_clip_sources``); clip c comes from source j with probability weights[j]
            (drawn from (seed, c)), as that source's clip c.
        batch_size: triples per batch, each from another clip.
        seed: the stream's seed (which clip of which source, which frame t, which mirroring).
        reuse: consecutive batches of a lane that share their clips (at different frames t), <= T - 1.
        lanes: interleaved lanes; the DataLoader must have exactly this many workers (or none for one lane).
        start: the first batch to yield.
        flip: mirror half of the triples left-right (image, target, metric and flow together).
    """

    def __init__(
        self,
        sources: Sequence[ClipSource],
        batch_size: int,
        seed: int = 0,
        weights: Sequence[float] | None = None,
        reuse: int = 8,
        lanes: int = 1,
        start: int = 0,
        flip: bool = True,
    ) -> None:
        if not sources or (weights is not None and len(weights) != len(sources)):
            raise GIDInputError(f"need one weight per clip source ({len(sources)}), got {weights}")
        if min(batch_size, reuse, lanes) < 1 or start < 0:
            raise GIDInputError("batch size, reuse and lanes must be >= 1 and start >= 0")
        self.sources, self.batch_size, self.seed = list(sources), batch_size, seed
        probabilities = np.ones(len(sources)) if weights is None else np.asarray(weights, np.float64)
        self.probabilities = probabilities / probabilities.sum()
        self.reuse, self.lanes, self.start, self.flip = reuse, lanes, start, flip

    def layout(self, batch: int) -> tuple[list[int], int]:
        """(clip indices, use j < reuse of those clips) of batch number ``batch``."""
        lane, local = batch % self.lanes, batch // self.lanes
        group = (local // self.reuse) * self.lanes + lane
        return list(range(group * self.batch_size, (group + 1) * self.batch_size)), local % self.reuse

    def clip(self, index: int) -> TripleClip:
        """Clip ``index`` of the stream (its source drawn from (seed, index))."""
        draw = np.random.default_rng([self.seed, index, 0]).random()
        source = min(int(np.searchsorted(np.cumsum(self.probabilities), draw, side="right")), len(self.sources) - 1)
        return self.sources[source](index)

    def batch(self, batch: int, cache: dict[int, TripleClip] | None = None) -> dict[str, torch.Tensor]:
        """Batch number ``batch`` (see the class docstring); ``cache`` keeps the clips for the next batches."""
        indices, use = self.layout(batch)
        clips = []
        for index in indices:
            clip = cache.get(index) if cache is not None else None
            clips.append(clip if clip is not None else self.clip(index))
        if cache is not None:
            cache.clear()
            cache.update(zip(indices, clips, strict=True))
        times, flips = [], []
        for index, clip in zip(indices, clips, strict=True):
            frames = len(clip.frames)
            if frames < 2:
                raise GIDInputError(f"clip {index} has {frames} frame; a triple needs frame 0 and a later one")
            # Each clip visits its frames 1..T-1 in an order of its own, one per use.
            order = np.random.default_rng([self.seed, index, 1]).permutation(np.arange(1, frames))
            times.append(int(order[use % len(order)]))
            flips.append(self.flip and bool(np.random.default_rng([self.seed, index, 2, use]).integers(2)))
        return triple_batch(clips, times, flips)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        if workers != self.lanes:
            raise GIDInputError(f"a TripleStream with {self.lanes} lanes needs {self.lanes} DataLoader workers")
        cache: dict[int, TripleClip] = {}
        batch = self.start + worker
        while True:
            yield self.batch(batch, cache)
            batch += workers


def _init_worker(_: int) -> None:
    """One OpenCV thread per DataLoader worker (torch already uses one there)."""
    cv2.setNumThreads(1)


def make_loader(stream: TripleStream, num_workers: int) -> DataLoader:
    """A DataLoader yielding the stream's batches in order: one worker per lane, or none (the main process) for a
    one-lane stream. Workers are spawned, not forked: forking a process whose OpenMP or OpenCV thread pools have
    run can deadlock the child (it did, in a test process that had rendered scenes before)."""
    if num_workers != stream.lanes and not (num_workers == 0 and stream.lanes == 1):
        raise GIDInputError(f"a TripleStream with {stream.lanes} lanes needs {stream.lanes} workers, not {num_workers}")
    if num_workers == 0:
        return DataLoader(stream, batch_size=None)
    return DataLoader(
        stream, batch_size=None, num_workers=num_workers, worker_init_fn=_init_worker, multiprocessing_context="spawn"
    )
