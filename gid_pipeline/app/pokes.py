"""A poke as the app's controls describe it, rendered by the player into an mp4."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checks import check_number
from ..limits import APP_MAX_DAMPING, APP_MAX_FORCE, APP_MAX_FRAMES, APP_MAX_HOLD_SECONDS, APP_MIN_FRAMES
from ..player import Player
from ..spectral.volume import SpectralVolume
from .loops import _stream
from .photos import force_vector

FPS = 30.0
"""Frame rate of poke videos."""

POKE_FRAMES = 90
"""Default frames of a poke video (3 s: the swing and most of its decay; 5 s cost 1.7x on a CPU)."""

POKE_SIDE = 384
"""Default longer side of a poke video in pixels (a cached poke renders in about a second on two CPU cores; 512 px
costs 1.8x)."""


@dataclass(frozen=True)
class PokeRequest:
    """A poke as the app's controls describe it (checked on construction).

    Attributes:
        x, y: point in pixels of the image it is applied to, (0, 0) the top-left pixel's centre.
        direction: degrees, 0 pushes right, 90 up.
        force: pixels: about how far the poked point moves.
        damping: modal damping ratio in [0, APP_MAX_DAMPING].
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
            "force": ("force", 0.0, APP_MAX_FORCE, False),
            "damping": ("damping", 0.0, APP_MAX_DAMPING, False),
            "hold": ("hold", 0.0, APP_MAX_HOLD_SECONDS, False),
            "num_frames": ("frames", APP_MIN_FRAMES, APP_MAX_FRAMES, True),
        }
        for field, (name, low, high, integer) in checks.items():
            object.__setattr__(self, field, check_number(name, getattr(self, field), low, high, integer=integer))


def render_poke_video(
    path: Path, player: Player, image: np.ndarray, volume: SpectralVolume, poke: PokeRequest
) -> Path:
    """The scene's response to one poke at time 0, as an H.264 mp4 at ``path`` (FPS frames per second), rendered by
    the player (Player.iter_poke_frames: no diffusion model). The volume is fitted to the image when the aspect
    ratios agree; a point off the picture is refused."""
    chunks = player.iter_poke_frames(
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
