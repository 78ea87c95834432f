"""Procedural scenes with exact ground-truth oscillating motion: the painted scene types, the photographic world
(photo textures from a bank of licensed crops, scenes seen in real clips, camera realism), and clips of them."""

from . import modal
from .scenes import AMPLITUDE_CAP_PX, DEFAULT_SIZE, MAX_FREQUENCY_HZ, SCENE_TYPES, ProceduralSample, generate_scene
from .videos import ProceduralVideoConfig, write_procedural_videos

__all__ = [
    "AMPLITUDE_CAP_PX",
    "DEFAULT_SIZE",
    "MAX_FREQUENCY_HZ",
    "SCENE_TYPES",
    "ProceduralSample",
    "ProceduralVideoConfig",
    "generate_scene",
    "modal",
    "write_procedural_videos",
]
