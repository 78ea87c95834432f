"""Procedural nature scenes with exact ground-truth oscillating motion, for training spectral-volume models.

A scene is a painter's-order stack of elements (grass blades, flower stems and heads, trunks, branches, leaf
clusters, leaves, hanging cloth; plus still sky, ground, rocks, walls, poles), each a premultiplied RGBA
sprite painted in its frame-0 pose together with an analytic, linear deformation of its material points,
d(u, t) = sum_j phi_j(u) q_j(t) (pixels). The phi_j are cantilever bending modes along a stem's chord,
hanging-chain modes of cloth, rigid flutter rotations of leaves and flower heads, and the rigid motion a child
inherits at its attachment to a swaying parent. The modal coordinates q_j are the steady-state responses of
damped oscillators to a gusty wind that travels across the scene (see modal.py); the wind is band-limited to
(0, 3] Hz, so the motion is periodic over the clip and its spectral volume represents it exactly.

Ground truth: pixel p of frame 0 belongs to the topmost element whose coverage there is at least 1/2 (or half
the element's peak coverage, for strongly defocused thin elements); its displacement in frame t is that
element's d(p, t) (exactly zero on still elements). Frame t, when asked for, is rendered by backward-warping
every moving sprite with its own deformation (inverted by fixed-point iteration) and compositing all sprites
in painter's order, so occlusions and disocclusions are right in every frame.

Conventions: image uint8 (H, W, 3) RGB numpy; displacements float32 torch (T, 2, H, W) in pixels, channel 0 =
x; spectrum float32 torch (K, 4, H, W) as in gid_pipeline.spectral.transform.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..errors import GIDInputError
from . import modal
from .elements import (
    AMPLITUDE_CAP_PX,
    DEFAULT_SIZE,
    Scene,
)
from .painted import BUILDERS
from .photo_world import AMPLITUDE_RANGE_PX, PHOTO_SCENE_TYPES, CameraGrade, PhotoWorld, texture_painted_scene
from .render import (
    Grade,
    amplitude_scale,
    band_spectrum,
    band_to_motion,
    compose,
    modal_coefficients,
    render_scene_frames,
)

SCENE_TYPES = ("meadow", "tree", "foliage", "flowers", "cloth")
MAX_FREQUENCY_HZ = 3.0  # the wind (hence the motion) is band-limited to (0, 3] Hz, the band K = 16 bins cover


@dataclass(frozen=True)
class ProceduralSample:
    """One generated scene.

    Attributes:
        image: (H, W, 3) uint8 RGB, frame 0.
        displacements: (T, 2, H, W) float32 torch, pixels, x first: where each pixel of frame 0 is in frame t,
            relative to itself; displacements[0] == 0. None when generated with return_displacements=False.
        spectrum: (K, 4, H, W) float32 torch, the spectral volume of displacements
            (spectral.motion_to_spectrum).
        moving_mask: (H, W) bool torch, True where frame 0 shows a moving element.
        frames: (T, H, W, 3) uint8 RGB rendered frames (frames[0] == image), or None unless
            render_frames=True.
        meta: scene type, seed, element counts, lighting, wind and amplitude parameters (JSON-serialisable).
    """

    image: np.ndarray
    displacements: torch.Tensor | None
    spectrum: torch.Tensor
    moving_mask: torch.Tensor
    frames: np.ndarray | None
    meta: dict[str, Any]


# ------------------------------------------------------------------------------------------------------------
# Elements and their modes


















# ------------------------------------------------------------------------------------------------------------
# Reusable scene parts


















# ------------------------------------------------------------------------------------------------------------
# Scene types




















# ------------------------------------------------------------------------------------------------------------
# Motion synthesis, compositing and rendering
























# ------------------------------------------------------------------------------------------------------------
# Public API


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise GIDInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def generate_scene(
    seed: int,
    size: tuple[int, int] = DEFAULT_SIZE,
    num_frames: int = 150,
    fps: float = 30.0,
    num_frequencies: int = 16,
    render_frames: bool = False,
    return_displacements: bool = True,
    scene_type: str | None = None,
    amplitude_px: float | None = None,
    world: PhotoWorld | None = None,
) -> ProceduralSample:
    """Generate one procedural scene with exact ground-truth motion.

    Args:
        seed: non-negative integer; the same arguments give the same sample bit for bit.
        size: (width, height) in pixels, each >= 32.
        num_frames: T >= 2 frames at fps frames per second; the motion is periodic over them.
        num_frequencies: K bins of the returned spectral volume, 1 <= K <= T // 2 + 1. The motion itself
            always occupies the bins up to 3 Hz (bins 1..15 for the default 150 frames at 30 fps).
        render_frames: also render all T frames (much slower than the motion alone).
        return_displacements: build the (T, 2, H, W) displacements; False returns only the spectrum (faster).
        scene_type: one of SCENE_TYPES (or, with a world, of photo_world.PHOTO_SCENE_TYPES), or None for
            SCENE_TYPES[seed % len(SCENE_TYPES)] (with a world: world.scene_type(seed)).
        amplitude_px: motion strength, the 95th percentile over moving pixels of the RMS displacement, in
            pixels of a 256x160 frame (scaled with resolution); None draws it log-uniformly in [0.3, 2] from
            the seed (with a world: in photo_world.AMPLITUDE_RANGE_PX). No pixel moves further than
            AMPLITUDE_CAP_PX (also scaled), which may lower it.
        world: a photo_world.PhotoWorld (photo textures, more scene types, camera realism); None generates the
            painted scenes exactly as without it.

    Returns:
        a ProceduralSample. Raises GIDInputError for bad arguments.
    """
    seed = _check_int("seed", seed, 0)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise GIDInputError(f"size must be (width, height), got {size!r}")
    width, height = (_check_int(name, v, 32) for name, v in zip(("width", "height"), size, strict=True))
    num_frames = _check_int("num_frames", num_frames, 2)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise GIDInputError(f"fps must be a positive number, got {fps!r}")
    num_frequencies = _check_int("num_frequencies", num_frequencies, 1)
    if num_frequencies > num_frames // 2 + 1:
        raise GIDInputError(
            f"num_frequencies must be <= T // 2 + 1 = {num_frames // 2 + 1}, got {num_frequencies}"
        )
    freqs = modal.band_frequencies_hz(num_frames, fps, MAX_FREQUENCY_HZ)
    if len(freqs) == 0:
        raise GIDInputError(
            f"{num_frames} frames at {fps} fps resolve no frequency in (0, {MAX_FREQUENCY_HZ}] Hz below "
            "Nyquist; use a longer clip"
        )
    if amplitude_px is not None and (
        isinstance(amplitude_px, bool)
        or not isinstance(amplitude_px, (int, float))
        or not math.isfinite(amplitude_px)
        or amplitude_px < 0
    ):
        raise GIDInputError(f"amplitude_px must be a non-negative number or None, got {amplitude_px!r}")
    known = SCENE_TYPES if world is None else SCENE_TYPES + PHOTO_SCENE_TYPES
    if scene_type is not None and scene_type not in known:
        raise GIDInputError(f"scene_type must be one of {known} or None, got {scene_type!r}")

    rng = np.random.default_rng(seed)
    # Scene types cycle with the seed, so any run of consecutive seeds is balanced.
    if scene_type is not None:
        kind = scene_type
    else:
        kind = SCENE_TYPES[seed % len(SCENE_TYPES)] if world is None else world.scene_type(seed)
    sc = Scene(rng, width, height, kind)
    photo_builder = None if world is None else world.builder(kind)
    if photo_builder is not None:
        photo_builder(sc, world)
    else:
        BUILDERS[kind](sc)
        if world is not None:
            texture_painted_scene(sc, world)
    canvas, owner = compose(sc)
    grade = Grade.pick(rng) if world is None else CameraGrade.pick(rng)

    low, high = (0.3, 2.0) if world is None else AMPLITUDE_RANGE_PX
    drawn_rms = float(np.exp(rng.uniform(math.log(low), math.log(high))))  # drawn even if unused: same scene
    target_rms = sc.unit * (drawn_rms if amplitude_px is None else float(amplitude_px))
    coefficients = modal_coefficients(sc, freqs) if len(sc.modes) else np.zeros((len(freqs), 0), complex)
    band, moving = band_spectrum(sc, owner, coefficients)
    scale = amplitude_scale(band, moving, num_frames, target_rms, AMPLITUDE_CAP_PX * sc.unit)
    band *= np.float32(scale)
    coefficients = coefficients * scale

    # Full band spectrum with its DC term: frame 0 is pinned, so S_0 = -sum_k 2 Re(S_k) (the clip mean).
    full = np.concatenate([-2.0 * band.real.sum(axis=0, keepdims=True), band], axis=0)
    channels = np.concatenate([full.real, full.imag], axis=1).reshape(len(full), 4, height, width)
    full_t = torch.from_numpy(np.ascontiguousarray(channels, dtype=np.float32))
    if num_frequencies <= len(full_t):
        spectrum = full_t[:num_frequencies].clone()
    else:
        spectrum = torch.cat([full_t, full_t.new_zeros(num_frequencies - len(full_t), 4, height, width)])
    displacements = None
    if return_displacements:
        displacements = torch.from_numpy(
            band_to_motion(band, moving, num_frames).reshape(num_frames, 2, height, width)
        )

    p = sc.pad
    image = grade.develop(canvas[:, p : p + height, p : p + width], 0)
    frames = None
    if render_frames:
        q = modal.modal_time_series(coefficients, num_frames)
        frames = render_scene_frames(sc, q, grade, image)
    moving_elements = [e for e in sc.elements if e.moving]
    meta = {
        "scene_type": kind,
        "seed": seed,
        "size": [width, height],
        "num_frames": num_frames,
        "fps": float(fps),
        "band_hz": [float(freqs[0]), float(freqs[-1])],
        "num_elements": len(sc.elements),
        "num_moving_elements": len(moving_elements),
        "element_counts": {
            k: sum(e.kind == k for e in sc.elements) for k in sorted({e.kind for e in sc.elements})
        },
        "num_modes": len(sc.modes),
        "natural_hz": [min(sc.modes.natural_hz, default=0.0), max(sc.modes.natural_hz, default=0.0)],
        "lighting": sc.light.name,
        "wind_speed_px_s": float(sc.wind_speed_px_s),
        "target_rms_px": target_rms,
        "moving_fraction": float(moving.mean()),
        "photo_world": world is not None,
    }
    return ProceduralSample(
        image=image,
        displacements=displacements,
        spectrum=spectrum,
        moving_mask=torch.from_numpy(moving.reshape(height, width)),
        frames=frames,
        meta=meta,
    )
