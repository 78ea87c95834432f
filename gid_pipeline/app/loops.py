"""Loops as the app renders them: a period rendered once by the player, written as an H.264 mp4 (repeated, never
re-rendered, to the asked length) and a small GIF, and a heatmap of the motion."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..checks import check_number
from ..errors import GIDInputError
from ..limits import (
    APP_MAX_AMPLITUDE,
    APP_MAX_FPS,
    APP_MAX_FRAMES,
    APP_MAX_LOOP_SECONDS,
    APP_MAX_SPEED,
    APP_MIN_FPS,
    APP_MIN_FRAMES,
    APP_MIN_SPEED,
)
from ..media.visualize import heatmap_overlay, with_scale_bar
from ..media.writer import VideoWriter, repeat_video
from ..player import LoopTiming, PlaybackControls, Player, loop_timing
from ..sizing import working_size
from ..spectral.controls import amplitude_map
from ..spectral.volume import SpectralVolume

GIF_SIDE = 320
"""Longer side of a loop's GIF at most (pixels): GIFs are large, one period at 320 px and 15 fps is ~1-3 MB."""

GIF_FPS = 15.0
"""Highest GIF frame rate (browsers play GIF delays in whole 1/100 s and slow down under 2/100 s)."""


def loop_controls(
    speed: float = 1.0, amplitude: float = 1.0, fps: float | None = None, length_seconds: float | None = None
) -> PlaybackControls:
    """The playback a loop request asks for, within the app's limits (checked before anything is predicted)."""
    speed = check_number("speed", speed, APP_MIN_SPEED, APP_MAX_SPEED)
    amplitude = check_number("motion strength", amplitude, 0.0, APP_MAX_AMPLITUDE)
    if fps is not None:
        fps = check_number("frame rate", fps, APP_MIN_FPS, APP_MAX_FPS)
    if length_seconds is not None:
        length_seconds = check_number("duration", length_seconds, 1.0, APP_MAX_LOOP_SECONDS)
    return PlaybackControls(speed=speed, amplitude=amplitude, fps=fps, length_seconds=length_seconds)


def app_timing(volume: SpectralVolume, controls: PlaybackControls) -> tuple[PlaybackControls, LoopTiming]:
    """The player's timing of the loop (player.loop_timing), held to the app's limits: a period of at most
    APP_MAX_LOOP_SECONDS, APP_MIN_FRAMES to APP_MAX_FRAMES frames (the rate follows), and repeats that fit in
    APP_MAX_LOOP_SECONDS. Returns the controls that give that timing, and the timing."""
    period = volume.period_seconds / controls.speed
    if period > APP_MAX_LOOP_SECONDS:
        raise GIDInputError(f"the loop would last {period:.3g} s, longer than the {APP_MAX_LOOP_SECONDS:g} s a "
                            "video may: raise the speed")  # fmt: skip
    timing = loop_timing(volume, controls, frame_range=(APP_MIN_FRAMES, APP_MAX_FRAMES))
    # The same frames over the same period, said so that the player plays exactly this timing.
    controls = replace(controls, num_frames=timing.frames, fps=None)
    most = max(1, math.floor(APP_MAX_LOOP_SECONDS / timing.period_seconds + 1e-9))
    if timing.repeats > most:
        timing = replace(timing, repeats=most)
    return controls, timing


@dataclass(frozen=True)
class GifPlan:
    """Which frames of a loop's period its GIF shows, and at what size and rate (gif_plan)."""

    keep: torch.Tensor
    """(frames,) bool over the period's frames, evenly spread."""
    size: tuple[int, int]
    """(width, height) pixels, the longer side at most GIF_SIDE."""
    fps: float


