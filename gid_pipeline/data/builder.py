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
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import GIDInputError
from ..media.video import frames_at_rate, probe_video, read_video
from ..media.writer import VIDEO_SUFFIXES
from ..procedural.photo_world import PhotoWorld
from ..procedural.scenes import generate_scene
from ..spectral.transform import DEFAULT_NUM_FREQUENCIES, DEFAULT_PERCENTILE
from .shards import (
    DEFAULT_SAMPLES_PER_SHARD,
    SPECTRUM_DTYPE,
    Sample,
    encode_sample,
)
from .state import BuildSummary, DatasetState, Outcome
from .windows import (
    VideoConfig,
    analyse_window,
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






# ------------------------------------------------------------------------------------------------ window analysis
















# ------------------------------------------------------------------------------------------------ worker tasks




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


def _run_video_task(task: _VideoTask) -> list[Outcome]:
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
            Outcome(plan.source, w, rejection={**record, "start_frame": s})
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
            outcomes.append(Outcome(plan.source, window, rejection=rejection))
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
        outcomes.append(Outcome(plan.source, window, key, encode_sample(sample, num_frames, config.fps)))
    return outcomes


def _run_procedural_task(task: _ProceduralTask) -> list[Outcome]:
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
        outcomes.append(Outcome(PROCEDURAL_SOURCE, seed, key, encode_sample(sample, config.num_frames, config.fps)))
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
    state = DatasetState(root, settings, samples_per_shard)
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
    state = DatasetState(Path(output_dir), base, samples_per_shard)
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


def _consume(results: Iterable[list[Outcome]], state: DatasetState, total: int, unit: str, progress: bool) -> None:
    """Record every outcome, in order, with a progress bar."""
    kept = Counter[str]()
    with tqdm(total=total, desc="prepare", unit=unit, disable=None if progress else True) as bar:
        for outcomes in results:
            for outcome in outcomes:
                state.record(outcome)
                kept["kept" if outcome.files is not None else "rejected"] += 1
            bar.update(len(outcomes))
            bar.set_postfix(kept, refresh=False)
