"""Training data: procedural scenes with exact ground-truth motion, real-clip dataset building, and datasets."""

from . import modal
from .augment import Augment
from .builder import (
    SampleConfig,
    VideoConfig,
    WindowFilters,
    prepare_procedural_dataset,
    prepare_video_dataset,
)
from .dataset import SpectralMapDataset, SpectralShardDataset, collate
from .procedural import (
    AMPLITUDE_CAP_PX,
    DEFAULT_SIZE,
    MAX_FREQUENCY_HZ,
    SCENE_TYPES,
    ProceduralSample,
    generate_scene,
)
from .procedural_videos import ProceduralVideoConfig, write_procedural_videos
from .shards import open_dataset

__all__ = [
    "AMPLITUDE_CAP_PX",
    "DEFAULT_SIZE",
    "MAX_FREQUENCY_HZ",
    "SCENE_TYPES",
    "Augment",
    "ProceduralSample",
    "ProceduralVideoConfig",
    "SampleConfig",
    "SpectralMapDataset",
    "SpectralShardDataset",
    "VideoConfig",
    "WindowFilters",
    "collate",
    "generate_scene",
    "modal",
    "open_dataset",
    "prepare_procedural_dataset",
    "prepare_video_dataset",
    "write_procedural_videos",
]
