"""``gid prepare-data``: training datasets of (image, spectral volume) pairs, from real clips or procedural scenes.

Real clips. Every video under a folder (recursively, hidden paths skipped) is sampled at ``fps``; a window of
``num_frames`` frames starts every ``stride`` frames. Frames are centre-cropped to the model's aspect ratio and
resized to the model resolution (done as one area-averaging resize that covers the target, then a centre crop).
Each window gets optical flow from its first frame to every later one (flow.estimate_flow, DIS by default, with
the forward-backward check), and its spectral volume is spectral.motion_to_spectrum of that flow: the paper's
definition. Windows are dropped, with the reason recorded, when they fail a reliability filter (WindowFilters):
a scene cut, camera motion, too much or no motion, or inconsistent flow.

Procedural scenes: procedural.generate_scene for seeds seed_offset .. seed_offset + N - 1, exact motion.

Both run over worker processes (each OpenCV / torch single-threaded), write the format of data/shards.py and are
resumable: work is tracked per item (window or seed); an item counts as done once its sample sits in a shard that
was renamed into place and recorded in the manifest (or once its rejection was recorded). A rerun skips done items
and regenerates the rest in the same order, so an interrupted build completes into exactly the dataset an
uninterrupted one gives; shards and the manifest are only ever replaced whole (temporary file, then rename).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
import multiprocessing
import os
import re
import signal
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import GIDInputError
from ..files import PARTIAL_SUFFIX, write_bytes_atomic, write_json_atomic
from ..media.video import VIDEO_SUFFIXES, frames_at_rate, probe_video, read_video
from ..motion.flow import (
    METHODS,
    STABILIZE_MODES,
    create_estimator,
    estimate_flow,
    forward_backward_consistency,
    remove_camera_motion,
)
from ..procedural.photo_world import PhotoWorld
from ..procedural.scenes import generate_scene
from ..spectral.transform import DEFAULT_NUM_FREQUENCIES, DEFAULT_PERCENTILE, SpectralNormalizer, motion_to_spectrum
from .shards import (
    CARD_NAME,
    DEFAULT_SAMPLES_PER_SHARD,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    NORMALIZATION_NAME,
    SHARD_GLOB,
    SPECTRUM_DTYPE,
    Sample,
    ShardWriter,
    compute_normalization,
    encode_sample,
    read_manifest,
    shard_name,
)

INPUT_VIDEO_SUFFIXES = tuple(
    sorted({*VIDEO_SUFFIXES, ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts"})
)
PROCEDURAL_SOURCE = "procedural"
_MAX_ITEMS_PER_TASK = 8  # windows (or seeds) per worker task: bounds a task's memory and its redundant decoding
_TASKS_PER_WORKER = 4  # split small jobs into at least this many tasks per worker, so all workers get some


@dataclass(frozen=True)
class SampleConfig:
    """What every sample of a dataset shares (paper defaults).

    size: (width, height) of images and spectra in pixels. num_frames: T, frames a spectrum is computed over.
    fps: frame rate of those frames (bin k is k * fps / T Hz). num_frequencies: K bins kept.
    """

    size: tuple[int, int] = (256, 160)
    num_frames: int = 150
    fps: float = 30.0
    num_frequencies: int = DEFAULT_NUM_FREQUENCIES

    def __post_init__(self) -> None:
        width, height = self.size
        if width < 32 or height < 32:
            raise GIDInputError(f"dataset size must be at least 32x32, got {width}x{height}")
        if self.num_frames < 2 or not (math.isfinite(self.fps) and self.fps > 0):
            raise GIDInputError(f"need frames >= 2 and fps > 0, got {self.num_frames} and {self.fps}")
        if not 1 <= self.num_frequencies <= self.num_frames // 2 + 1:
            raise GIDInputError(
                f"num_frequencies must be between 1 and T // 2 + 1 = {self.num_frames // 2 + 1} for T = "
                f"{self.num_frames} frames, got {self.num_frequencies}"
            )


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


@dataclass(frozen=True)
class BuildSummary:
    """What a prepare-data run left behind.

    num_samples / num_shards: in the whole dataset; new_samples: added by this run; rejected: windows (and
    too-short clips) per reason, whole dataset; errors: unreadable files; normalizer: the saved statistics.
    """

    root: Path
    num_samples: int
    num_shards: int
    new_samples: int
    rejected: dict[str, int]
    errors: int
    normalizer: SpectralNormalizer | None


# ------------------------------------------------------------------------------------------------ window analysis


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


# ------------------------------------------------------------------------------------------------ worker tasks


@dataclass(frozen=True)
class _Outcome:
    """What processing one item gave: encoded sample members, or a rejection record."""

    source: str
    item: int
    key: str | None = None
    files: dict[str, bytes] | None = None
    rejection: dict[str, Any] | None = None


@dataclass(frozen=True)
class _ClipPlan:
    """A probed clip: its windows, or why it has none (error: unreadable; too_short: the detail)."""

    path: str
    source: str
    num_windows: int = 0
    read_size: tuple[int, int] = (0, 0)
    source_size: tuple[int, int] = (0, 0)
    source_fps: float = 0.0
    error: str | None = None
    too_short: str | None = None


@dataclass(frozen=True)
class _VideoTask:
    plan: _ClipPlan
    windows: tuple[int, ...]
    config: SampleConfig
    video: VideoConfig


@dataclass(frozen=True)
class _ProceduralTask:
    seeds: tuple[int, ...]
    config: SampleConfig
    texture_bank: str | None = None


@functools.lru_cache(maxsize=2)
def photo_world(texture_bank: str) -> PhotoWorld:
    """The photographic world of a texture bank folder, loaded once per process."""
    from ..procedural.texture_bank import TextureBank

    return PhotoWorld(TextureBank.load(texture_bank))


def cover_size(source: tuple[int, int], target: tuple[int, int]) -> tuple[int, int]:
    """(width, height) to resize ``source`` to, keeping its aspect ratio, so it just covers ``target``; a centre
    crop of that is then ``target``: together, a centre crop to the target's aspect ratio and a resize."""
    scale = max(target[0] / source[0], target[1] / source[1])
    return max(target[0], round(source[0] * scale)), max(target[1], round(source[1] * scale))


