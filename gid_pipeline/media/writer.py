"""Writing mp4 / gif / webm files that browsers play, atomically: a streaming writer, whole clips, and mp4 copies
repeated end to end (media.video reads them back)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
import warnings
import weakref
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import GIDInputError
from ..files import CloseOrAbort
from .ffmpeg import SCALE_FLAGS, ffmpeg_complaint, ffmpeg_exe, is_count, is_rate, is_size
from .images import existing_file, float_to_uint8

VIDEO_SUFFIXES = (".mp4", ".gif", ".webm")
"""Output formats of write_video / VideoWriter, chosen by the path's suffix."""


# H.264: every frame intra-coded at one constant quantizer. A loop's frames differ by less than a grey level, below
# the codec's error: predicted frames carry their key frame's error pattern and drift from it over the group of
# pictures, so the return to the key frame at the seam showed as a jump 5x a normal step (benchmarks/
# bench_seams.py). All-intra at a constant quantizer makes every frame, frame 0 included, alike: seam ratio ~1.
_MP4_QP = 23
# VP9: all-intra too. With one key frame it skips the small residuals of slow motion, which then pile up and show
# at the seam (real_val forest_edge: seam ratio 11.6 with one key frame, 0.56 all-intra; bench_seams.py).
_WEBM_CRF = 31


_WRITE_CHUNK_FRAMES = 16  # write_video converts this many frames at a time, bounding float temporaries


def _as_uint8_frames(frames: Any) -> np.ndarray:
    """Frames in any accepted layout -> uint8 (T, H, W, 3), possibly a non-contiguous view.

    Accepted: numpy (T, H, W, 3) or one frame (H, W, 3), uint8 or float in [0, 1]; torch (T, 3, H, W) or one
    frame (3, H, W), uint8 or float in [0, 1], any device; a list/tuple of such frames or chunks.
    """
    torch = sys.modules.get("torch")  # a tensor can only exist if torch was imported; avoid importing it here
    if torch is not None and isinstance(frames, torch.Tensor):
        t = frames.detach()
        t = t[None] if t.ndim == 3 else t
        if t.ndim != 4 or t.shape[1] != 3:
            raise GIDInputError(
                f"frames tensor must be (T, 3, H, W) or (3, H, W), got shape {tuple(frames.shape)}"
            )
        if t.is_floating_point():
            if not torch.isfinite(t).all():
                raise GIDInputError("frames contain NaN or infinite values")
            t = (t.clamp(0, 1) * 255).round().to(torch.uint8)
        elif t.dtype != torch.uint8:
            raise GIDInputError(f"frames tensor must be float in [0, 1] or uint8, got {t.dtype}")
        return t.permute(0, 2, 3, 1).cpu().numpy()
    if isinstance(frames, (list, tuple)):
        if not frames:
            raise GIDInputError("no frames given")
        parts = [_as_uint8_frames(f) for f in frames]
        if len({p.shape[1:] for p in parts}) > 1:
            raise GIDInputError(f"frames differ in size: {sorted({p.shape[1:3] for p in parts})} (H, W)")
        return np.concatenate(parts)
    a = np.asarray(frames)
    a = a[None] if a.ndim == 3 else a
    if a.ndim != 4 or a.shape[3] != 3:
        raise GIDInputError(
            f"frames array must be (T, H, W, 3) or (H, W, 3) RGB, got shape {np.shape(frames)}"
        )
    if a.dtype.kind == "f":
        return float_to_uint8(a, "frames")
    if a.dtype != np.uint8:
        raise GIDInputError(f"frames array must be uint8 or float in [0, 1], got {a.dtype}")
    return a


def _encoder_args(suffix: str, crf: int | None, loop: bool) -> list[str]:
    """ffmpeg output options for rgb24 raw input: codec, pixel format, colour tags, muxer."""
    if suffix == ".gif":
        # One global palette from all frames (no flicker between frames of a loop); a GIF has no alpha here.
        graph = "[0:v]split[a][b];[a]palettegen=reserve_transparent=0[p];[b][p]paletteuse=dither=sierra2_4a"
        return ["-filter_complex", graph, "-loop", "0" if loop else "-1", "-f", "gif"]
    # RGB -> BT.709 limited-range YUV, tagged as such: browsers and read_video convert back with that matrix.
    yuv = (
        f"scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+{SCALE_FLAGS},format=yuv420p,"
        "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"
    )
    if suffix == ".mp4":
        quality = _MP4_QP if crf is None else crf
        return ["-vf", yuv, "-c:v", "libx264", "-preset", "medium", "-qp", str(quality), "-g", "1",
                "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4"]  # fmt: skip
    quality = _WEBM_CRF if crf is None else crf
    # bitexact: no random segment id in the container, so the same frames always give the same bytes.
    return ["-vf", yuv, "-c:v", "libvpx-vp9", "-crf", str(quality), "-b:v", "0", "-deadline", "good",
            "-auto-alt-ref", "0", "-lag-in-frames", "0", "-g", "1",
            "-cpu-used", "4", "-row-mt", "1", "-pix_fmt", "yuv420p",
            "-fflags", "+bitexact", "-f", "webm"]  # fmt: skip


