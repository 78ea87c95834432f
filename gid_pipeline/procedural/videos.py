"""Procedural scenes written as ordinary video files.

The renderer learns from (frame 0, frame t, flow) triples. Procedural triples carry the exact motion; a folder of
videos (``gid train renderer --data DIR``) gets its flow from DIS (``flow.estimate_flow``), which is what a real
clip gives at evaluation time and in the app's *From video* path. Writing procedural scenes as H.264 clips makes
a folder of the second kind with known content: the renderer then also learns how estimated flow errs (smoothed
motion boundaries, thin structures, codec noise), which the exact motion cannot teach it.

Scene ``seed`` is written to ``scene_<seed>.mp4`` atomically (``video.write_video``); files already there are kept,
so an interrupted run resumes by being run again.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import GIDInputError
from ..media.writer import write_video
from .scenes import DEFAULT_SIZE, generate_scene

# Visually lossless H.264: the codec noise is small, but present as in any real clip.
DEFAULT_CRF = 18


@dataclass(frozen=True)
class ProceduralVideoConfig:
    """What each clip is: size (width, height), num_frames at fps, H.264 crf (0-51, lower is better)."""

    size: tuple[int, int] = DEFAULT_SIZE
    num_frames: int = 150
    fps: float = 30.0
    crf: int = DEFAULT_CRF

    def __post_init__(self) -> None:
        if len(self.size) != 2 or min(self.size) < 32:
            raise GIDInputError(f"size must be (width, height) >= 32, got {self.size}")
        if self.num_frames < 2 or self.fps <= 0:
            raise GIDInputError(f"a clip needs >= 2 frames at a positive rate, got {self.num_frames} at {self.fps}")
        if not 0 <= self.crf <= 51:
            raise GIDInputError(f"crf must be in 0..51, got {self.crf}")


def video_path(output: Path, seed: int) -> Path:
    """Where scene ``seed`` is written."""
    return output / f"scene_{seed}.mp4"


def write_procedural_video(seed: int, output: Path, config: ProceduralVideoConfig) -> Path:
    """Render procedural scene ``seed`` (its frames, render_frames=True) and write it as an mp4; returns the path."""
    scene = generate_scene(seed, config.size, config.num_frames, config.fps, num_frequencies=1, render_frames=True)
    return write_video(video_path(output, seed), scene.frames, config.fps, crf=config.crf)


def _write_one(job: tuple[int, Path, ProceduralVideoConfig]) -> Path:
    import cv2
    import torch

    # One thread each: the workers already use every core between them.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    return write_procedural_video(*job)


def write_procedural_videos(
    count: int,
    output: str | Path,
    config: ProceduralVideoConfig | None = None,
    *,
    seed_offset: int = 0,
    workers: int = 1,
    progress: bool = False,
) -> list[Path]:
    """Write scenes seed_offset .. seed_offset + count - 1 to ``output`` as mp4 clips; returns all their paths.

    Clips already written are kept (resume). ``workers`` processes render in parallel (spawned: forking a process
    whose OpenMP or OpenCV pools have run can deadlock).
    """
    if count < 1 or workers < 1:
        raise GIDInputError(f"need count >= 1 and workers >= 1, got {count} and {workers}")
    config = config or ProceduralVideoConfig()
    output = Path(output)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise GIDInputError(f"cannot create {output}: {error.strerror}") from None
    seeds = range(seed_offset, seed_offset + count)
    todo = [(seed, output, config) for seed in seeds if not video_path(output, seed).is_file()]
    bar = tqdm(total=count, initial=count - len(todo), desc="procedural videos", unit="clip", disable=not progress)
    if workers == 1 or len(todo) <= 1:
        for job in todo:
            write_procedural_video(*job)
            bar.update()
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=context) as pool:
            for _ in pool.map(_write_one, todo):
                bar.update()
    bar.close()
    return [video_path(output, seed) for seed in seeds]