def centre_crop(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(T, h, w, 3) -> (T, height, width, 3), the centre of each frame; size = (width, height) <= (w, h)."""
    width, height = size
    top, left = (frames.shape[1] - height) // 2, (frames.shape[2] - width) // 2
    return np.ascontiguousarray(frames[:, top : top + height, left : left + width])


def video_key(source: str, start: int) -> str:
    """Sample key of the window starting at frame ``start`` of ``source`` (a relative path): readable, unique
    (a hash of the full path), and without dots."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", str(Path(source).with_suffix(""))).strip("_")[-40:] or "clip"
    return f"{slug}-{hashlib.sha1(source.encode()).hexdigest()[:8]}-{start:06d}"


def procedural_key(seed: int) -> str:
    return f"{PROCEDURAL_SOURCE}-{seed:09d}"


def _probe_clip(job: tuple[str, str, SampleConfig, int]) -> _ClipPlan:
    """Probe one file: how many windows it holds at the dataset's fps, or why it has none."""
    path, source, config, stride = job
    try:
        info = probe_video(path)
    except GIDInputError as error:
        return _ClipPlan(path, source, error=str(error))
    # The exact rule read_video resamples by, so that every planned window can be read.
    num_out = frames_at_rate(
        info.num_frames, Fraction(info.fps).limit_denominator(1001), Fraction(config.fps).limit_denominator(1001)
    )
    plan = _ClipPlan(
        path,
        source,
        num_windows=max(0, (num_out - config.num_frames) // stride + 1),
        read_size=cover_size((info.width, info.height), config.size),
        source_size=(info.width, info.height),
        source_fps=info.fps,
    )
    if plan.num_windows == 0:
        detail = f"{num_out} frames at {config.fps:g} fps; a window needs {config.num_frames}"
        return _ClipPlan(path, source, too_short=detail)
    return plan


def _run_video_task(task: _VideoTask) -> list[_Outcome]:
    """Read the frames a task's windows span once, then analyse and encode each window."""
    plan, config, stride, num_frames = task.plan, task.config, task.video.stride, task.config.num_frames
    starts = [window * stride for window in task.windows]
    try:
        clip = read_video(
            plan.path,
            fps=config.fps,
            start=starts[0],
            num_frames=starts[-1] - starts[0] + num_frames,
            size=plan.read_size,
            max_frames=starts[-1] - starts[0] + num_frames,
        )
    except GIDInputError as error:
        record = {"source": plan.source, "reason": "unreadable", "detail": str(error)}
        return [
            _Outcome(plan.source, w, rejection={**record, "start_frame": s})
            for w, s in zip(task.windows, starts, strict=True)
        ]
    frames = centre_crop(clip.frames, config.size)
    outcomes = []
    for window, start in zip(task.windows, starts, strict=True):
        analysis = analyse_window(frames[start - starts[0] : start - starts[0] + num_frames], config.num_frequencies,
                                  task.video)  # fmt: skip
        record = {"source": plan.source, "start_frame": start, "scores": analysis.scores}
        if analysis.spectrum is None:
            rejection = {**record, "reason": analysis.reason, "detail": analysis.detail}
            outcomes.append(_Outcome(plan.source, window, rejection=rejection))
            continue
        key = video_key(plan.source, start)
        meta = {
            **record,
            **_sample_meta(key, config),
            "start_time_s": start / config.fps,
            "source_size": list(plan.source_size),
            "source_fps": plan.source_fps,
        }
        sample = Sample(key, frames[start - starts[0]], analysis.spectrum, meta)
        outcomes.append(_Outcome(plan.source, window, key, encode_sample(sample, num_frames, config.fps)))
    return outcomes


def _run_procedural_task(task: _ProceduralTask) -> list[_Outcome]:
    """Generate and encode each seed's scene."""
    config = task.config
    world = None if task.texture_bank is None else photo_world(task.texture_bank)
    outcomes = []
    for seed in task.seeds:
        scene = generate_scene(
            seed, config.size, config.num_frames, config.fps, config.num_frequencies, return_displacements=False,
            world=world,
        )
        key = procedural_key(seed)
        meta = {**_sample_meta(key, config), "source": PROCEDURAL_SOURCE, "seed": seed, "procedural": scene.meta}
        sample = Sample(key, scene.image, scene.spectrum, meta)
        outcomes.append(_Outcome(PROCEDURAL_SOURCE, seed, key, encode_sample(sample, config.num_frames, config.fps)))
    return outcomes


def _sample_meta(key: str, config: SampleConfig) -> dict[str, Any]:
    return {
        "key": key,
        "fps": float(config.fps),
        "num_frames": config.num_frames,
        "num_frequencies": config.num_frequencies,
        "size": list(config.size),
    }


# ------------------------------------------------------------------------------------------------ process pool

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


def _init_worker() -> None:
    """Worker processes: one thread each (the processes are the parallelism); Ctrl-C is the parent's to handle."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


class _Runner:
    """Ordered map over worker processes with bounded look-ahead (so finished results never pile up in memory),
    or in this process when workers == 1. Leaving the block terminates the workers."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: Any = None
        self._threads = (torch.get_num_threads(), cv2.getNumThreads())

    def __enter__(self) -> _Runner:
        if self.workers == 1:
            torch.set_num_threads(1)
            cv2.setNumThreads(1)
        else:  # spawn: forking a process whose OpenMP / OpenCV thread pools are running can deadlock
            self._pool = multiprocessing.get_context("spawn").Pool(self.workers, initializer=_init_worker)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._pool is not None:
            if exc_type is None:
                self._pool.close()  # every task is done: let the workers exit on their own
            else:
                self._pool.terminate()
            self._pool.join()
        torch.set_num_threads(self._threads[0])
        cv2.setNumThreads(self._threads[1])

    def imap(self, function: Callable[[_Item], _Result], items: Iterable[_Item]) -> Iterator[_Result]:
        if self._pool is None:
            yield from map(function, items)
            return
        items = iter(items)
        pending = deque(self._pool.apply_async(function, (item,)) for item in itertools.islice(items, 2 * self.workers))
        while pending:
            result = pending.popleft().get()
            pending.extend(self._pool.apply_async(function, (item,)) for item in itertools.islice(items, 1))
            yield result


def default_workers() -> int:
    """The CPU cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ------------------------------------------------------------------------------------------------ dataset state


def _to_ranges(items: Iterable[int]) -> list[list[int]]:
    """Sorted integers as inclusive [first, last] runs: {0, 1, 2, 5} -> [[0, 2], [5, 5]]."""
    ranges: list[list[int]] = []
    for item in sorted(items):
        if ranges and item == ranges[-1][1] + 1:
            ranges[-1][1] = item
        else:
            ranges.append([item, item])
    return ranges


def _from_ranges(ranges: Iterable[list[int]]) -> set[int]:
    return {item for first, last in ranges for item in range(first, last + 1)}


class _DatasetState:
    """The dataset directory during a build: its committed manifest, the shard being written, and the items
    processed since the last commit (done only once their samples are in a renamed shard)."""

    def __init__(self, root: Path, config: dict[str, Any], samples_per_shard: int) -> None:
        self.root, self.config, self.samples_per_shard = root, config, samples_per_shard
        if root.exists() and not root.is_dir():
            raise GIDInputError(f"output {root} exists and is not a directory")
        if (root / MANIFEST_NAME).exists():
            manifest = read_manifest(root)
            _check_same_config(root, manifest["config"], config)
        elif root.exists() and any(root.iterdir()):
            raise GIDInputError(f"output directory {root} is not empty and holds no gid dataset; use a new one")
        else:
            root.mkdir(parents=True, exist_ok=True)
            manifest = {"shards": [], "done": {}, "rejected": []}
        self.shards: list[dict[str, Any]] = manifest["shards"]
        self.done = {source: _from_ranges(ranges) for source, ranges in manifest["done"].items()}
        # Clip-level records (too short, unreadable) are re-established by every run's probing; window-level
        # rejections are committed with their windows.
        self.rejected: list[dict[str, Any]] = [r for r in manifest["rejected"] if r.get("start_frame") is not None]
        self.clip_rejected: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.normalization: dict[str, Any] | None = manifest.get("normalization")
        self.pending: list[_Outcome] = []
        self.writer: ShardWriter | None = None
        self.new_samples = 0
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Delete what an interrupted run may have left: temporary files, and a shard renamed into place whose
        manifest entry was never written (its items were not done, so they will be redone)."""
        listed = {shard["name"] for shard in self.shards}
        for path in self.root.glob(SHARD_GLOB):
            if path.name not in listed:
                path.unlink()
        for path in self.root.glob(f".*{PARTIAL_SUFFIX}"):
            path.unlink()

    def is_done(self, source: str, item: int) -> bool:
        return item in self.done.get(source, ())

    def record(self, outcome: _Outcome) -> None:
        """Take one item's outcome, in item order; closing a full shard commits everything recorded so far."""
        self.pending.append(outcome)
        if outcome.files is None:
            return
        if self.writer is None:
            self.writer = ShardWriter(self.root / shard_name(len(self.shards)))
        self.writer.add(outcome.key, outcome.files)  # type: ignore[arg-type]
        self.new_samples += 1
        if self.writer.num_samples >= self.samples_per_shard:
            self._close_shard()
            self.commit(complete=False)

    def _close_shard(self) -> None:
        writer, self.writer = self.writer, None
        num_bytes = writer.close()  # type: ignore[union-attr]
        self.shards.append({"name": writer.path.name, "num_samples": writer.num_samples, "num_bytes": num_bytes})

    def commit(self, complete: bool) -> None:
        """Mark every pending item done and rewrite the manifest (atomically)."""
        for outcome in self.pending:
            self.done.setdefault(outcome.source, set()).add(outcome.item)
            if outcome.rejection is not None:
                self.rejected.append(outcome.rejection)
        self.pending = []
        rejected = sorted(
            self.rejected + self.clip_rejected, key=lambda r: (r["source"], r.get("start_frame") is not None,
                                                               r.get("start_frame") or 0),
        )  # fmt: skip
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "config": self.config,
            "complete": complete,
            "num_samples": sum(shard["num_samples"] for shard in self.shards),
            "shards": self.shards,
            "done": {source: _to_ranges(items) for source, items in sorted(self.done.items())},
            "rejected": rejected,
            "rejected_counts": dict(sorted(Counter(r["reason"] for r in rejected).items())),
            "errors": sorted(self.errors, key=lambda e: e["source"]),
            "normalization": self.normalization,
        }
        write_json_atomic(self.root / MANIFEST_NAME, manifest)

    def finish(self, percentile: float) -> BuildSummary:
        """Close the last shard, commit, fit the normalisation statistics if the samples changed, write the card."""
        if self.writer is not None:
            self._close_shard()
        self.commit(complete=False)
        num_samples = sum(shard["num_samples"] for shard in self.shards)
        stats = self.root / NORMALIZATION_NAME
        current = self.normalization == {"num_samples": num_samples, "percentile": percentile} and stats.is_file()
        normalizer = None
        if num_samples and not current:
            normalizer = compute_normalization(self.root, percentile)
            self.normalization = {"num_samples": num_samples, "percentile": percentile}
        elif num_samples:
            normalizer = SpectralNormalizer.load(stats)
        self.commit(complete=True)
        _write_card(self.root, self.config, num_samples, len(self.shards), normalizer)
        return BuildSummary(
            root=self.root,
            num_samples=num_samples,
            num_shards=len(self.shards),
            new_samples=self.new_samples,
            rejected=dict(Counter(r["reason"] for r in self.rejected + self.clip_rejected)),
            errors=len(self.errors),
            normalizer=normalizer,
        )

    def abort(self) -> None:
        """Drop the shard being written; the manifest on disk stays at the last commit."""
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


