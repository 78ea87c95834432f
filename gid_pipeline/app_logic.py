"""Glue between the Gradio app (``app.py``) and the library, with no UI in it.

What a request may ask for (the limits), photos and clips read at a working size, the GIDPipeline loaded once on
first use with a cache of the spectral volumes it predicted (so a second poke of the same photo costs no
diffusion), and rendering into browser-playable files. The math lives in the modules this calls: the pipeline
(prediction), rendering (loops), dynamics (pokes), clip_motion (motion of a real clip).

Sizes are (width, height) in pixels where a pair is named ``size``; images are (H, W, 3) uint8 RGB arrays.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from .clip_motion import ClipMotion, clip_motion
from .dynamics import DynamicsParams, poke_video_frames
from .errors import GIDInputError
from .rendering import fit_spectrum_to_image, image_to_tensor, iter_loop_frames
from .spectral import DEFAULT_NUM_FREQUENCIES
from .spectral_volume import SpectralVolume
from .video import VideoWriter, frames_at_rate, probe_video, read_image, read_video

# ------------------------------------------------------------------------------------------------ limits
# Every number a request can set is bounded here; the UI's sliders use the same bounds and the functions below
# check them again, because the HTTP API can send anything.
MAX_UPLOAD_BYTES = 50 * 1024**2
"""Largest uploaded file (photo, clip, spectral volume); the server refuses bigger uploads."""
MAX_PHOTO_PIXELS = 40_000_000
"""Largest photo, checked from its header before decoding (a 40 MP photo decodes to 120 MB)."""
MIN_VIDEO_SIDE, MAX_VIDEO_SIDE = 64, 1024
"""Bounds of a video's longer side in pixels (rendering time grows with the area)."""
MIN_FRAMES, MAX_FRAMES = 8, 300
"""Bounds of the frames in one video (300 = 10 s at 30 fps)."""
MAX_STEPS = 100
"""Most diffusion steps a request may ask for."""
MAX_GUIDANCE = 10.0
"""Largest classifier-free guidance scale."""
MAX_MOTION_SCALE = 5.0
"""Largest motion amplitude factor."""
MAX_SEED = 2**31 - 1
MAX_FORCE = 100.0
"""Largest poke force in pixels (the dynamics soft-limit displacements anyway)."""
MAX_HOLD_SECONDS = 5.0
"""Longest drag before release."""
MAX_DAMPING = 0.95
"""Largest damping ratio (dynamics refuses 1 and above: an overdamped scene does not swing)."""
MIN_CLIP_FRAMES = 2 * (DEFAULT_NUM_FREQUENCIES - 1)
"""Fewest frames a clip window needs: K = 16 frequencies need 30 frames."""
MAX_CLIP_FPS = 30.0
"""Clips are sampled at their own rate, but at most this one."""
MAX_CLIP_START_SECONDS = 120.0
"""A clip window may start at most this late (decoding starts at the file's first frame)."""
MAX_CLIP_SECONDS = 20.0
"""Longest clip window (and at most MAX_FRAMES frames)."""
MAX_CLIP_SIDE = 512
"""Longest side at which a clip's flow is measured."""
MODEL_INPUT_SIDE = 256
"""Longer side of the photo handed to the model, and of the grid its spectral volume comes back on: the model's
own scale (it samples at 256x160 pixels' worth). Spectral volumes are smooth fields; rendering resizes them to the
video (displacements scaled), so a finer grid would only cost memory: 16 x 4 x 160 x 256 float32 is 10 MB."""
STORED_SIDE = 256
"""Longer side of the spectral volumes the app hands out as files (at most; a clip's is measured finer)."""
PREVIEW_SIDE = 768
"""Longer side of the picture shown for choosing a poke point (never enlarged)."""
FPS = 30.0
"""Frame rate of poke videos."""
CACHE_SIZE = 16
"""Predicted spectral volumes kept in memory (at MODEL_INPUT_SIDE, at most about 13 MB each)."""
OUTPUT_MAX_AGE_SECONDS = 3600.0
"""Files the app wrote are deleted once this old (Gradio serves its own copies)."""