def _discard(proc: subprocess.Popen[bytes], log: IO[bytes], tmp: Path) -> None:
    """Stop ffmpeg and delete its partial output: a writer's abort, also run for a writer never closed."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    try:
        proc.stdin.close()  # type: ignore[union-attr]
    except BrokenPipeError:
        pass
    log.close()
    tmp.unlink(missing_ok=True)


class VideoWriter(CloseOrAbort):
    """Streams frames into an mp4 / gif / webm file (by the path's suffix); the file appears when complete.

    Use as a context manager; ``write`` takes chunks of frames (any layout write_video accepts, or one frame):

        with VideoWriter("out.mp4", fps=30) as w:
            for chunk in renderer:        # e.g. torch (8, 3, H, W) float in [0, 1]
                w.write(chunk)

    Formats: .mp4 is H.264 (libx264, yuv420p, BT.709, faststart so browsers start playing before the download
    ends); an odd width or height is padded to even by repeating the last column / row (every pixel kept, the
    file is at most 1 px larger). .webm is VP9 yuv420p, any size. .gif has one palette built from all frames;
    its frame delays are whole 1/100 s (30 fps alternates 3 and 4 cs); browsers slow delays under 2 cs down.
    crf: quality for mp4 (its constant quantizer, 0..51, default 23: every frame intra-coded alike, so a loop's seam
    is like any other step) and webm (0..63, default 31), lower is better; not used for gif.
    loop: gif only: loop forever (True) or play once; mp4/webm looping is a player setting (<video loop>).
    size: (width, height) the frames must have; None takes it from the first chunk.

    ffmpeg writes to a hidden temporary file next to ``path``, renamed onto ``path`` by a clean ``close()``
    (or the end of the ``with`` block); an exception, a Ctrl-C or ``abort()`` deletes it, so no half-written
    file is left, and an older file at ``path`` stays as it was. Missing parent directories are created.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float,
        size: tuple[int, int] | None = None,
        *,
        crf: int | None = None,
        loop: bool = True,
    ) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in VIDEO_SUFFIXES:
            raise GIDInputError(
                f"cannot write {self.path}: unknown video format {suffix!r}; use one of {VIDEO_SUFFIXES}"
            )
        if not is_rate(fps):
            raise GIDInputError(f"cannot write {self.path}: fps must be a positive number, got {fps!r}")
        max_crf = {".mp4": 51, ".webm": 63}.get(suffix)
        min_crf = 1 if suffix == ".mp4" else 0  # quantizer 0 is lossless H.264, a profile browsers do not play
        if crf is not None and (max_crf is None or not is_count(crf, minimum=min_crf) or crf > max_crf):
            allowed = f"an integer {min_crf}..{max_crf}" if max_crf else "None (gif has no crf)"
            raise GIDInputError(f"cannot write {self.path}: crf must be {allowed}, got {crf!r}")
        if size is not None and not is_size(size):
            raise GIDInputError(
                f"cannot write {self.path}: size must be (width, height) in positive pixels, got {size!r}"
            )
        if suffix == ".gif" and fps > 50:
            warnings.warn(
                f"{self.path}: GIF at {fps:g} fps will play slower in browsers (max ~50 fps)", stacklevel=2
            )
        self.fps = float(fps)
        self.size = None if size is None else (int(size[0]), int(size[1]))
        self.frames_written = 0
        self._args = _encoder_args(suffix, crf, loop)
        self._rate = str(Fraction(fps).limit_denominator(1001))
        self._pad_even = suffix == ".mp4"  # libx264 yuv420p needs even sides; VP9 and GIF do not
        self._tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.part")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._finalizer: weakref.finalize | None = None
        self._closed = False

    def _start(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._log = tempfile.TemporaryFile()
        cmd = [
            ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{width + width % 2}x{height + height % 2}" if self._pad_even else f"{width}x{height}",
            "-framerate", self._rate, "-i", "-", "-an", *self._args, str(self._tmp),
        ]  # fmt: skip
        # Own session: a Ctrl-C reaches Python only, which then aborts (kills ffmpeg, deletes the temp file).
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._log, start_new_session=True)
        self._finalizer = weakref.finalize(self, _discard, self._proc, self._log, self._tmp)

    def _failure(self) -> RuntimeError:
        """Abort, and say why ffmpeg failed (e.g. the disk is full)."""
        self._log.seek(0)  # type: ignore[union-attr]
        complaint = ffmpeg_complaint(self._log.read().decode(errors="replace"))  # type: ignore[union-attr]
        self.abort()
        return RuntimeError(f"ffmpeg failed writing {self.path}: {complaint}")

    def write(self, frames: Any) -> None:
        """Append frames: numpy (T, H, W, 3) or (H, W, 3), torch (T, 3, H, W) or (3, H, W), uint8 or float in
        [0, 1], or a list of those. All frames must have the writer's size."""
        if self._closed:
            raise RuntimeError(f"VideoWriter for {self.path} is already closed")
        chunk = _as_uint8_frames(frames)
        t, h, w = chunk.shape[:3]
        if t == 0:
            return
        if self.size is None:
            self.size = (w, h)
        if (w, h) != self.size:
            raise GIDInputError(
                f"writing {self.path}: frames are {w}x{h} but the video is {self.size[0]}x{self.size[1]}"
                " (width x height)"
            )
        if self._proc is None:
            self._start(w, h)
        if self._pad_even and (w % 2 or h % 2):
            chunk = np.pad(chunk, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        try:
            self._proc.stdin.write(np.ascontiguousarray(chunk).data)  # type: ignore[union-attr]
        except (BrokenPipeError, OSError) as e:
            raise self._failure() from e
        self.frames_written += t

    def close(self) -> Path:
        """Finish encoding and move the file into place; returns the path. Idempotent."""
        if self._closed:
            return self.path
        if self._proc is None:
            self.abort()
            raise GIDInputError(f"cannot write {self.path}: no frames were given")
        try:
            self._proc.stdin.close()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass
        if self._proc.wait() != 0:
            raise self._failure()
        os.replace(self._tmp, self.path)
        self._finalizer.detach()  # type: ignore[union-attr]
        self._log.close()  # type: ignore[union-attr]
        self._closed = True
        return self.path

    def abort(self) -> None:
        """Stop without producing a file (any previous file at ``path`` is left untouched)."""
        self._closed = True
        if self._finalizer is not None:
            self._finalizer()
        else:
            self._tmp.unlink(missing_ok=True)


def write_video(
    path: str | os.PathLike[str],
    frames: Any,
    fps: float,
    *,
    crf: int | None = None,
    loop: bool = True,
) -> Path:
    """Write a whole clip to ``path`` (.mp4, .gif or .webm) atomically; returns the path.

    frames: numpy (T, H, W, 3) uint8 or float in [0, 1], torch (T, 3, H, W) float in [0, 1] or uint8, or a
    sequence of single frames. Converted _WRITE_CHUNK_FRAMES at a time: a float clip is never copied whole.
    fps: frames per second. crf, loop, formats and padding: see VideoWriter.
    """
    if hasattr(frames, "shape") and len(frames.shape) != 4:
        raise GIDInputError(
            f"cannot write {path}: frames must be (T, H, W, 3) numpy or (T, 3, H, W) torch,"
            f" got shape {tuple(frames.shape)}"
        )
    if not isinstance(frames, Sequence) and not hasattr(frames, "shape"):
        raise GIDInputError(
            f"cannot write {path}: frames must be an array, a tensor or a list, got {type(frames)}"
        )
    if len(frames) == 0:
        raise GIDInputError(f"cannot write {path}: no frames given")
    with VideoWriter(path, fps, crf=crf, loop=loop) as writer:
        for i in range(0, len(frames), _WRITE_CHUNK_FRAMES):
            writer.write(frames[i : i + _WRITE_CHUNK_FRAMES])
    return writer.path


def repeat_video(source: str | os.PathLike[str], target: str | os.PathLike[str], times: int) -> Path:
    """Write ``times`` copies of the mp4 ``source``, one after the other, to ``target`` (an .mp4); returns it.

    The encoded frames are copied (ffmpeg -stream_loop, -c copy): milliseconds, no re-encoding, no quality lost,
    and a seamless loop stays seamless. The target appears once complete (written under a temporary name).
    """
    source = existing_file(source, "video")
    target = Path(target)
    if not is_count(times):
        raise GIDInputError(f"cannot repeat {source}: times must be a whole number >= 1, got {times!r}")
    if source.suffix.lower() != ".mp4" or target.suffix.lower() != ".mp4":
        raise GIDInputError(f"repeat_video copies mp4 to mp4, got {source.name} -> {target.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    command = [
        ffmpeg_exe(), "-nostdin", "-v", "error", "-y", "-stream_loop", str(times - 1),
        "-i", str(source), "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(temporary),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        temporary.unlink(missing_ok=True)
        raise GIDInputError(f"cannot repeat {source}: {ffmpeg_complaint(result.stderr.decode(errors='replace'))}")
    os.replace(temporary, target)
    return target
