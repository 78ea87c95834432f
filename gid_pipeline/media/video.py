"""Reading clips, writing mp4 / gif / webm (still images: media.images).

Video I/O runs the ffmpeg binary bundled with the ``imageio-ffmpeg`` wheel (no system ffmpeg needed); still
images go through Pillow.

Conventions:
  * A clip read from disk is ``np.ndarray`` uint8 of shape (T, H, W, 3), RGB.
  * A single image is ``np.ndarray`` uint8 of shape (H, W, 3), RGB.
  * Writers also accept a torch float tensor (T, 3, H, W) or a numpy float array (T, H, W, 3) with values in
    [0, 1] (clamped, then rounded to the nearest of 256 levels).

Frame timing: a clip's frames are taken as evenly spaced at the stream's nominal frame rate, frame ``i`` at
``i / fps`` seconds. Container timestamps are ignored, so every decoded frame is kept exactly once: an AVI
with dropped-frame gaps or a variable-frame-rate phone clip is not padded with repeated frames, which motion
estimation would read as "no motion".
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
import subprocess
import sys
import tempfile
import uuid
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import imageio_ffmpeg
import numpy as np

from ..errors import GIDInputError
from ..limits import MAX_CLIP_BYTES, MAX_CLIP_FRAMES
from .images import existing_file, float_to_uint8

__all__ = [
    "VIDEO_SUFFIXES",
    "Clip",
    "VideoInfo",
    "VideoWriter",
    "frames_at_rate",
    "probe_video",
    "read_video",
    "repeat_video",
    "write_video",
]

COUNT_FRAMES_MAX_BYTES = 512 * 1024**2
"""probe_video counts frames exactly (by demuxing, no decoding) for files up to this size, else estimates."""
VIDEO_SUFFIXES = (".mp4", ".gif", ".webm")
"""Output formats of write_video / VideoWriter, chosen by the path's suffix."""

_MP4_CRF, _WEBM_CRF = 18, 31  # visually near-lossless H.264; VP9's recommended quality for ~720p
_WRITE_CHUNK_FRAMES = 16  # write_video converts this many frames at a time, bounding float temporaries
_SCALE_FLAGS = "accurate_rnd+full_chroma_int+full_chroma_inp"


@dataclass(frozen=True)
class VideoInfo:
    """What probe_video found out about a clip's first video stream.

    width, height: pixels of the frames read_video returns at native size (rotation metadata applied).
    fps: nominal frame rate (frames per second).
    num_frames: number of frames; exact when ``num_frames_exact`` (counted from the non-empty packets of the
        stream, without decoding), else estimated as ``round(duration * fps)`` from the container's duration
        (0 if it states none).
    duration_s: ``num_frames / fps`` in seconds, i.e. the length of the clip as read_video sees it.
    codec: ffmpeg's codec name, e.g. "h264", "vp9", "gif". pix_fmt: e.g. "yuv420p".
    """

    path: Path
    width: int
    height: int
    fps: float
    num_frames: int
    num_frames_exact: bool
    duration_s: float
    codec: str
    pix_fmt: str


@dataclass
class Clip:
    """Frames read from a video file: ``frames`` uint8 (T, H, W, 3) RGB, shown at ``fps`` frames a second."""

    frames: np.ndarray
    fps: float

    @property
    def duration_s(self) -> float:
        """Length in seconds: T / fps."""
        return len(self.frames) / self.fps


# --------------------------------------------------------------------------------------------- probing


def _ffmpeg() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def _is_count(x: Any, minimum: int = 1) -> bool:
    """An integer (not bool) >= minimum."""
    return isinstance(x, numbers.Integral) and not isinstance(x, bool) and x >= minimum


def _is_rate(x: Any) -> bool:
    """A finite real number > 0."""
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def _is_size(size: Any) -> bool:
    """A (width, height) pair of positive integers."""
    return isinstance(size, (tuple, list)) and len(size) == 2 and all(_is_count(s) for s in size)


def _ffmpeg_complaint(stderr: str) -> str:
    """The most telling line of ffmpeg's log, for an error message."""
    # Without ffmpeg's "[component @ 0x...]" prefixes.
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", ln.strip()) for ln in stderr.splitlines() if ln.strip()]
    for key in ("partial file", "moov atom not found", "Invalid data found", "Invalid argument", "rror"):
        for ln in lines:
            if key in ln:
                return ln
    return lines[-1] if lines else "no output"