def check_range(name: str, value: Any, low: float, high: float, integer: bool = False) -> float:
    """Return value as a float (or int) if it is a finite number in [low, high], else GIDInputError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GIDInputError(f"{name} must be a number, got {value!r}")
    if not low <= value <= high:
        raise GIDInputError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    if integer:
        if value != int(value):
            raise GIDInputError(f"{name} must be a whole number, got {value:g}")
        return int(value)
    return float(value)


# ------------------------------------------------------------------------------------------------ files
class OutputFolder:
    """A folder under the system temp dir (which Gradio may serve from) for the files the app writes.

    Each new path sweeps away files older than ``max_age`` seconds, so a long-running Space does not fill its
    disk; Gradio has copied any file it served into its own cache by then.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, max_age: float = OUTPUT_MAX_AGE_SECONDS):
        self.root = Path(root) if root is not None else Path(tempfile.gettempdir()) / "gid_app"
        self.max_age = max_age

    def new_path(self, stem: str, suffix: str) -> Path:
        """A fresh path ``<root>/<stem>-<random><suffix>`` (the file itself is not created)."""
        self.root.mkdir(parents=True, exist_ok=True)
        cutoff = time.time() - self.max_age
        for old in self.root.iterdir():
            try:
                if old.is_file() and old.stat().st_mtime < cutoff:
                    old.unlink()
            except OSError:  # another request removed it first
                pass
        return self.root / f"{stem}-{uuid.uuid4().hex[:10]}{suffix}"


# ------------------------------------------------------------------------------------------------ images
def load_photo(path: str | os.PathLike[str] | None) -> np.ndarray:
    """Read an uploaded photo as (H, W, 3) uint8 RGB, refusing a missing, unreadable or oversized one.

    The size is checked from the file's header, before anything is decoded.
    """
    if path is None or str(path) == "":
        raise GIDInputError("no photo: upload an image (or pick an example) first")
    too_large = f"the app takes at most {MAX_PHOTO_PIXELS / 1e6:.0f} megapixels, please upload a smaller photo"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our limit is stricter
            with Image.open(path) as header:
                width, height = header.size
    except Image.DecompressionBombError:
        raise GIDInputError(f"the photo is far too large: {too_large}") from None
    except (OSError, SyntaxError, ValueError):
        raise GIDInputError(
            f"{Path(path).name} is not an image: its contents are not a picture format (JPEG, PNG, WebP, ...)"
        ) from None
    if width * height > MAX_PHOTO_PIXELS:
        raise GIDInputError(f"the photo is too large ({width}x{height}, {width * height / 1e6:.0f} MP): {too_large}")
    return read_image(path)


def working_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(width, height) with the longer side ``long_side``, the aspect ratio kept, both sides even (H.264)."""
    scale = long_side / max(width, height)
    return max(2, 2 * round(width * scale / 2)), max(2, 2 * round(height * scale / 2))


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (height, width, 3) uint8 for size = (width, height); Lanczos, a no-op at equal size."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def fit_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 so that its longer side is ``long_side`` (even sides)."""
    return resize_image(image, working_size(image.shape[1], image.shape[0], long_side))


def preview_image(image: np.ndarray) -> np.ndarray:
    """The picture shown for choosing a poke point: at most PREVIEW_SIDE on the longer side, never enlarged."""
    if max(image.shape[:2]) <= PREVIEW_SIDE:
        return image
    return fit_long_side(image, PREVIEW_SIDE)


def to_image_pixels(x: float, y: float, source: tuple[int, int], target: tuple[int, int]) -> tuple[float, float]:
    """Map a point from one (width, height) pixel grid of a picture to another: pixel centres stay centres."""
    return (x + 0.5) * target[0] / source[0] - 0.5, (y + 0.5) * target[1] / source[1] - 0.5


def force_vector(direction_degrees: float, force: float) -> tuple[float, float]:
    """(dx, dy) image pixels of a push of ``force`` pixels towards ``direction_degrees`` (0 right, 90 up)."""
    angle = math.radians(direction_degrees)
    return force * math.cos(angle), -force * math.sin(angle)


def draw_poke_marker(image: np.ndarray, x: float, y: float, force: tuple[float, float] | None = None) -> np.ndarray:
    """A copy of (H, W, 3) uint8 with a ring at pixel (x, y) and, if given, a white arrow along force (dx, dy)
    whose length grows with the force up to 10 px (then stays at four ring radii)."""
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    radius = max(4.0, max(image.shape[:2]) / 60)
    width = max(2, round(radius / 3))
    magnitude = math.hypot(*force) if force is not None else 0.0
    if magnitude > 0:
        ux, uy = force[0] / magnitude, force[1] / magnitude  # type: ignore[index]
        reach = radius + 4 * radius * min(1.0, magnitude / 10)
        tip = (x + ux * reach, y + uy * reach)
        back = (tip[0] - ux * radius, tip[1] - uy * radius)  # the arrow head's base, across (-uy, ux)
        side = (0.6 * radius * -uy, 0.6 * radius * ux)
        head = [tip, (back[0] + side[0], back[1] + side[1]), (back[0] - side[0], back[1] - side[1])]
        draw.line([(x + ux * radius, y + uy * radius), tip], fill=(255, 255, 255), width=width)
        draw.polygon(head, fill=(255, 255, 255))
    box = [x - radius, y - radius, x + radius, y + radius]
    draw.ellipse(box, outline=(0, 0, 0), width=width + 2)
    draw.ellipse(box, outline=(255, 80, 40), width=width)
    return np.asarray(canvas)


