"""Glue between the Gradio app (``app.py``) and the library, with no UI in it.

What a request may ask for (the limits), photos and clips read at a working size, the GIDPipeline loaded once on
first use with a cache of the spectral volumes it predicted (so a second poke of the same photo costs no
diffusion), and rendering into browser-playable files: a loop's period rendered once, written as an H.264 mp4
(repeated, never re-rendered, to the asked duration) and a small GIF, and a heatmap of its motion. The math lives
in what this calls: the pipeline (prediction, and rendering loops and pokes: GIDPipeline.iter_loop_frames and
iter_poke_frames), motion_controls (speed, amplitude, the amplitude map), clip_motion (motion of a real clip),
visualize (the heatmap's colours).

Sizes are (width, height) in pixels where a pair is named ``size``; images are (H, W, 3) uint8 RGB arrays.
"""

from __future__ import annotations

import ctypes
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
from contextlib import ExitStack
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from .errors import GIDInputError
from .media.images import read_image
from .media.video import VideoWriter, frames_at_rate, probe_video, read_video, repeat_video
from .media.visualize import heatmap_overlay, with_scale_bar
from .motion.clip import ClipMotion, clip_motion
from .spectral.controls import amplitude_map, apply_controls
from .spectral.transform import DEFAULT_NUM_FREQUENCIES
from .spectral.volume import SpectralVolume

# ------------------------------------------------------------------------------------------------ limits
# Every number a request can set is bounded here; the UI's sliders use the same bounds and the functions below
# check them again, because the HTTP API can send anything.
MAX_UPLOAD_BYTES = 50 * 1024**2
"""Largest uploaded file (photo, clip, spectral volume); the server refuses bigger uploads."""
MAX_PHOTO_PIXELS = 40_000_000
"""Largest photo, checked from its header before decoding (a 40 MP photo decodes to 120 MB)."""
MIN_PHOTO_SIDE = 32
"""Smallest shorter side of a photo: the model samples on a grid of 8 px latent cells."""
MAX_PHOTO_ASPECT = 4.0
"""Most elongated photo (longer side / shorter side) the model's 256x160 framing can take."""
MIN_VIDEO_SIDE, MAX_VIDEO_SIDE = 64, 1024
"""Bounds of a video's longer side in pixels (rendering time grows with the area)."""
MIN_FRAMES, MAX_FRAMES = 8, 300
"""Bounds of the frames in one poke video, and in one period of a loop (300 = 10 s at 30 fps)."""
MIN_SPEED, MAX_SPEED = 0.25, 4.0
"""Bounds of a loop's speed factor (2 plays the motion twice as fast: the period halves)."""
MIN_FPS, MAX_FPS = 8.0, 60.0
"""Bounds of a loop video's frame rate (frames per second)."""
MAX_LOOP_SECONDS = 20.0
"""Longest loop video: its period repeated a whole number of times, so the file itself loops seamlessly."""
GIF_SIDE = 320
"""Longer side of a loop's GIF at most (pixels): GIFs are large, one period at 320 px and 15 fps is ~1-3 MB."""
GIF_FPS = 15.0
"""Highest GIF frame rate (browsers play GIF delays in whole 1/100 s and slow down under 2/100 s)."""
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
POKE_FRAMES = 90
"""Default frames of a poke video (3 s: the swing and most of its decay; 5 s cost 1.7x on a CPU)."""
POKE_SIDE = 384
"""Default longer side of a poke video in pixels (a cached poke renders in about a second on two CPU cores; 512 px
costs 1.8x)."""
CACHE_SIZE = 16
"""Predicted spectral volumes kept in memory (at MODEL_INPUT_SIDE, at most about 13 MB each)."""
OUTPUT_MAX_AGE_SECONDS = 3600.0
"""Files the app wrote are deleted once this old (Gradio serves its own copies)."""


MMAP_THRESHOLD_BYTES = 16 << 20
"""Heap buffers this large or larger (e.g. a chunk of frames) get their own memory mapping, returned to the system
when freed. 1 MB kept memory flatter still but cost 50-80 % more CPU in page faults; 16 MB costs nothing."""
MALLOC_ARENAS = 2
"""Heap arenas that the server's threads share."""


