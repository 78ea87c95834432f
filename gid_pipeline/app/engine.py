"""The model behind the app: the pipeline loaded once on first prediction, a cache of the spectral volumes it
predicted (a second poke of a photo costs no diffusion), and the player that renders without it."""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..checks import check_number
from ..limits import APP_MAX_GUIDANCE, APP_MAX_SEED, APP_MAX_STEPS
from ..media.images import fit_long_side
from ..player import Player
from ..sizing import working_size
from ..spectral.volume import SpectralVolume
from .brush import PaintedMask
from .photos import image_digest

MODEL_INPUT_SIDE = 256
"""Longer side of the photo handed to the model, and of the grid its spectral volume comes back on: the model's
own scale (it samples at 256x160 pixels' worth). Spectral volumes are smooth fields; rendering resizes them to the
video (displacements scaled), so a finer grid would only cost memory: 16 x 4 x 160 x 256 float32 is 10 MB."""

STORED_SIDE = 256
"""Longer side of the spectral volumes the app hands out as files (at most; a clip's is measured finer)."""

CACHE_SIZE = 16
"""Predicted spectral volumes kept in memory (at MODEL_INPUT_SIDE, at most about 13 MB each)."""


@dataclass(frozen=True)
class PredictionSettings:
    """What the model is asked: its sampler settings and the motion brush's painting (None: nothing painted). The
    cache keys on them (the painting by its digest) and on the photo's pixels."""

    seed: int
    steps: int
    guidance: float
    mask: PaintedMask | None = None

    def __post_init__(self) -> None:
        # Stored as checked (2.0 from a slider becomes 2): the pipeline wants an int step count.
        object.__setattr__(self, "seed", check_number("seed", self.seed, 0, APP_MAX_SEED, integer=True))
        object.__setattr__(self, "steps", check_number("steps", self.steps, 1, APP_MAX_STEPS, integer=True))
        object.__setattr__(self, "guidance", check_number("guidance", self.guidance, 0.0, APP_MAX_GUIDANCE))


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
        self._player: Player | None = None
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
        from ..guidance import PAPER_GUIDANCE_SCALE

        index = Path(self.checkpoint) / "model_index.json"
        try:
            return float(json.loads(index.read_text()).get("default_guidance_scale", PAPER_GUIDANCE_SCALE))
        except (OSError, ValueError, TypeError, AttributeError):
            return PAPER_GUIDANCE_SCALE

    @property
    def takes_motion_mask(self) -> bool:
        """Whether the checkpoint's U-Net was trained with motion masks (the brush): from unet/config.json of a
        local folder without loading it, else from the loaded pipeline."""
        if self._pipeline is None:
            try:
                return bool(json.loads((Path(self.checkpoint) / "unet" / "config.json").read_text()).get("motion_mask"))
            except (OSError, ValueError, AttributeError):
                pass  # a Hub id: only the loaded model says
        return bool(self.pipeline().unet.config.motion_mask)

    def pipeline(self) -> Any:
        """The GIDPipeline on self.device, loaded on the first call (hub.load_pipeline: a folder or a Hub repo id)."""
        with self._load_lock:
            if self._pipeline is None:
                from ..deploy.hub import load_pipeline  # imported on first use: the app starts without loading it

                pipe = load_pipeline(self.checkpoint)
                pipe.set_progress_bar_config(desc="denoise", leave=False)
                self._pipeline = pipe.to(self.device)
        return self._pipeline

    def player(self) -> Player:
        """What renders loops and pokes: the loaded pipeline's player, else one with only the checkpoint's renderer
        (Player.from_pretrained), so rendering a saved or measured motion never loads the diffusion model."""
        with self._load_lock:
            if self._pipeline is not None:
                return self._pipeline.player
            if self._player is None:
                self._player = Player.from_pretrained(self.checkpoint, device=self.device)
            return self._player

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
        """Run the model on a photo (no cache): its spectral volume, resized to the photo's grid, on the CPU (with
        the motion mask it was sampled with, if settings.mask was painted)."""
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
            motion_mask=settings.mask.image() if settings.mask is not None else None,
        )
        return replace(volume, spectrum=volume.spectrum.detach().float().cpu())

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
