"""Reading clips: probing a video file and decoding (part of) it into frames (writing: media.writer; still
images: media.images).

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
import os
import re
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import GIDInputError
from ..limits import MAX_CLIP_BYTES, MAX_CLIP_FRAMES
from .ffmpeg import SCALE_FLAGS, ffmpeg_complaint, ffmpeg_exe, is_count, is_rate, is_size
from .images import existing_file
from .writer import (
    VIDEO_SUFFIXES,
    VideoWriter,
    repeat_video,
    write_video,
)

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












def _parse_rate(text: str) -> float:
    """ "29.97" -> 29.97, "1k" -> 1000."""
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def _probe(path: Path) -> VideoInfo:
    """Parse ``ffmpeg -i`` (the bundled ffmpeg has no ffprobe); num_frames is estimated here."""
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        timeout=60,
        check=False,
    )
    log = proc.stderr.decode(errors="replace")
    fmt = re.search(r"^Input #0, (\S+), from", log, re.MULTILINE)
    if fmt is None:
        raise GIDInputError(
            f"cannot read {path}: not a video file, or it is corrupt or incomplete "
            f"(ffmpeg: {ffmpeg_complaint(log)})"
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
        hint = f" (it may be incomplete or corrupt; ffmpeg: {ffmpeg_complaint(trouble)})" if trouble else ""
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
        ffmpeg_exe(),
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
        if not is_size(size):
            raise GIDInputError(
                f"reading {path}: size must be (width, height) in positive pixels, got {size!r}"
            )
        return int(size[0]), int(size[1])
    if long_side is not None:
        if not is_count(long_side):
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
    if fps is not None and not is_rate(fps):
        raise GIDInputError(f"reading {p}: fps must be a positive number, got {fps!r}")
    if not is_count(start, minimum=0):
        raise GIDInputError(f"reading {p}: start must be a frame index >= 0, got {start!r}")
    for name, value in (("num_frames", num_frames), ("max_frames", max_frames)):
        if value is not None and not is_count(value):
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
    scale = f"scale={width}:{height}:flags={'area' if shrink else 'bicubic'}+{SCALE_FLAGS},format=rgb24"
    cmd = [
        ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(p), "-map", "0:V:0", "-an", "-sn", "-dn",
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
            self.complaint = ffmpeg_complaint(log)
        finally:
            self._log.close()


# ---------------------------------------------------------------------------------------------- images


# --------------------------------------------------------------------------------------------- writing