def limit_heap_growth() -> bool:
    """Keep a serving process's memory from growing under a queue of requests (glibc, i.e. Linux; else a no-op).

    Requests allocate and free large buffers (frames, spectral volumes) from Gradio's worker threads. By default
    glibc keeps freed large blocks in its fragmented heap and in one arena per thread rather than returning them.
    Per round of 8 queued requests (benchmarks/bench_app.py; 4 of them new predictions, 54 MB of cache) the
    resident set grew by 250-390 MB by default, by 75-210 MB with these settings, by 25-70 MB with a 1 MB
    threshold (which cost 50-80 % more CPU). The same as starting with MALLOC_MMAP_THRESHOLD_=16777216
    MALLOC_ARENA_MAX=2 set; a memory-tight deployment can start with MALLOC_MMAP_THRESHOLD_=1048576 instead.

    Returns:
        True if glibc took both settings.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_mmap_threshold, m_arena_max = -3, -8  # mallopt parameters, from glibc's malloc.h
    return bool(libc.mallopt(m_mmap_threshold, MMAP_THRESHOLD_BYTES)) and bool(libc.mallopt(m_arena_max, MALLOC_ARENAS))


def release_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc malloc_trim; else a no-op), after each request.

    What a request freed below the mmap threshold stays in the heap, fragmented, and counts in the resident set
    until reused; trimming costs a few milliseconds. Returns True if glibc released anything.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.malloc_trim(0))


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


class ShownPhotos:
    """Which photo each browser session shows on the poke tab, so one new photo resets the chosen point once.

    Gradio fires ``change`` two or three times for one new photo, within a second and sometimes concurrently, and
    each call sees the same stale session state; a point clicked between the first call and a late repeat would be
    wiped. This record is updated under a lock as a call starts, so of the calls for one photo within
    ``repeat_window`` seconds only the first claims it. Later, the same photo is new again (its session state may
    have expired meanwhile). At most ``max_sessions`` sessions are remembered (least recently used dropped).
    """

    def __init__(
        self, max_sessions: int = 1000, repeat_window: float = 30.0, clock: Callable[[], float] = time.monotonic
    ):
        self.max_sessions, self.repeat_window, self.clock = max_sessions, repeat_window, clock
        self._shown: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, session: str, path: str) -> bool:
        """True if ``path`` is new for ``session`` (now recorded as shown); False for a repeat of its change."""
        now = self.clock()
        with self._lock:
            shown = self._shown.get(session)
            if shown is not None and shown[0] == path and now - shown[1] <= self.repeat_window:
                return False
            self._shown[session] = (path, now)
            self._shown.move_to_end(session)
            while len(self._shown) > self.max_sessions:
                self._shown.popitem(last=False)
            return True

    def forget(self, session: str) -> None:
        """The session shows no photo (cleared, or the photo could not be read): the next one is new."""
        with self._lock:
            self._shown.pop(session, None)


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
    if min(width, height) < MIN_PHOTO_SIDE:
        raise GIDInputError(
            f"the photo is too small ({width}x{height}): its shorter side must be at least {MIN_PHOTO_SIDE} px"
        )
    if max(width, height) > MAX_PHOTO_ASPECT * min(width, height):
        raise GIDInputError(
            f"the photo is too elongated ({width}x{height}): its longer side may be at most {MAX_PHOTO_ASPECT:g} "
            f"times its shorter side; crop it first"
        )
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
                from .deploy.hub import load_pipeline  # imported on first use: the app starts without loading diffusers

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
@dataclass(frozen=True)
class LoopTiming:
    """How a loop plays (loop_timing derives it from its motion's period and the asked speed, rate and length).

    Attributes:
        period_seconds: one cycle of the motion: the spectral volume's period divided by the speed.
        frames: frames rendered for one period.
        fps: the video's frame rate, frames / period_seconds: a period is a whole number of frames, so the
            asked rate is adjusted slightly (and raised where the motion's frequencies need more frames).
        repeats: how many times the period follows itself in the mp4 (copied, never rendered again).
        speed: the factor the volume's period was divided by.
    """

    period_seconds: float
    frames: int
    fps: float
    repeats: int = 1
    speed: float = 1.0

    @property
    def duration_seconds(self) -> float:
        return self.period_seconds * self.repeats

    def describe(self) -> str:
        """One line for the user, e.g. '2.5 s loop x 4 = 10 s; 75 frames per loop at 30 fps'."""
        times = f" x {self.repeats} = {self.duration_seconds:.3g} s" if self.repeats > 1 else ""
        return f"{self.period_seconds:.3g} s loop{times}; {self.frames} frames per loop at {self.fps:.3g} fps"


@dataclass(frozen=True)
class LoopControls:
    """How the user wants a loop played (checked on construction, so before anything is predicted).

    Attributes:
        speed: in [MIN_SPEED, MAX_SPEED]; the motion's period is divided by it.
        fps: wanted frame rate in [MIN_FPS, MAX_FPS], or None for the motion's own.
        duration: seconds of video wanted in [1, MAX_LOOP_SECONDS], or None for one period.
    """

    speed: float = 1.0
    fps: float | None = None
    duration: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "speed", check_range("speed", self.speed, MIN_SPEED, MAX_SPEED))
        if self.fps is not None:
            object.__setattr__(self, "fps", check_range("frame rate", self.fps, MIN_FPS, MAX_FPS))
        if self.duration is not None:
            object.__setattr__(self, "duration", check_range("duration", self.duration, 1.0, MAX_LOOP_SECONDS))


def loop_timing(volume: SpectralVolume, controls: LoopControls | None = None) -> LoopTiming:
    """The timing of a seamless loop of ``volume`` played as ``controls`` ask (default: as the volume says).

    The period is the volume's (num_frames / fps; 5 s for the model's) divided by the speed. It gets
    round(period * fps) frames, at least MIN_FRAMES and 2 (K - 1) (fewer would alias the K frequencies), at most
    MAX_FRAMES; the rate is then frames / period. The period repeats a whole number of times, the nearest to the
    duration (at least once, never past MAX_LOOP_SECONDS), so the file starts and ends on the same phase and
    loops without a seam.
    """
    controls = controls or LoopControls()
    period = volume.period_seconds / controls.speed
    if period > MAX_LOOP_SECONDS:
        raise GIDInputError(
            f"the loop would last {period:.3g} s, longer than the {MAX_LOOP_SECONDS:g} s a video may: raise the speed"
        )
    fewest = max(MIN_FRAMES, 2 * (volume.num_frequencies - 1))
    if fewest > MAX_FRAMES:
        raise GIDInputError(f"a loop of {volume.num_frequencies} frequencies needs more than {MAX_FRAMES} frames")
    frames = min(max(round(period * (controls.fps or volume.fps)), fewest), MAX_FRAMES)
    repeats = 1
    if controls.duration is not None:
        repeats = max(1, min(round(controls.duration / period), math.floor(MAX_LOOP_SECONDS / period + 1e-9)))
    return LoopTiming(period, frames, frames / period, repeats, controls.speed)


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
    pipe: Any,
    image: np.ndarray,
    volume: SpectralVolume,
    timing: LoopTiming,
    motion_scale: float,
    gif_path: Path | None = None,
    learned_renderer: bool = True,
) -> None:
    """The seamless loop of ``image`` moved by ``volume``: an H.264 mp4 at ``path`` and, if asked, a GIF.

    One period (timing.frames frames at timing.fps, timing.speed) is rendered once by the pipeline
    (GIDPipeline.iter_loop_frames: the volume fitted to the image, the controls applied, with the pipeline's
    learned renderer if it has one and learned_renderer is True, else pixel softmax splatting); the mp4 holds it
    timing.repeats times (repeat_video), the GIF once, thinned and shrunk (gif_plan).
    """
    motion_scale = check_range("motion scale", motion_scale, 0.0, MAX_MOTION_SCALE)
    height, width = image.shape[:2]
    chunks = pipe.iter_loop_frames(
        image, volume, speed=timing.speed, amplitude=motion_scale, num_frames=timing.frames, fps=timing.fps,
        learned_renderer=learned_renderer,
    )  # fmt: skip
    gif = (gif_path, gif_plan(timing, width, height)) if gif_path is not None else None
    period = path if timing.repeats == 1 else path.with_name(f"{path.stem}-period{path.suffix}")
    with torch.inference_mode():
        _stream(period, chunks, timing.frames, timing.fps, "render", gif)
    if timing.repeats > 1:
        repeat_video(period, path, timing.repeats)
        period.unlink()


def played_volume(volume: SpectralVolume, timing: LoopTiming, motion_scale: float) -> SpectralVolume:
    """The volume as a loop plays it, on its own grid: motion_scale applied, its period divided by the speed at
    the volume's frame rate (``gid render`` replays it at that speed)."""
    return apply_controls(volume, speed=timing.speed, amplitude=motion_scale)


def motion_heatmap(image: np.ndarray, volume: SpectralVolume, motion_scale: float = 1.0) -> np.ndarray:
    """A picture of the predicted motion: how far each pixel of ``image`` swings, as a heatmap with a scale bar.

    The amount is the RMS displacement over one loop (motion_controls.amplitude_map), computed on the volume's
    grid (e.g. the model's, 256 px: cheap) and drawn in pixels of ``image``.

    Args:
        image: (H, W, 3) uint8, the photo the volume moves (same aspect ratio).
        volume: its spectral volume, any grid.
        motion_scale: the amplitude factor the loop plays with.

    Returns:
        (H + bar, W, 3) uint8 (visualize.heatmap_overlay and with_scale_bar).
    """
    swing = amplitude_map(apply_controls(volume, amplitude=motion_scale)).cpu()
    picture, vmax = heatmap_overlay(image, swing * (image.shape[1] / volume.size[1]))
    return with_scale_bar(picture, vmax, "px")


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
    num_frames: int = POKE_FRAMES

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


def render_poke_video(path: Path, pipe: Any, image: np.ndarray, volume: SpectralVolume, poke: PokeRequest) -> Path:
    """The scene's response to one poke at time 0, as an H.264 mp4 at ``path`` (FPS frames per second), rendered by
    the pipeline (GIDPipeline.iter_poke_frames). The volume is fitted to the image when the aspect ratios agree; a
    point off the picture is refused."""
    chunks = pipe.iter_poke_frames(
        image,
        volume,
        (poke.x, poke.y),
        force_vector(poke.direction, poke.force),
        num_frames=poke.num_frames,
        fps=FPS,
        hold=poke.hold,
        damping=poke.damping,
    )
    with torch.inference_mode():
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