def image_digest(image: np.ndarray) -> str:
    """A content hash of an image array (size included): the key of the prediction cache."""
    digest = hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16)
    digest.update(repr(image.shape).encode())
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------ model
@dataclass(frozen=True)
class PredictionSettings:
    """What the model is asked: its sampler settings. The cache keys on them and on the photo's pixels."""

    seed: int
    steps: int
    guidance: float

    def __post_init__(self) -> None:
        # Stored as checked (2.0 from a slider becomes 2): the pipeline wants an int step count.
        object.__setattr__(self, "seed", check_range("seed", self.seed, 0, MAX_SEED, integer=True))
        object.__setattr__(self, "steps", check_range("steps", self.steps, 1, MAX_STEPS, integer=True))
        object.__setattr__(self, "guidance", check_range("guidance", self.guidance, 0.0, MAX_GUIDANCE))


class MotionEngine:
    """The GIDPipeline behind the app, loaded once on first use, and a cache of the spectral volumes it predicted.

    ``predict`` returns the cached volume for a photo and settings it has seen, else runs the model (through
    ``compute``, which an app may wrap, e.g. with ``spaces.GPU``). Thread-safe: concurrent requests share one
    pipeline, and one of them loads it.
    """

    def __init__(self, checkpoint: str | os.PathLike[str], device: str | None = None, cache_size: int = CACHE_SIZE):
        self.checkpoint = str(checkpoint)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.cache_size = cache_size
        self.predictions = 0  # model runs so far (cache misses), for tests and benchmarks
        self._pipeline: Any = None
        self._load_lock = threading.Lock()
        self._cache: OrderedDict[tuple[str, PredictionSettings], SpectralVolume] = OrderedDict()
        self._cache_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._pipeline is not None

    @property
    def default_guidance(self) -> float:
        """The checkpoint's own default guidance scale (model_index.json of a local folder), without loading it;
        the paper's for a Hub id or a folder that does not say."""
        from .guidance import PAPER_GUIDANCE_SCALE

        index = Path(self.checkpoint) / "model_index.json"
        try:
            return float(json.loads(index.read_text()).get("default_guidance_scale", PAPER_GUIDANCE_SCALE))
        except (OSError, ValueError, TypeError, AttributeError):
            return PAPER_GUIDANCE_SCALE

    def pipeline(self) -> Any:
        """The GIDPipeline on self.device, loaded on the first call (hub.load_pipeline: a folder or a Hub repo id)."""
        with self._load_lock:
            if self._pipeline is None:
                from .hub import load_pipeline  # imported on first use: the app starts without loading diffusers

                pipe = load_pipeline(self.checkpoint)
                pipe.set_progress_bar_config(desc="denoise", leave=False)
                self._pipeline = pipe.to(self.device)
        return self._pipeline

    def lookup(self, image: np.ndarray, settings: PredictionSettings) -> SpectralVolume | None:
        """The cached volume for this photo and settings, or None."""
        key = (image_digest(image), settings)
        with self._cache_lock:
            volume = self._cache.get(key)
            if volume is not None:
                self._cache.move_to_end(key)
            return volume

    def remember(self, image: np.ndarray, settings: PredictionSettings, volume: SpectralVolume) -> None:
        """Cache a volume, dropping the least recently used beyond cache_size."""
        with self._cache_lock:
            self._cache[(image_digest(image), settings)] = volume
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    def compute(self, image: np.ndarray, settings: PredictionSettings) -> SpectralVolume:
        """Run the model on a photo (no cache): its spectral volume, resized to the photo's grid, on the CPU."""
        pipe = self.pipeline()
        # A CPU generator draws the same noise on any device, so a seed means the same motion everywhere.
        generator = torch.Generator(device="cpu").manual_seed(settings.seed)
        height, width = image.shape[:2]
        (volume,) = pipe.predict_spectral_volume(
            image,
            num_inference_steps=settings.steps,
            guidance_scale=settings.guidance,
            height=height - height % 2,
            width=width - width % 2,
            generator=generator,
        )
        return SpectralVolume(volume.spectrum.detach().float().cpu(), volume.num_frames, volume.fps)

    def predict(
        self,
        image: np.ndarray,
        settings: PredictionSettings,
        compute: Callable[[np.ndarray, PredictionSettings], SpectralVolume] | None = None,
    ) -> SpectralVolume:
        """The photo's spectral volume on its own grid, from the cache or from ``compute`` (default self.compute)."""
        volume = self.lookup(image, settings)
        if volume is None:
            volume = (compute or self.compute)(image, settings)
            self.predictions += 1
            self.remember(image, settings, volume)
        return volume


