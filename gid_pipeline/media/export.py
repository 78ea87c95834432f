"""Export pipeline frames to video files, as diffusers' ``export_to_video`` does for its pipelines.

Thin wrappers over video.write_video (H.264 mp4 with yuv420p and faststart, a looping GIF with one palette, or VP9
webm; written atomically). They take what GIDPipeline returns for one video, ``out.frames[0]``:

- "pil": a list of PIL images (any mode; converted to RGB);
- "np": an (F, H, W, 3) float array in [0, 1] or uint8 array;
- "pt": an (F, 3, H, W) float tensor in [0, 1] or uint8 tensor, on any device;

and, for convenience, the whole batched ``out.frames`` when it holds a single video.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image

from ..errors import GIDInputError
from .video import VIDEO_SUFFIXES, write_video

__all__ = ["export_to_gif", "export_to_mp4", "export_to_video", "export_to_webm"]


def _single_video(frames: Any) -> Any:
    """Frames of one video in a layout write_video takes: PIL images become (H, W, 3) uint8 arrays, and a batch
    holding one video ((1, F, ...) array or tensor, or [[PIL, ...]]) is unwrapped."""
    if isinstance(frames, (list, tuple)):
        if len(frames) == 1 and isinstance(frames[0], (list, tuple)):
            frames = frames[0]
        if frames and all(isinstance(frame, PIL.Image.Image) for frame in frames):
            return [np.asarray(frame.convert("RGB")) for frame in frames]
        if any(isinstance(frame, (list, tuple)) for frame in frames):
            raise GIDInputError("frames hold several videos: export one at a time (e.g. out.frames[0])")
        return frames
    shape = getattr(frames, "shape", None)
    if shape is not None and len(shape) == 5:
        if shape[0] != 1:
            raise GIDInputError(
                f"frames hold {shape[0]} videos (shape {tuple(shape)}): export one at a time (e.g. out.frames[0])"
            )
        return frames[0]
    return frames


def export_to_video(
    frames: Any, path: str | os.PathLike[str], fps: float = 30.0, *, crf: int | None = None, loop: bool = True
) -> Path:
    """Write one video to ``path``; the format follows its suffix: .mp4, .gif or .webm.

    Args:
        frames: one video: a list of PIL images, an (F, H, W, 3) numpy array or an (F, 3, H, W) torch tensor
            (float in [0, 1] or uint8), e.g. ``out.frames[0]`` of GIDPipeline for any output_type.
        path: output file; missing folders are created; an existing file is replaced only once the new one is
            complete.
        fps: frames per second, > 0.
        crf: quality for mp4 (0..51, default 18) and webm (0..63, default 31); lower is better. Not for gif.
        loop: gif only: loop forever (default) or play once.

    Returns:
        The path written.

    Raises:
        GIDInputError: another suffix, no frames, frames of mixed sizes or a bad layout, a bad fps or crf.
    """
    suffix = Path(path).suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise GIDInputError(
            f"cannot export to {path}: unknown video format {suffix or '(no suffix)'!r}; use one of "
            f"{', '.join(VIDEO_SUFFIXES)}"
        )
    return write_video(path, _single_video(frames), fps, crf=crf, loop=loop)


def _export_as(suffix: str, frames: Any, path: str | os.PathLike[str], fps: float, **options: Any) -> Path:
    if Path(path).suffix.lower() != suffix:
        raise GIDInputError(f"export_to_{suffix[1:]} writes {suffix} files; got {path}")
    return export_to_video(frames, path, fps, **options)


def export_to_mp4(frames: Any, path: str | os.PathLike[str], fps: float = 30.0, *, crf: int | None = None) -> Path:
    """export_to_video for a .mp4 path: H.264, yuv420p, faststart (plays in every browser)."""
    return _export_as(".mp4", frames, path, fps, crf=crf)


def export_to_gif(frames: Any, path: str | os.PathLike[str], fps: float = 30.0, *, loop: bool = True) -> Path:
    """export_to_video for a .gif path: one palette for all frames, looping forever unless loop=False."""
    return _export_as(".gif", frames, path, fps, loop=loop)


def export_to_webm(frames: Any, path: str | os.PathLike[str], fps: float = 30.0, *, crf: int | None = None) -> Path:
    """export_to_video for a .webm path: VP9, yuv420p."""
    return _export_as(".webm", frames, path, fps, crf=crf)
