"""The player: a photo moved by a spectral volume, as a seamless loop or as the response to a poke. No diffusion.

A spectral volume is played through one set of ``PlaybackControls`` (speed, amplitude, frequency band, region,
frame rate, period length in frames, video length); ``loop_timing`` is the only place where the loop's timing is
worked out, and amplitude exists only here: volumes are stored as predicted (or measured), never scaled.
``Player`` renders with a learned ``SplatRenderer`` when it has one (a pipeline's, or one loaded from a
checkpoint's renderer/ folder alone) and with pixel softmax splatting otherwise; ``gid render``, ``gid poke``, the
app's poke and From-video tabs and GIDPipeline all play through it.

Images are anything ``media.images.image_tensors`` takes (a PIL image, an array, a path, a (3, H, W) float
tensor in [0, 1]); the volume is fitted to the image (resized, displacements scaled; the aspect ratios must agree).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from .checks import check_number, check_pair
from .errors import GIDInputError
from .limits import MAX_AMPLITUDE, MAX_FPS, MAX_NUM_FRAMES, MAX_SPEED, MAX_VIDEO_SECONDS, MIN_SPEED
from .media.images import one_image_tensor
from .models.renderer import SplatRenderer
from .motion.dynamics import DEFAULT_DAMPING, DynamicsParams, poke_video_frames
from .outputs import GIDPipelineOutput, check_frame_output_type, postprocess_frames
from .rendering.loop import fit_spectrum_to_image, iter_loop_frames
from .spectral.controls import FrequencyBand, Mask, band_limited, masked, scaled
from .spectral.transform import min_loop_frames
from .spectral.volume import SpectralVolume


@dataclass(frozen=True)
class PlaybackControls:
    """How a spectral volume plays (checked on construction, so before any frame is rendered).

    Attributes:
        speed: the motion's period is divided by it (2 plays it twice as fast), in [MIN_SPEED, MAX_SPEED].
        amplitude: every displacement is multiplied by it (0 is still), in [0, MAX_AMPLITUDE].
        frequency_band: (low_hz, high_hz) of the volume's own frequencies to keep, either None for no limit.
        region_mask: (h, w) values in [0, 1] of the photo's aspect ratio: 0 holds a region still.
        fps: frame rate of the video, default the volume's; a period is a whole number of frames, so the rate is
            adjusted slightly (loop_timing).
        num_frames: frames of one period, default round(period * fps); given, the period keeps its length in
            seconds and the rate follows (with fps also given, the period is num_frames / fps instead).
        length_seconds: seconds of video: the period repeats the nearest whole number of times (at least once).
    """

    speed: float = 1.0
    amplitude: float = 1.0
    frequency_band: FrequencyBand | None = None
    region_mask: Mask | None = None
    fps: float | None = None
    num_frames: int | None = None
    length_seconds: float | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "speed", check_number("speed", self.speed, MIN_SPEED, MAX_SPEED))
        set_(self, "amplitude", check_number("amplitude", self.amplitude, 0.0, MAX_AMPLITUDE))
        if self.fps is not None:
            set_(self, "fps", check_number("fps", self.fps, 0.0, MAX_FPS, low_open=True))
        if self.num_frames is not None:
            set_(self, "num_frames", check_number("num_frames", self.num_frames, 2, MAX_NUM_FRAMES, integer=True))
        if self.length_seconds is not None:
            length = check_number("length_seconds", self.length_seconds, 0.0, MAX_VIDEO_SECONDS, low_open=True)
            set_(self, "length_seconds", length)
        band = self.frequency_band
        if band is not None and (not isinstance(band, Sequence) or isinstance(band, str) or len(band) != 2):
            raise GIDInputError(f"frequency_band must be a pair (low_hz, high_hz), got {band!r}")
        if band is not None:  # the Nyquist limit depends on the volume and is checked when it plays (band_limited)
            for name, value in zip(("low_hz", "high_hz"), band, strict=True):
                if value is not None:
                    check_number(f"frequency_band {name}", value, 0.0)
            if None not in band and band[0] > band[1]:
                raise GIDInputError(f"frequency band is reversed: low_hz {band[0]:g} > high_hz {band[1]:g}")


@dataclass(frozen=True)
class LoopTiming:
    """How a loop plays (loop_timing works it out).

    Attributes:
        period_seconds: one cycle of the motion, seconds.
        frames: frames rendered for one period.
        fps: the video's frame rate, frames / period_seconds.
        repeats: how many times the period follows itself in a video file (copied, never rendered again).
    """

    period_seconds: float
    frames: int
    fps: float
    repeats: int = 1

    @property
    def duration_seconds(self) -> float:
        return self.period_seconds * self.repeats

    def describe(self) -> str:
        """One line for the user, e.g. '2.5 s loop x 4 = 10 s; 75 frames per loop at 30 fps'."""
        times = f" x {self.repeats} = {self.duration_seconds:.3g} s" if self.repeats > 1 else ""
        return f"{self.period_seconds:.3g} s loop{times}; {self.frames} frames per loop at {self.fps:.3g} fps"


def loop_timing(
    volume: SpectralVolume, controls: PlaybackControls | None = None, frame_range: tuple[int, int] | None = None
) -> LoopTiming:
    """The timing of a seamless loop of ``volume`` played as ``controls`` ask (PlaybackControls).

    The period is the volume's (num_frames / fps) divided by the speed, or num_frames / fps when both are given.
    It gets round(period * fps) frames (or num_frames), at least spectral.transform.min_loop_frames(K): fewer
    would alias the K frequencies, so the rate is raised where needed), at most MAX_NUM_FRAMES; the rate is then
    frames / period. The period repeats the whole number of times nearest to length_seconds, so a video file
    starts and ends on the same phase. frame_range = (fewest, most): clamp the frames of a period into it (the
    rate follows) instead of refusing more than MAX_NUM_FRAMES, as a server with tighter limits wants.
    """
    controls = controls or PlaybackControls()
    rate = controls.fps or volume.fps
    period = volume.period_seconds / controls.speed
    if controls.num_frames is not None and controls.fps is not None:
        period = controls.num_frames / controls.fps
    frames = controls.num_frames or round(period * rate)
    fewest = min_loop_frames(volume.num_frequencies)
    if controls.num_frames is not None and frames < fewest:
        raise GIDInputError(f"num_frames must be at least {fewest} to hold {volume.num_frequencies} frequencies, "
                            f"got {frames}")  # fmt: skip
    frames = max(frames, fewest)
    if frame_range is not None:
        frames = min(max(frames, frame_range[0], fewest), frame_range[1])
    if frames > MAX_NUM_FRAMES:
        raise GIDInputError(
            f"a {period:.3g} s loop at {rate:.3g} fps has {frames} frames; at most MAX_NUM_FRAMES = "
            f"{MAX_NUM_FRAMES} (raise the speed or lower the frame rate)"
        )
    repeats = 1
    if controls.length_seconds is not None:
        repeats = max(1, min(round(controls.length_seconds / period), math.floor(MAX_VIDEO_SECONDS / period + 1e-9)))
    return LoopTiming(period, frames, frames / period, repeats)


def played(volume: SpectralVolume, controls: PlaybackControls, timing: LoopTiming | None = None) -> SpectralVolume:
    """The volume as it plays: band, region and amplitude applied, the loop's time base (loop_timing)."""
    timing = timing or loop_timing(volume, controls)
    out = volume
    if controls.frequency_band is not None:
        out = band_limited(out, *controls.frequency_band)
    if controls.region_mask is not None:
        out = masked(out, controls.region_mask)
    if controls.amplitude != 1.0:
        out = scaled(out, controls.amplitude)
    return replace(out, num_frames=timing.frames, fps=timing.fps)


