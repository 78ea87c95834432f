"""Training data: datasets of (still, spectral volume) pairs built from clips or procedural scenes, and readers."""

from .augment import Augment
from .builder import SampleConfig, prepare_procedural_dataset, prepare_video_dataset
from .dataset import SpectralMapDataset, SpectralShardDataset, collate
from .shards import open_dataset
from .windows import VideoConfig, WindowFilters

__all__ = [
    "Augment",
    "SampleConfig",
    "SpectralMapDataset",
    "SpectralShardDataset",
    "VideoConfig",
    "WindowFilters",
    "collate",
    "open_dataset",
    "prepare_procedural_dataset",
    "prepare_video_dataset",
]