def model_input(image: np.ndarray, long_side: int = MODEL_INPUT_SIDE) -> np.ndarray:
    """The photo as the model is given it: at most ``long_side`` on the longer side, even sides. The pipeline
    samples at its own resolution anyway; the predicted volume comes back on this grid (MODEL_INPUT_SIDE)."""
    return fit_long_side(image, min(long_side, max(image.shape[:2])))


def storable(volume: SpectralVolume, long_side: int = STORED_SIDE) -> SpectralVolume:
    """The volume on a grid at most ``long_side`` on the longer side (displacements scaled), to hand out as a file:
    a clip measured at 512 px would otherwise make a 50 MB file."""
    height, width = volume.size
    if max(height, width) <= long_side:
        return volume
    new_width, new_height = working_size(width, height, long_side)
    return volume.resized(new_height, new_width)


# ------------------------------------------------------------------------------------------------ rendering
def _stream(path: Path, chunks: Iterator[torch.Tensor], num_frames: int, fps: float, desc: str) -> Path:
    """Write chunks of (n, 3, H, W) frames into an mp4 as they are rendered; the file appears once complete."""
    with (
        VideoWriter(path, fps) as writer,
        tqdm(total=num_frames, desc=desc, unit="frame", disable=None, leave=False) as bar,
    ):
        for frames in chunks:
            writer.write(frames)
            bar.update(frames.shape[0])
    return path


def render_loop_video(
    path: Path,
    image: np.ndarray,
    volume: SpectralVolume,
    num_frames: int,
    motion_scale: float,
    renderer: torch.nn.Module | None = None,
    device: str | torch.device = "cpu",
) -> tuple[Path, SpectralVolume]:
    """One period of the seamless loop of ``image`` moved by ``volume``, as an H.264 mp4 at ``path``.

    The loop lasts the volume's period whatever ``num_frames`` is (the frame rate is num_frames / period), so more
    frames only make it smoother. The volume is resized to the image when the aspect ratios agree. Frames come
    from rendering.iter_loop_frames on ``device``: with the learned ``renderer`` (a SplatRenderer, e.g. the
    pipeline's; it runs where its weights are) or, if None, pixel softmax splatting.

    Returns:
        The video's path and the volume that was played: on the image's grid, motion_scale applied, with the
        video's frame count and rate (``gid render`` replays it).
    """
    num_frames = check_range("frames", num_frames, MIN_FRAMES, MAX_FRAMES, integer=True)
    motion_scale = check_range("motion scale", motion_scale, 0.0, MAX_MOTION_SCALE)
    if num_frames < 2 * (volume.num_frequencies - 1):
        raise GIDInputError(
            f"a loop of {volume.num_frequencies} frequencies needs at least {2 * (volume.num_frequencies - 1)} "
            f"frames, got {num_frames}"
        )
    height, width = image.shape[:2]
    spectrum = fit_spectrum_to_image(volume.spectrum, height, width) * motion_scale
    played = SpectralVolume(spectrum, num_frames, num_frames / volume.period_seconds)
    with torch.inference_mode():
        tensor = image_to_tensor(image).to(device)
        chunks = iter_loop_frames(tensor, played.spectrum, num_frames, renderer=renderer)
        return _stream(path, chunks, num_frames, played.fps, "render"), played


@dataclass(frozen=True)
class PokeRequest:
    """A poke as the app's controls describe it (checked on construction).

    Attributes:
        x, y: point in pixels of the image it is applied to, (0, 0) the top-left pixel's centre.
        direction: degrees, 0 pushes right, 90 up.
        force: pixels: about how far the poked point moves.
        damping: modal damping ratio in [0, MAX_DAMPING].
        hold: seconds the push is held before release; 0 is an impulse.
        num_frames: frames of the response video at FPS.
    """

    x: float
    y: float
    direction: float = 0.0
    force: float = 10.0
    damping: float = 0.2
    hold: float = 0.0
    num_frames: int = 150

    def __post_init__(self) -> None:
        checks = {
            "x": ("poke point x", -math.inf, math.inf, False),
            "y": ("poke point y", -math.inf, math.inf, False),
            "direction": ("direction", -360.0, 360.0, False),
            "force": ("force", 0.0, MAX_FORCE, False),
            "damping": ("damping", 0.0, MAX_DAMPING, False),
            "hold": ("hold", 0.0, MAX_HOLD_SECONDS, False),
            "num_frames": ("frames", MIN_FRAMES, MAX_FRAMES, True),
        }
        for field, (name, low, high, integer) in checks.items():
            object.__setattr__(self, field, check_range(name, getattr(self, field), low, high, integer))