def _parse_rate(text: str) -> float:
    """ "29.97" -> 29.97, "1k" -> 1000."""
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def _probe(path: Path) -> VideoInfo:
    """Parse ``ffmpeg -i`` (the bundled ffmpeg has no ffprobe); num_frames is estimated here."""
    proc = subprocess.run(
        [_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    log = proc.stderr.decode(errors="replace")
    fmt = re.search(r"^Input #0, (\S+), from", log, re.MULTILINE)
    if fmt is None:
        raise GIDInputError(
            f"cannot read {path}: not a video file, or it is corrupt or incomplete "
            f"(ffmpeg: {_ffmpeg_complaint(log)})"
        )
    if fmt.group(1) == "image2" or fmt.group(1).endswith("_pipe"):
        raise GIDInputError(f"{path} is a still image, not a video; use read_image for photos")
    # The first video stream that is not cover art (the one `-map 0:V:0` picks), with its indented side data.
    stream = re.search(
        r"^\s*Stream #0:\d+\S*: Video: (?!.*\(attached pic\))(.*)\n((?:\s{4,}.*\n)*)",
        log + "\n",
        re.MULTILINE,
    )
    if stream is None:
        # Component messages ("[in#0 @ 0x...] ...") mean a damaged header rather than e.g. an audio file.
        trouble = "\n".join(ln for ln in log.splitlines() if ln.startswith("["))
        hint = f" (it may be incomplete or corrupt; ffmpeg: {_ffmpeg_complaint(trouble)})" if trouble else ""
        raise GIDInputError(f"{path} has no video stream{hint}")
    line, side = stream.groups()
    size = re.search(r", (\d+)x(\d+)", line)
    rate = re.search(r", ([\d.]+k?) fps", line) or re.search(r", ([\d.]+k?) tbr", line)
    if size is None or rate is None or _parse_rate(rate.group(1)) <= 0:
        raise GIDInputError(
            f"cannot read {path}: ffmpeg reports no frame size or frame rate ({line.strip()})"
        )
    width, height = int(size.group(1)), int(size.group(2))
    rotation = re.search(r"rotation of (-?[\d.]+) degrees", side, re.IGNORECASE)
    if rotation is not None and round(float(rotation.group(1))) % 180 == 90:
        width, height = height, width  # ffmpeg auto-rotates on decode
    fps = _parse_rate(rate.group(1))
    dur = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", log)
    duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else 0.0
    num_frames = round(duration * fps)  # 0 when the container states no duration
    pix_fmt = re.match(r"[^,]*, (\w+)", line)
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=fps,
        num_frames=num_frames,
        num_frames_exact=False,
        duration_s=num_frames / fps,
        codec=re.match(r"\w+", line).group(0),  # type: ignore[union-attr]
        pix_fmt=pix_fmt.group(1) if pix_fmt else "unknown",
    )


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Size, frame rate, frame count, duration and codec of the video at ``path``.

    Frames are counted exactly (by demuxing: fast, no decoding) for files up to COUNT_FRAMES_MAX_BYTES, else
    estimated from the container's duration; ``VideoInfo.num_frames_exact`` says which.
    Raises GIDInputError for a missing file, a still image, or a file ffmpeg cannot read as video.
    """
    p = existing_file(path, "video")
    info = _probe(p)
    if p.stat().st_size > COUNT_FRAMES_MAX_BYTES:
        return info
    # framecrc prints one line per packet; empty packets (an AVI's dropped-frame markers) decode to no frame.
    cmd = [
        _ffmpeg(),
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(p),
        "-map",
        "0:V:0",
        "-c",
        "copy",
        "-f",
        "framecrc",
        "-",
    ]
    proc = subprocess.run(cmd, capture_output=True, timeout=600, check=False)
    sizes = [ln.split(b",")[4] for ln in proc.stdout.splitlines() if ln and not ln.startswith(b"#")]
    count = sum(int(s) > 0 for s in sizes)
    if count == 0:
        return info
    return dataclasses.replace(info, num_frames=count, num_frames_exact=True, duration_s=count / info.fps)


# --------------------------------------------------------------------------------------------- reading


def _output_size(
    src: tuple[int, int], size: tuple[int, int] | None, long_side: int | None, path: Path
) -> tuple[int, int]:
    """(width, height) of the frames read_video returns."""
    if size is not None and long_side is not None:
        raise GIDInputError(f"reading {path}: pass size or long_side, not both")
    if size is not None:
        if not _is_size(size):
            raise GIDInputError(
                f"reading {path}: size must be (width, height) in positive pixels, got {size!r}"
            )
        return int(size[0]), int(size[1])
    if long_side is not None:
        if not _is_count(long_side):
            raise GIDInputError(
                f"reading {path}: long_side must be a positive number of pixels, got {long_side!r}"
            )
        scale = long_side / max(src)
        return max(1, round(src[0] * scale)), max(1, round(src[1] * scale))
    return src


def _source_indices(out_idx: np.ndarray, src_fps: Fraction, out_fps: Fraction) -> np.ndarray:
    """Index of the source frame nearest in time to each output frame; a tie goes to the earlier frame.

    Output frame k is at k / out_fps s, source frame i at i / src_fps s. Exact integer arithmetic, so e.g.
    15 -> 30 fps gives 0, 0, 1, 1, 2, 2, ... and 30 -> 10 fps gives 0, 3, 6, ...
    """
    p = out_idx.astype(np.int64) * (src_fps.numerator * out_fps.denominator)
    q = src_fps.denominator * out_fps.numerator
    return -((q - 2 * p) // (2 * q))  # ceil(p / q - 1/2)


def frames_at_rate(n_src: int, src_fps: Fraction, out_fps: Fraction) -> int:
    """How many output frames n_src source frames give: those whose nearest source frame exists."""
    # The largest k with ceil(k * src / out - 1/2) <= n_src - 1 is floor((n_src - 1/2) * out / src).
    return math.floor((n_src - Fraction(1, 2)) * out_fps / src_fps) + 1 if n_src else 0


def read_video(
    path: str | os.PathLike[str],
    *,
    fps: float | None = None,
    start: int = 0,
    num_frames: int | None = None,
    size: tuple[int, int] | None = None,
    long_side: int | None = None,
    max_frames: int = MAX_CLIP_FRAMES,
) -> Clip:
    """Decode (part of) a video into a Clip of uint8 (T, H, W, 3) RGB frames.

    fps: output frame rate; None keeps the source's nominal rate. Resampling picks, for each output time, the
        nearest source frame (ties to the earlier one): no blending, frames are repeated when upsampling
        (15 -> 30 fps doubles each frame) and skipped when downsampling.
    start, num_frames: the first output frame and how many to return, counted at the output rate.
        num_frames=None reads to the end of the clip.
    size: (width, height) in pixels, or long_side: the longer side in pixels, keeping the aspect ratio (the
        other side rounded to the nearest pixel, any parity). Shrinking averages areas, enlarging is bicubic.
    max_frames: the most frames returned (default MAX_CLIP_FRAMES); a clip read to its end that has more
        raises instead of being cut silently. The frames' total size is also capped at MAX_CLIP_BYTES.

    Decoding starts at the file's first frame and stops after the last one needed.
    Raises GIDInputError (naming the file) for a missing, unreadable or corrupt file, a still image, bad
    arguments, or a clip shorter than asked for. A damaged file read to its end (num_frames=None) gives the
    frames decoded before the damage, with a UserWarning.
    """
    p = existing_file(path, "video")
    if fps is not None and not _is_rate(fps):
        raise GIDInputError(f"reading {p}: fps must be a positive number, got {fps!r}")
    if not _is_count(start, minimum=0):
        raise GIDInputError(f"reading {p}: start must be a frame index >= 0, got {start!r}")
    for name, value in (("num_frames", num_frames), ("max_frames", max_frames)):
        if value is not None and not _is_count(value):
            raise GIDInputError(f"reading {p}: {name} must be a positive integer, got {value!r}")
    if num_frames is not None and num_frames > max_frames:
        raise GIDInputError(
            f"reading {p}: num_frames={num_frames} is above max_frames={max_frames};"
            " raise max_frames to read more"
        )
    info = _probe(p)
    width, height = _output_size((info.width, info.height), size, long_side, p)
    frame_bytes = width * height * 3
    if num_frames is not None and num_frames * frame_bytes > MAX_CLIP_BYTES:
        raise GIDInputError(
            f"reading {p}: {num_frames} frames of {width}x{height} would take"
            f" {num_frames * frame_bytes / 1e9:.1f} GB, above the {MAX_CLIP_BYTES / 1e9:.1f} GB limit;"
            " read fewer frames or pass size/long_side"
        )
    src_fps = Fraction(info.fps).limit_denominator(1001)
    out_fps = src_fps if fps is None else Fraction(fps).limit_denominator(1001)
    # One more frame than allowed when reading to the end, to tell "exactly max_frames" from "longer".
    wanted = num_frames if num_frames is not None else max_frames + 1
    need = _source_indices(np.arange(start, start + wanted), src_fps, out_fps)

    shrink = width <= info.width and height <= info.height
    scale = f"scale={width}:{height}:flags={'area' if shrink else 'bicubic'}+{_SCALE_FLAGS},format=rgb24"
    cmd = [
        _ffmpeg(), "-nostdin", "-v", "error", "-i", str(p), "-map", "0:V:0", "-an", "-sn", "-dn",
        "-fps_mode", "passthrough", "-vf", scale, "-frames:v", str(int(need[-1]) + 1),
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
    ]  # fmt: skip
    out = np.empty((num_frames, height, width, 3), np.uint8) if num_frames is not None else None
    grown: list[np.ndarray] = []  # frames when their count is not known in advance (num_frames=None)
    n_src = n_out = 0  # source frames decoded, output frames filled
    with _FrameReader(cmd, (height, width, 3)) as reader:
        while n_out < wanted and (frame := reader.read()) is not None:
            while n_out < wanted and need[n_out] == n_src:
                if (n_out + 1) * frame_bytes > MAX_CLIP_BYTES:
                    raise GIDInputError(
                        f"reading {p}: more than {MAX_CLIP_BYTES / 1e9:.1f} GB of {width}x{height} frames;"
                        " pass num_frames, or size/long_side"
                    )
                if out is not None:
                    out[n_out] = frame
                else:
                    grown.append(frame.copy())
                n_out += 1
            n_src += 1

    rate = f"{float(out_fps):g} fps"
    damage = f"ffmpeg: {reader.complaint}" if reader.failed else ""
    if n_out == 0 and reader.failed:
        raise GIDInputError(f"cannot decode {p}: it is corrupt or incomplete ({damage})")
    if n_out < (num_frames or 1):
        total = frames_at_rate(n_src, src_fps, out_fps)
        asked = f"frames {start}..{start + num_frames - 1} were" if num_frames else f"start={start} was"
        raise GIDInputError(
            f"{p} is too short: it has {total} frames at {rate}, but {asked} asked for"
            + (f" (the file is damaged; {damage})" if damage else "")
        )
    if num_frames is None and n_out > max_frames:
        raise GIDInputError(
            f"{p} has more than max_frames={max_frames} frames at {rate} from start={start};"
            " pass num_frames or a larger max_frames"
        )
    if damage:
        warnings.warn(
            f"{p} is damaged: returning the {n_out} frames decoded before an error ({damage})", stacklevel=2
        )
    return Clip(frames=out if out is not None else np.stack(grown), fps=float(out_fps))


class _FrameReader:
    """ffmpeg writing raw uint8 frames of ``shape`` (H, W, 3) to a pipe; stopped at the end of the block.

    After the block: ``failed`` (ffmpeg exited with or logged an error), ``complaint`` (its telling log line).
    """

    def __init__(self, cmd: list[str], shape: tuple[int, int, int]) -> None:
        self._cmd = cmd
        self._frame = np.empty(shape, np.uint8)
        self._log = tempfile.TemporaryFile()
        self.failed = False
        self.complaint = ""

    def __enter__(self) -> _FrameReader:
        # Own session: a Ctrl-C reaches Python only, which then stops ffmpeg in __exit__.
        self._proc = subprocess.Popen(
            self._cmd, stdout=subprocess.PIPE, stderr=self._log, start_new_session=True
        )
        return self

    def read(self) -> np.ndarray | None:
        """The next frame (a buffer the next call reuses), or None at the end (a partial frame is dropped)."""
        view = memoryview(self._frame).cast("B")
        filled = 0
        while filled < len(view):
            n = self._proc.stdout.readinto(view[filled:])  # type: ignore[union-attr]
            if not n:
                return None
            filled += n
        return self._frame

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:  # at the end of the file, or after -frames:v: ffmpeg is finishing by itself
                try:
                    self._proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    pass
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._proc.stdout.close()  # type: ignore[union-attr]
            self._log.seek(0)
            log = self._log.read().decode(errors="replace")
            # With -v error ffmpeg logs only errors; it exits 0 on a truncated file yet logs "partial file".
            self.failed = self._proc.returncode != 0 or bool(log.strip())
            self.complaint = _ffmpeg_complaint(log)
        finally:
            self._log.close()


# ---------------------------------------------------------------------------------------------- images


# --------------------------------------------------------------------------------------------- writing


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
        f"scale=out_color_matrix=bt709:out_range=tv:flags=bicubic+{_SCALE_FLAGS},format=yuv420p,"
        "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"
    )
    if suffix == ".mp4":
        quality = _MP4_CRF if crf is None else crf
        return ["-vf", yuv, "-c:v", "libx264", "-preset", "medium", "-crf", str(quality),
                "-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4"]  # fmt: skip
    quality = _WEBM_CRF if crf is None else crf
    return ["-vf", yuv, "-c:v", "libvpx-vp9", "-crf", str(quality), "-b:v", "0", "-deadline", "good",
            "-cpu-used", "4", "-row-mt", "1", "-pix_fmt", "yuv420p", "-f", "webm"]  # fmt: skip


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


class VideoWriter:
    """Streams frames into an mp4 / gif / webm file (by the path's suffix); the file appears when complete.

    Use as a context manager; ``write`` takes chunks of frames (any layout write_video accepts, or one frame):

        with VideoWriter("out.mp4", fps=30) as w:
            for chunk in renderer:        # e.g. torch (8, 3, H, W) float in [0, 1]
                w.write(chunk)

    Formats: .mp4 is H.264 (libx264, yuv420p, BT.709, faststart so browsers start playing before the download
    ends); an odd width or height is padded to even by repeating the last column / row (every pixel kept, the
    file is at most 1 px larger). .webm is VP9 yuv420p, any size. .gif has one palette built from all frames;
    its frame delays are whole 1/100 s (30 fps alternates 3 and 4 cs); browsers slow delays under 2 cs down.
    crf: quality for mp4 (0..51, default 18) and webm (0..63, default 31), lower is better; not used for gif.
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
        if not _is_rate(fps):
            raise GIDInputError(f"cannot write {self.path}: fps must be a positive number, got {fps!r}")
        max_crf = {".mp4": 51, ".webm": 63}.get(suffix)
        if crf is not None and (max_crf is None or not _is_count(crf, minimum=0) or crf > max_crf):
            allowed = f"an integer 0..{max_crf}" if max_crf else "None (gif has no crf)"
            raise GIDInputError(f"cannot write {self.path}: crf must be {allowed}, got {crf!r}")
        if size is not None and not _is_size(size):
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

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _start(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._log = tempfile.TemporaryFile()
        cmd = [
            _ffmpeg(), "-nostdin", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{width + width % 2}x{height + height % 2}" if self._pad_even else f"{width}x{height}",
            "-framerate", self._rate, "-i", "-", "-an", *self._args, str(self._tmp),
        ]  # fmt: skip
        # Own session: a Ctrl-C reaches Python only, which then aborts (kills ffmpeg, deletes the temp file).
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=self._log, start_new_session=True)
        self._finalizer = weakref.finalize(self, _discard, self._proc, self._log, self._tmp)

    def _failure(self) -> RuntimeError:
        """Abort, and say why ffmpeg failed (e.g. the disk is full)."""
        self._log.seek(0)  # type: ignore[union-attr]
        complaint = _ffmpeg_complaint(self._log.read().decode(errors="replace"))  # type: ignore[union-attr]
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
    if not _is_count(times):
        raise GIDInputError(f"cannot repeat {source}: times must be a whole number >= 1, got {times!r}")
    if source.suffix.lower() != ".mp4" or target.suffix.lower() != ".mp4":
        raise GIDInputError(f"repeat_video copies mp4 to mp4, got {source.name} -> {target.name}")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    command = [
        _ffmpeg(), "-nostdin", "-v", "error", "-y", "-stream_loop", str(times - 1),
        "-i", str(source), "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(temporary),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, check=False)
    if result.returncode != 0:
        temporary.unlink(missing_ok=True)
        raise GIDInputError(f"cannot repeat {source}: {_ffmpeg_complaint(result.stderr.decode(errors='replace'))}")
    os.replace(temporary, target)
    return target
