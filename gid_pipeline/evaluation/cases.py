"""Evaluation cases: a still and its true motion on the evaluation grid, from a prepared dataset (decoded lazily)
or measured from windows of real clips (evaluation.clips)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..data.shards import decode_sample, index_shard, open_dataset, read_members
from ..errors import GIDInputError
from ..rendering.loop import fit_spectrum_to_image
from ..spectral.volume import SpectralVolume
from .masks import (
    MotionMasks,
)

# Ground truth of a clip keeps the bins up to the model's top frequency (K = 16 at 150 frames / 30 fps: 3 Hz).
DEFAULT_MAX_FREQUENCY_HZ = 3.0
DEFAULT_SIZE = (256, 160)  # (width, height): the model's resolution


@dataclass(frozen=True)
class MotionCase:
    """One still image and its true motion on the evaluation grid.

    Attributes:
        name: unique, readable (a dataset key, or "clip.avi@8" for the window starting at frame 8).
        source: what the case was cut from (a clip's path, a procedural scene's key); cases of one source are
            never used as each other's baseline reference (overlapping windows of one clip share their motion).
        kind: "procedural", "video" (a prepared real window) or "clip" (a window measured here).
        image: (3, H, W) float32 in [0, 1].
        volume: true spectral volume (K, 4, H, W), pixels of the H x W grid, with its time base.
        meta: JSON-serialisable facts for the report.
        masks: moving / still / ignored pixels (masks.clip_masks) of a real clip's window; None for exact motion,
            whose masks come from the amplitude alone (masks.amplitude_masks).
    """

    name: str
    source: str
    kind: str
    image: torch.Tensor
    volume: SpectralVolume
    meta: dict[str, Any] = field(default_factory=dict)
    masks: MotionMasks | None = None


def resize_image(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    if image.shape[-2:] == (height, width):
        return image
    return F.interpolate(image[None], size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0]


class DatasetCases(Sequence[MotionCase]):
    """The samples of a prepared dataset as cases, decoded on access: memory stays bounded however large the set.

    Indexing reads the tar headers once; ``cases[i]`` reads and decodes one sample (a new MotionCase each time).
    """

    def __init__(self, root: str | Path, max_cases: int | None = None, size: tuple[int, int] | None = None) -> None:
        """
        Args:
            root: a ``gid prepare-data`` directory (manifest.json + shards).
            max_cases: the first max_cases samples (None: all).
            size: (width, height) of the evaluation grid; None keeps the dataset's. Another size must have the same
                aspect ratio (images and spectra are resized, displacements scaled).
        """
        self.root = Path(root)
        self.info = open_dataset(root)
        located = [(path, key, members) for path, _ in self.info.shards for key, members in index_shard(path)]
        if not located:
            raise GIDInputError(f"dataset {root} holds no samples")
        self.samples = located[:max_cases]
        self.size = size or self.info.size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> MotionCase:  # type: ignore[override]
        path, key, members = self.samples[index]
        sample = decode_sample(key, read_members(path, members))
        width, height = self.size
        image = torch.from_numpy(sample.image).permute(2, 0, 1).float().div(255.0)
        spectrum = fit_spectrum_to_image(sample.spectrum, height, width)
        # Every procedural scene is its own source; real windows belong to their clip.
        kind = self.info.kind
        source = sample.key if kind == "procedural" else str(sample.meta.get("source", sample.key))
        meta = {"dataset": str(self.root)}
        meta.update({name: sample.meta[name] for name in ("seed", "start_frame") if name in sample.meta})
        scene_type = sample.meta.get("procedural", {}).get("scene_type")
        if scene_type is not None:
            meta["scene_type"] = scene_type
        volume = SpectralVolume(spectrum, self.info.num_frames, self.info.fps)
        return MotionCase(sample.key, source, kind, resize_image(image, height, width), volume, meta)


def dataset_cases(
    root: str | Path, max_cases: int | None = None, size: tuple[int, int] | None = None
) -> DatasetCases:
    """The first max_cases samples of a prepared dataset as a lazily decoded sequence of cases (DatasetCases)."""
    return DatasetCases(root, max_cases, size)