def render_poke_video(path: Path, image: np.ndarray, volume: SpectralVolume, poke: PokeRequest) -> Path:
    """The scene's response to one poke at time 0, as an H.264 mp4 at ``path`` (FPS frames per second).

    The volume is resized to the image when the aspect ratios agree; a point off the picture is refused.
    """
    tensor = image_to_tensor(image)
    chunks = poke_video_frames(
        tensor,
        volume,
        (poke.x, poke.y),
        force_vector(poke.direction, poke.force),
        poke.num_frames,
        FPS,
        poke.hold,
        DynamicsParams(damping=poke.damping),
    )
    return _stream(path, chunks, poke.num_frames, FPS, "poke")


# ------------------------------------------------------------------------------------------------ clips
@dataclass(frozen=True)
class ClipRequest:
    """Which part of an uploaded clip to loop, and at what size (checked on construction).

    Attributes:
        start: seconds into the clip where the loop's window starts (its first frame is the loop's still).
        duration: seconds of the window (the loop's period); cut to the clip's end and to MAX_FRAMES frames.
        long_side: longer side in pixels at which flow is measured and the loop rendered.
        motion_scale: amplitude factor of the loop.
    """

    start: float = 0.0
    duration: float = 5.0
    long_side: int = 320
    motion_scale: float = 1.0

    def __post_init__(self) -> None:
        checks = {
            "start": ("start", 0.0, MAX_CLIP_START_SECONDS, False),
            "duration": ("duration", 1.0, MAX_CLIP_SECONDS, False),
            "long_side": ("size", MIN_VIDEO_SIDE, MAX_CLIP_SIDE, True),
            "motion_scale": ("motion scale", 0.0, MAX_MOTION_SCALE, False),
        }
        for field, (name, low, high, integer) in checks.items():
            object.__setattr__(self, field, check_range(name, getattr(self, field), low, high, integer))


def measure_clip(path: str | os.PathLike[str] | None, request: ClipRequest) -> tuple[ClipMotion, str | None]:
    """Motion of a window of an uploaded clip: its ClipMotion (time base in ``volume``) and a note for the user.

    The window is sampled at the clip's own rate (at most MAX_CLIP_FPS) and cut to what the clip holds; fewer
    than MIN_CLIP_FRAMES frames, a still image, an unreadable file or a clip without motion raise GIDInputError.
    """
    if path is None or str(path) == "":
        raise GIDInputError("no clip: upload a short video of something swaying first")
    info = probe_video(path)
    fps = min(info.fps, MAX_CLIP_FPS)
    available = frames_at_rate(info.num_frames, _rate(info.fps), _rate(fps))
    start = round(request.start * fps)
    wanted = min(round(request.duration * fps), MAX_FRAMES)
    frames = min(wanted, available - start)
    if frames < MIN_CLIP_FRAMES:
        have = f"{info.num_frames} frame{'s' if info.num_frames != 1 else ''}"
        after = f" after {request.start:g} s" if start else ""
        raise GIDInputError(
            f"the clip is too short: it has {have} ({info.duration_s:.1f} s at {info.fps:g} fps) and the window "
            f"holds {max(frames, 0)}{after}; a loop needs at least {MIN_CLIP_FRAMES} frames "
            f"({MIN_CLIP_FRAMES / fps:.1f} s at {fps:g} fps)"
        )
    note = None
    if frames < wanted:
        note = f"the clip ends early: looping {frames / fps:.1f} s ({frames} frames) instead of {request.duration:g} s"
    clip = read_video(path, fps=fps, start=start, num_frames=frames, long_side=request.long_side)
    return clip_motion(clip.frames, clip.fps), note


def _rate(fps: float) -> Fraction:
    """A frame rate as the exact fraction video.read_video uses (29.97 -> 30000/1001)."""
    return Fraction(fps).limit_denominator(1001)


def save_png(path: Path, image: np.ndarray) -> Path:
    """Write (H, W, 3) uint8 as a PNG at path (the still a From-video loop starts from)."""
    Image.fromarray(image).save(path)
    return path
