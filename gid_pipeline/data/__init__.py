"""Training data: procedural scenes with exact ground-truth motion."""

from . import modal
from .procedural import (
    AMPLITUDE_CAP_PX,
    DEFAULT_SIZE,
    MAX_FREQUENCY_HZ,
    SCENE_TYPES,
    ProceduralSample,
    generate_scene,
)

__all__ = [
    "AMPLITUDE_CAP_PX",
    "DEFAULT_SIZE",
    "MAX_FREQUENCY_HZ",
    "SCENE_TYPES",
    "ProceduralSample",
    "generate_scene",
    "modal",
]
