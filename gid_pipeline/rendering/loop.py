"""Image-based rendering of a motion texture: softmax-splat the picture into every frame, then fill the holes.

This is the pixel-level renderer (the paper's renderer without its learned feature pyramid): exact where nothing
moves, and what the loop and poke paths use unless a learned renderer (models.renderer.SplatRenderer) is given to
``iter_loop_frames``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from ..errors import GIDInputError
from ..spectral.transform import resize_spectrum, spectrum_to_motion
from .fill import pull_push_fill
from .splatting import DEFAULT_CHUNK_SIZE, SplatMode, motion_metric, splat

if TYPE_CHECKING:  # the learned renderer pulls in diffusers; the pixel path and the CLI do not need it
    from ..models.renderer import SplatRenderer

# Softmax log-weight given to the fastest-moving pixels (99th percentile of W): they outweigh still ones by e^1.
# Chosen by benchmarks/bench_sharpness.py: on held-out procedural scenes (exact motion) PSNR peaks at 1 (37.1 dB;
# 34.1 at 10, where single fast pixels win whole neighbourhoods); the real clip is flat to within 0.03 dB.
DEFAULT_SHARPNESS = 1.0
# Spectral volumes are resized to the image only when the aspect ratios agree to within this fraction.
ASPECT_TOLERANCE = 0.02
# A learned renderer's frames get its zero-motion error back where they move less than this (pixels), fading out
# linearly (by the motion at each output pixel, an approximation beside occluding edges): a still region looks
# the same in every frame, frame 0 included, so no frame stands out.
STILL_BLEND_PX = 1.0


def softmax_metric(
    magnitude: torch.Tensor, sharpness: float = DEFAULT_SHARPNESS, max_samples: int = 1_000_000
) -> torch.Tensor:
    """Softmax log-weights from W(p) = mean_t |F_t(p)|, scaled so that W's 99th percentile maps to sharpness.

    Normalising by a high percentile (not the max, which one bad flow vector could set) makes the front/back
    ordering independent of the image's resolution and of the motion's overall amplitude.

    Args:
        magnitude: (1, H, W) W(p) in pixels (splatting.motion_metric).

    Returns:
        (1, 1, H, W) float log-weights.
    """
    flat = magnitude.flatten()
    flat = flat[:: max(1, flat.numel() // max_samples)]
    reference = torch.quantile(flat.float(), 0.99).clamp_min(1e-6)
    return (magnitude * (sharpness / reference)).unsqueeze(0)


def loop_motion_magnitude(spectrum: torch.Tensor, num_frames: int, chunk_size: int = 32) -> torch.Tensor:
    """W(p) = mean over one period of |F_t(p)| for a (K, 4, H, W) spectral volume -> (1, H, W) pixels.

    Evaluated chunk by chunk so that the full motion texture never sits in memory.
    """
    total = torch.zeros(1, *spectrum.shape[-2:], device=spectrum.device)
    for start in range(0, num_frames, chunk_size):
        times = torch.arange(start, min(start + chunk_size, num_frames), dtype=torch.float64)
        motion = spectrum_to_motion(spectrum, num_frames, frame_indices=times)
        total += motion_metric(motion) * len(times)
    return total / num_frames


def render_frames(
    image: torch.Tensor,
    displacements: torch.Tensor,
    metric: torch.Tensor | None = None,
    mode: SplatMode = "softmax",
    fill_holes: bool = True,
) -> torch.Tensor:
    """Forward-warp one image by each displacement field.

    Args:
        image: (3, H, W) or (1, 3, H, W) float in [0, 1] (any channel count works).
        displacements: (N, 2, H, W) pixels, frame 0 of the picture to frame n.
        metric: (1, 1, H, W) softmax/linear metric; defaults to softmax_metric of these displacements.
        mode: splatting mode (splatting.SPLAT_MODES).
        fill_holes: fill disocclusions with a pull-push pyramid (else they stay black).

    Returns:
        (N, C, H, W) float frames.
    """
    image = image.unsqueeze(0) if image.dim() == 3 else image
    if image.shape[-2:] != displacements.shape[-2:]:
        raise GIDInputError(
            f"image is {image.shape[-1]}x{image.shape[-2]} but the motion is "
            f"{displacements.shape[-1]}x{displacements.shape[-2]} (width x height)"
        )
    if metric is None and mode in ("softmax", "linear"):
        metric = softmax_metric(motion_metric(displacements))
    batch = displacements.shape[0]
    frames, valid = splat(image.expand(batch, -1, -1, -1), displacements.to(image.dtype), metric, mode, True)
    return pull_push_fill(frames, valid) if fill_holes else frames


def fit_spectrum_to_image(spectrum: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Resize a (K, 4, h, w) spectral volume to an image of height x width, scaling its displacements.

    Raises GIDInputError when the aspect ratios differ: stretching motion onto another framing is never right.
    """
    h, w = spectrum.shape[-2:]
    if (h, w) == (height, width):
        return spectrum
    if abs((w / h) / (width / height) - 1.0) > ASPECT_TOLERANCE:
        raise GIDInputError(
            f"the spectral volume is {w}x{h} but the image is {width}x{height} (width x height): their aspect "
            f"ratios differ, so the motion does not belong to this image"
        )
    return resize_spectrum(spectrum, (height, width))