def gif_plan(timing: LoopTiming, width: int, height: int) -> GifPlan:
    """A GIF of one period (a GIF loops by itself) at most GIF_SIDE px and GIF_FPS frames per second.

    A GIF's frame delays are whole 1/100 s, so its rate is 100 / delay for a whole delay (15 fps -> 7/100 s,
    14.3 fps), else it would play too fast or too slow. The period's frames are thinned to the nearest count at that
    rate (the GIF then lasts the period to within half a frame), spread evenly (index floor(i * frames / count)),
    so its last frame runs on into its first as smoothly as any other pair.
    """
    delay = max(2, math.ceil(100.0 / min(GIF_FPS, timing.fps) - 1e-9))  # 1/100 s
    count = max(2, min(timing.frames, round(timing.period_seconds * 100.0 / delay)))
    keep = torch.zeros(timing.frames, dtype=torch.bool)
    keep[torch.arange(count) * timing.frames // count] = True
    size = working_size(width, height, min(GIF_SIDE, max(width, height)))
    return GifPlan(keep, size, 100.0 / delay)


def _stream(
    path: Path,
    chunks: Iterator[torch.Tensor],
    num_frames: int,
    fps: float,
    desc: str,
    gif: tuple[Path, GifPlan] | None = None,
) -> Path:
    """Write chunks of (n, 3, H, W) float frames into an mp4 as they are rendered (the file appears once
    complete) and, if ``gif`` = (path, plan) is given, the frames the plan keeps, resized, into that GIF."""
    with ExitStack() as stack:
        writer = stack.enter_context(VideoWriter(path, fps))
        gif_writer = stack.enter_context(VideoWriter(gif[0], gif[1].fps)) if gif else None
        bar = stack.enter_context(tqdm(total=num_frames, desc=desc, unit="frame", disable=None, leave=False))
        done = 0
        for frames in chunks:
            writer.write(frames)
            if gif_writer is not None:
                width, height = gif[1].size  # type: ignore[index]
                kept = frames[gif[1].keep[done : done + frames.shape[0]].to(frames.device)]  # type: ignore[index]
                if kept.shape[0]:
                    small = F.interpolate(kept, size=(height, width), mode="bilinear", antialias=True)
                    gif_writer.write(small.clamp_(0.0, 1.0))
            done += frames.shape[0]
            bar.update(frames.shape[0])
    return path


def render_loop_video(
    path: Path,
    player: Player,
    image: np.ndarray,
    volume: SpectralVolume,
    controls: PlaybackControls,
    gif_path: Path | None = None,
    learned_renderer: bool = True,
) -> LoopTiming:
    """The seamless loop of ``image`` moved by ``volume``: an H.264 mp4 at ``path`` and, if asked, a GIF.

    One period is rendered once by the player (the volume fitted to the image, the controls applied, with its
    learned renderer if it has one and learned_renderer is True, else pixel softmax splatting); the mp4 holds it
    timing.repeats times (repeat_video), the GIF once, thinned and shrunk (gif_plan). Returns the timing.
    """
    controls, timing = app_timing(volume, controls)
    height, width = image.shape[:2]
    chunks = player.iter_loop_frames(image, volume, controls, learned_renderer=learned_renderer)
    gif = (gif_path, gif_plan(timing, width, height)) if gif_path is not None else None
    period = path if timing.repeats == 1 else path.with_name(f"{path.stem}-period{path.suffix}")
    with torch.inference_mode():
        _stream(period, chunks, timing.frames, timing.fps, "render", gif)
    if timing.repeats > 1:
        repeat_video(period, path, timing.repeats)
        period.unlink()
    return timing


def motion_heatmap(image: np.ndarray, volume: SpectralVolume, amplitude: float = 1.0) -> np.ndarray:
    """A picture of the predicted motion: how far each pixel of ``image`` swings, as a heatmap with a scale bar.

    The amount is the RMS displacement over one loop (spectral.controls.amplitude_map), computed on the volume's
    grid (e.g. the model's, 256 px: cheap) and drawn in pixels of ``image``.

    Args:
        image: (H, W, 3) uint8, the photo the volume moves (same aspect ratio).
        volume: its spectral volume, any grid.
        amplitude: the amplitude factor the loop plays with.

    Returns:
        (H + bar, W, 3) uint8 (visualize.heatmap_overlay and with_scale_bar).
    """
    swing = amplitude * amplitude_map(volume).cpu()
    picture, vmax = heatmap_overlay(image, swing * (image.shape[1] / volume.size[1]))
    return with_scale_bar(picture, vmax, "px")