def _check_same_config(root: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    if old == new:
        return
    flat_old, flat_new = _flatten(old), _flatten(new)
    changed = [f"{k}: {flat_old.get(k)} -> {flat_new.get(k)}" for k in sorted(flat_old.keys() | flat_new.keys())
               if flat_old.get(k) != flat_new.get(k)]  # fmt: skip
    raise GIDInputError(
        f"{root} was prepared with other settings ({'; '.join(changed)}); rerun with the same settings to resume, "
        "or use a new output directory"
    )


def _flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _write_card(
    root: Path, config: dict[str, Any], num_samples: int, num_shards: int, normalizer: SpectralNormalizer | None
) -> None:
    """A short dataset card; its YAML header points Hugging Face's viewer at the shards."""
    width, height = config["size"]
    stats = "no samples, no statistics"
    if normalizer is not None:
        scales = ", ".join(f"{s:.3g}" for s in normalizer.scales)
        stats = f"the per-frequency {normalizer.percentile:g}th-percentile scales: {scales}"
    text = f"""---
configs:
- config_name: default
  data_files: "{SHARD_GLOB}"
tags:
- generative-image-dynamics
- optical-flow
- webdataset
---
# Spectral volumes ({config["kind"]})

{num_samples} (image, spectral volume) pairs in {num_shards} WebDataset shards, made by `gid prepare-data`
(gid_pipeline). Each sample `KEY` has `KEY.png` (frame 0, {width}x{height} RGB), `KEY.spectrum.safetensors`
(tensor `spectrum`, ({config["num_frequencies"]}, 4, {height}, {width}) {config["spectrum_dtype"]}, unnormalised pixels,
channels x.real, y.real, x.imag, y.imag; bin k is k * {config["fps"]:g} / {config["num_frames"]} Hz) and `KEY.json`.
`manifest.json` lists the shards, the settings and every rejected window with its reason; `normalization.json` holds
{stats}.
"""
    write_bytes_atomic(root / CARD_NAME, text.encode())


# ------------------------------------------------------------------------------------------------ entry points


def _base_config(kind: str, config: SampleConfig) -> dict[str, Any]:
    return {
        "kind": kind,
        "size": list(config.size),
        "num_frames": config.num_frames,
        "fps": float(config.fps),
        "num_frequencies": config.num_frequencies,
        "spectrum_dtype": str(SPECTRUM_DTYPE).removeprefix("torch."),
    }


def _task_size(num_items: int, workers: int) -> int:
    """Items per task: at most _MAX_ITEMS_PER_TASK, few enough to give every worker several tasks."""
    return max(1, min(_MAX_ITEMS_PER_TASK, math.ceil(num_items / (_TASKS_PER_WORKER * workers))))


def _chunks(items: list[_Item], size: int) -> Iterator[list[_Item]]:
    for first in range(0, len(items), size):
        yield items[first : first + size]


def _check_common(workers: int | None, samples_per_shard: int) -> int:
    workers = default_workers() if workers is None else workers
    if workers < 1 or samples_per_shard < 1:
        raise GIDInputError(f"workers and samples per shard must be >= 1, got {workers} and {samples_per_shard}")
    return workers


def find_videos(video_dir: str | os.PathLike[str], exclude: str | os.PathLike[str] | None = None) -> list[Path]:
    """Video files under video_dir (by INPUT_VIDEO_SUFFIXES, recursively), without hidden paths or anything under
    ``exclude`` (the output directory, when it lies inside), sorted by relative path."""
    root = Path(video_dir)
    if not root.is_dir():
        raise GIDInputError(f"video folder {root} does not exist or is not a directory")
    excluded = Path(exclude).resolve() if exclude is not None else None
    found = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if path.suffix.lower() not in INPUT_VIDEO_SUFFIXES or any(p.startswith(".") for p in relative.parts):
            continue
        if excluded is not None and path.resolve().is_relative_to(excluded):
            continue
        if path.is_file():
            found.append(path)
    if not found:
        raise GIDInputError(
            f"{root} contains no video files (looked recursively for {', '.join(INPUT_VIDEO_SUFFIXES)})"
        )
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def prepare_video_dataset(
    video_dir: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    config: SampleConfig | None = None,
    video: VideoConfig | None = None,
    *,
    workers: int | None = None,
    samples_per_shard: int = DEFAULT_SAMPLES_PER_SHARD,
    percentile: float = DEFAULT_PERCENTILE,
    progress: bool = False,
) -> BuildSummary:
    """Build (or resume) a dataset of windows of the clips under video_dir.

    Args:
        video_dir: folder searched recursively (find_videos).
        output_dir: the dataset directory (created; must be new, empty, or a dataset built with the same settings).
        config, video: sample format; windowing, flow and filters (None: the defaults).
        workers: processes (default: the CPU cores); 1 runs in this process.
        samples_per_shard: samples per tar shard.
        percentile: of |coefficient| per frequency for normalization.json.
        progress: tqdm bars (on a terminal).

    Raises:
        GIDInputError: no video files, bad settings, a directory built with other settings, or no file readable.
    """
    workers = _check_common(workers, samples_per_shard)
    config, video = config or SampleConfig(), video or VideoConfig()
    root = Path(output_dir)
    paths = find_videos(video_dir, exclude=root)
    base = Path(video_dir)
    settings = {**_base_config("video", config), "video": {**asdict(video), "source_dir": str(base.resolve())}}
    state = _DatasetState(root, settings, samples_per_shard)
    try:
        with _Runner(workers) as runner:
            jobs = [(str(p), p.relative_to(base).as_posix(), config, video.stride) for p in paths]
            plans = list(tqdm(runner.imap(_probe_clip, jobs), total=len(jobs), desc="probe", unit="clip",
                              disable=None if progress else True))  # fmt: skip
            state.errors = [{"source": p.source, "error": p.error} for p in plans if p.error]
            state.clip_rejected = [{"source": p.source, "start_frame": None, "reason": "too_short",
                                    "detail": p.too_short} for p in plans if p.too_short]  # fmt: skip
            items = [(plan, w) for plan in plans for w in range(plan.num_windows) if not state.is_done(plan.source, w)]
            size = _task_size(len(items), workers)
            tasks = [
                _VideoTask(group[0][0], tuple(w for _, w in group), config, video)
                for _, clip_items in itertools.groupby(items, key=lambda item: item[0].source)
                for group in _chunks(list(clip_items), size)
            ]
            _consume(runner.imap(_run_video_task, tasks), state, len(items), "window", progress)
        summary = state.finish(percentile)
    except BaseException:
        state.abort()
        raise
    if len(state.errors) == len(paths):
        first = state.errors[0]
        raise GIDInputError(f"none of the {len(paths)} video files could be read ({first['source']}: {first['error']})")
    return summary


def prepare_procedural_dataset(
    num_samples: int,
    output_dir: str | os.PathLike[str],
    config: SampleConfig | None = None,
    *,
    seed_offset: int = 0,
    workers: int | None = None,
    samples_per_shard: int = DEFAULT_SAMPLES_PER_SHARD,
    percentile: float = DEFAULT_PERCENTILE,
    progress: bool = False,
    texture_bank: str | os.PathLike[str] | None = None,
) -> BuildSummary:
    """Build (or resume, or extend with more seeds) a dataset of procedural scenes, seeds seed_offset ..
    seed_offset + num_samples - 1. Arguments as prepare_video_dataset; texture_bank: a ``gid texture-bank``
    folder, which generates the scenes in the photographic world (procedural.photo_world) with its textures."""
    workers = _check_common(workers, samples_per_shard)
    config = config or SampleConfig()
    if num_samples < 1 or seed_offset < 0:
        raise GIDInputError(f"need num_samples >= 1 and seed_offset >= 0, got {num_samples} and {seed_offset}")
    base = _base_config(PROCEDURAL_SOURCE, config)
    bank = None
    if texture_bank is not None:
        bank = str(Path(texture_bank).resolve())
        world = photo_world(bank)  # a missing or broken bank is named before any work
        base["photo_world"] = {"texture_bank": bank, "materials": world.textures.counts}
    state = _DatasetState(Path(output_dir), base, samples_per_shard)
    try:
        with _Runner(workers) as runner:
            seeds = [
                s for s in range(seed_offset, seed_offset + num_samples) if not state.is_done(PROCEDURAL_SOURCE, s)
            ]
            tasks = [_ProceduralTask(tuple(group), config, bank)
                     for group in _chunks(seeds, _task_size(len(seeds), workers))]  # fmt: skip
            _consume(runner.imap(_run_procedural_task, tasks), state, len(seeds), "sample", progress)
        return state.finish(percentile)
    except BaseException:
        state.abort()
        raise


def _consume(results: Iterable[list[_Outcome]], state: _DatasetState, total: int, unit: str, progress: bool) -> None:
    """Record every outcome, in order, with a progress bar."""
    kept = Counter[str]()
    with tqdm(total=total, desc="prepare", unit=unit, disable=None if progress else True) as bar:
        for outcomes in results:
            for outcome in outcomes:
                state.record(outcome)
                kept["kept" if outcome.files is not None else "rejected"] += 1
            bar.update(len(outcomes))
            bar.set_postfix(kept, refresh=False)