def iter_loop_frames(
    image: torch.Tensor,
    spectrum: torch.Tensor,
    num_frames: int,
    mode: SplatMode = "softmax",
    sharpness: float = DEFAULT_SHARPNESS,
    fill_holes: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    renderer: SplatRenderer | None = None,
) -> Iterator[torch.Tensor]:
    """Render a seamless loop chunk by chunk, so memory stays bounded at any resolution.

    Frame n displaces the image by the spectral volume's motion at n / num_frames of its period; frame 0 is the
    image itself and frame num_frames would equal frame 0 again.

    Args:
        image: (3, H, W) float in [0, 1].
        spectrum: (K, 4, h, w) pixels, resized to the image (same aspect ratio) with displacements scaled.
        num_frames: frames in one period of the loop.
        mode, sharpness, fill_holes: the pixel renderer's splatting mode, softmax sharpness (softmax_metric) and
            hole filling; ignored with a learned renderer.
        renderer: a learned SplatRenderer (on any device and dtype: the frames are rendered there and come back
            on the image's device as float32), or None for pixel-level splatting. Its metric is W itself, in
            pixels (it applies its own learned temperature). Every frame goes through the same path; where a
            frame moves less than STILL_BLEND_PX, the renderer's own error on the still photo is taken back, so a
            frame whose motion is zero everywhere (frame 0, every frame of a still volume) is the image itself,
            exactly, with either renderer, and the loop's seam is like any other cut.

    Yields:
        (n, 3, H, W) float frames in [0, 1], n <= chunk_size, in order.
    """
    if num_frames < 1:
        raise GIDInputError(f"num_frames must be >= 1, got {num_frames}")
    if chunk_size < 1:
        raise GIDInputError(f"chunk_size must be >= 1, got {chunk_size}")
    height, width = image.shape[-2:]
    device = image.device if renderer is None else renderer.device
    spectrum = fit_spectrum_to_image(spectrum.to(device, torch.float32), height, width)
    # W(p) averages |F_t| over the whole loop, so it is known before the first frame is rendered.
    magnitude = loop_motion_magnitude(spectrum, num_frames)
    if renderer is None:
        metric = softmax_metric(magnitude, sharpness) if mode == "softmax" else magnitude.unsqueeze(0)
    else:
        source, metric = image.to(device, torch.float32).unsqueeze(0), magnitude.unsqueeze(0)
        with torch.inference_mode():
            features = renderer.encode(source)  # once for the whole loop
            still_error = source - renderer.render(source, features, source.new_zeros(1, 2, height, width), metric)
    for start in range(0, num_frames, chunk_size):
        times = torch.arange(start, min(start + chunk_size, num_frames), dtype=torch.float64)
        motion = spectrum_to_motion(spectrum, num_frames, frame_indices=times)
        if renderer is None:
            yield render_frames(image, motion, metric, mode, fill_holes).clamp_(0.0, 1.0)
            continue
        with torch.inference_mode():
            frames = renderer.render(source, features, motion, metric)
            stillness = (1.0 - motion.norm(dim=1, keepdim=True) / STILL_BLEND_PX).clamp_(min=0.0)
            frames = (frames + still_error * stillness).clamp_(0.0, 1.0)
            # A frame that does not move at all is that sum, the photo, up to float rounding: make it exact.
            still = motion.flatten(1).abs().amax(dim=1) == 0
            frames = torch.where(still.view(-1, 1, 1, 1), source, frames)
        yield frames.to(image.device, torch.float32)


def render_loop(image: torch.Tensor, spectrum: torch.Tensor, num_frames: int, **kwargs) -> torch.Tensor:
    """All frames of iter_loop_frames at once: (num_frames, 3, H, W) float in [0, 1]."""
    return torch.cat(list(iter_loop_frames(image, spectrum, num_frames, **kwargs)))