def fitted(volume: SpectralVolume, height: int, width: int) -> SpectralVolume:
    """The volume on a height x width image's grid (displacements scaled; the aspect ratios must agree)."""
    if not isinstance(volume, SpectralVolume):
        raise GIDInputError(f"need a SpectralVolume (e.g. out.spectral_volumes[0]), got {type(volume).__name__}")
    spectrum = fit_spectrum_to_image(volume.spectrum.float(), height, width)
    return replace(volume, spectrum=spectrum)


class Player:
    """Plays spectral volumes on photos: loops (with PlaybackControls) and pokes (modal dynamics).

    Args:
        renderer: a learned SplatRenderer, or None for pixel softmax splatting.
        device: where frames are rendered (default the renderer's, else the CPU).
    """

    def __init__(self, renderer: SplatRenderer | None = None, device: torch.device | str | None = None) -> None:
        self.renderer = renderer
        self.device = torch.device(device) if device is not None else (
            renderer.device if renderer is not None else torch.device("cpu"))  # fmt: skip

    @classmethod
    def from_pretrained(cls, checkpoint: str | os.PathLike[str] | None = None, **kwargs) -> Player:
        """The player of a pipeline folder (or Hub repo id): only its renderer/ is loaded, never the diffusion
        model; a checkpoint without one (or None) plays with pixel splatting. kwargs go to the Player."""
        if checkpoint is None:
            return cls(**kwargs)
        folder = Path(checkpoint).expanduser()
        if not folder.exists():
            from .deploy.hub import fetch_renderer

            folder = fetch_renderer(str(checkpoint))
        if not (folder / "model_index.json").is_file():
            raise GIDInputError(f"{checkpoint} is not a pipeline folder: it has no model_index.json")
        renderer = None
        if (folder / "renderer" / "config.json").is_file():
            try:
                renderer = SplatRenderer.from_pretrained(folder / "renderer").eval()
            except (OSError, ValueError, RuntimeError) as error:
                raise GIDInputError(f"cannot load the renderer of {checkpoint}: {error}") from None
        return cls(renderer, **kwargs)

    # ------------------------------------------------------------------------------------------ loops

    def played_volume(
        self, image: object, volume: SpectralVolume, controls: PlaybackControls | None = None
    ) -> SpectralVolume:
        """The volume iter_loop_frames plays for these controls: on the image's grid, controls applied, the loop's
        time base; replaying it with default controls renders the same frames."""
        tensor = one_image_tensor(image)
        return played(fitted(volume, *tensor.shape[-2:]), controls or PlaybackControls())

    def iter_loop_frames(
        self,
        image: object,
        volume: SpectralVolume,
        controls: PlaybackControls | None = None,
        learned_renderer: bool = True,
    ) -> Iterator[torch.Tensor]:
        """Stream one period of the seamless loop: (n, 3, H, W) float32 chunks in [0, 1] on the CPU, in order.

        The image is rendered at its own size; arguments are checked before the iterator is returned. Frame 0
        is the image and the frame after the last would equal frame 0. learned_renderer=False uses pixel
        splatting even when the player has a renderer (several times faster on a CPU).
        """
        tensor = one_image_tensor(image)
        volume = played(fitted(volume, *tensor.shape[-2:]), controls or PlaybackControls())
        renderer = self.renderer if learned_renderer else None
        chunks = iter_loop_frames(tensor.to(self.device), volume.spectrum, volume.num_frames, renderer=renderer)
        return (chunk.float().cpu() for chunk in chunks)

    def render(
        self,
        image: object,
        volume: SpectralVolume,
        controls: PlaybackControls | None = None,
        output_type: str = "np",
        return_dict: bool = True,
    ) -> GIDPipelineOutput | tuple:
        """One period of the loop, whole: GIDPipelineOutput with out.frames[0] the loop ((F, H, W, 3) for "np",
        (F, 3, H, W) for "pt", F PIL images for "pil") and spectral_volumes = [the played volume]."""
        check_frame_output_type(output_type)
        played_volume = self.played_volume(image, volume, controls)
        chunks = self.iter_loop_frames(image, volume, controls)
        return _output(torch.cat(list(chunks)), played_volume, output_type, return_dict)

    # ------------------------------------------------------------------------------------------ pokes

    def iter_poke_frames(
        self,
        image: object,
        volume: SpectralVolume,
        point: tuple[float, float],
        force: tuple[float, float],
        *,
        num_frames: int = 150,
        fps: float = 30.0,
        hold: float = 0.0,
        damping: float = DEFAULT_DAMPING,
    ) -> Iterator[torch.Tensor]:
        """Stream the response of the photo to a poke at frame 0 (motion.dynamics: the volume read as modal bases,
        damped oscillators), rendered with pixel softmax splatting; arguments are checked first.

        Args:
            point: (x, y) image pixels of the poke, (0, 0) the top-left pixel's centre.
            force: (dx, dy) pixels of the image: about how far the poked point is pushed.
            num_frames: frames to render, 1 to MAX_NUM_FRAMES; fps: their rate.
            hold: seconds the force is held (a drag) before release; 0 is an impulse.
            damping: modal damping ratio in [0, 1).

        Yields:
            (n, 3, H, W) float32 frames in [0, 1] on the CPU; a zero force leaves every frame the image.
        """
        tensor = one_image_tensor(image)
        point, force = check_pair("point", point, "(x, y)"), check_pair("force", force, "(dx, dy)")
        num_frames = check_number("num_frames", num_frames, 1, MAX_NUM_FRAMES, integer=True)
        fps = check_number("fps", fps, 0.0, MAX_FPS, low_open=True)
        params = DynamicsParams(damping=damping)
        return poke_video_frames(tensor, volume, point, force, num_frames, fps, drag_seconds=hold, params=params)

    def poke(
        self,
        image: object,
        volume: SpectralVolume,
        point: tuple[float, float],
        force: tuple[float, float],
        *,
        num_frames: int = 150,
        fps: float = 30.0,
        hold: float = 0.0,
        damping: float = DEFAULT_DAMPING,
        output_type: str = "np",
        return_dict: bool = True,
    ) -> GIDPipelineOutput | tuple:
        """The response to a poke, whole (iter_poke_frames): out.frames[0] is the video, spectral_volumes = [the
        volume on the image's grid]."""
        check_frame_output_type(output_type)
        chunks = self.iter_poke_frames(image, volume, point, force, num_frames=num_frames, fps=fps, hold=hold,
                                       damping=damping)  # fmt: skip
        height, width = one_image_tensor(image).shape[-2:]
        return _output(torch.cat(list(chunks)), fitted(volume, height, width), output_type, return_dict)


def _output(
    video: torch.Tensor, volume: SpectralVolume, output_type: str, return_dict: bool
) -> GIDPipelineOutput | tuple:
    """(F, 3, H, W) frames of one image -> diffusers' batched video output for output_type."""
    frames = postprocess_frames(video[None], output_type)
    return GIDPipelineOutput(frames=frames, spectral_volumes=[volume]) if return_dict else (frames, [volume])
