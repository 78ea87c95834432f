"""Cached image-encoder features of a prepared dataset, so that training a feature-conditioned U-Net costs hardly
more than training one without (the frozen encoder runs once per image, not once per step).

Layout, beside the shards of a ``gid prepare-data`` dataset:

    features/<fingerprint>/cache.json              the encoder's fingerprint, feature channels and strides, size
    features/<fingerprint>/shard-000000.safetensors one per shard: for every sample key, its feature maps of the
                                                    stored image ("KEY/plain/L") and of its mirror ("KEY/flip/L"),
                                                    float16, L the level (0 = the finest)

The mirror's features are computed, not mirrored (a CNN is not exactly flip-equivariant), so a training item that
augmentation flips gets the features of exactly the image it shows. Other augmentations (zoom, photometric) would
change the image behind the cache's back: a dataset read with cached features refuses them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..errors import GIDInputError
from ..files import atomic_path, write_json_atomic
from ..models.image_encoder import EfficientNetLiteEncoder
from .shards import decode_sample, iter_shard, open_dataset

FEATURES_DIR = "features"
CACHE_NAME = "cache.json"
VIEWS = ("plain", "flip")
FEATURE_DTYPE = torch.float16


@dataclass(frozen=True)
class FeatureCache:
    """The features of one dataset by one encoder: where they are and what they hold."""

    root: Path
    fingerprint: str
    channels: tuple[int, ...]
    strides: tuple[int, ...]

    def shard_file(self, shard: str | os.PathLike[str]) -> Path:
        return self.root / (Path(shard).name.removesuffix(".tar") + ".safetensors")

    def load_shard(self, shard: str | os.PathLike[str]) -> dict[str, dict[str, tuple[torch.Tensor, ...]]]:
        """{key: {"plain": maps, "flip": maps}} of one shard, each map (C_l, H / s_l, W / s_l) float16."""
        path = self.shard_file(shard)
        if not path.is_file():
            raise GIDInputError(f"the feature cache {self.root} has no {path.name}: rerun gid cache-features")
        grouped: dict[str, dict[str, list[torch.Tensor]]] = {}
        with safe_open(str(path), framework="pt") as file:
            for name in file.keys():
                key, view, level = name.split("/")
                grouped.setdefault(key, {}).setdefault(view, [None] * len(self.channels))[int(level)] = (
                    file.get_tensor(name)
                )
        return {key: {view: tuple(maps) for view, maps in views.items()} for key, views in grouped.items()}


def cache_root(dataset: str | os.PathLike[str], fingerprint: str) -> Path:
    return Path(dataset) / FEATURES_DIR / fingerprint


def open_feature_cache(dataset: str | os.PathLike[str], fingerprint: str) -> FeatureCache | None:
    """The cache of ``fingerprint``'s features for a dataset; None when the dataset has no feature cache at all.

    Raises:
        GIDInputError: the dataset has caches, but only of other encoders (features of another network would be
            silently wrong), or the cache's description is unreadable.
    """
    found = sorted(p.parent.name for p in (Path(dataset) / FEATURES_DIR).glob(f"*/{CACHE_NAME}"))
    if not found:
        return None
    if fingerprint not in found:
        raise GIDInputError(
            f"the feature cache of {dataset} is of the image encoder(s) {', '.join(found)}, not {fingerprint}: "
            f"run gid cache-features {dataset} --encoder DIR with the encoder the U-Net uses"
        )
    root = cache_root(dataset, fingerprint)
    try:
        info = json.loads((root / CACHE_NAME).read_text())
        return FeatureCache(root, info["encoder"], tuple(info["channels"]), tuple(info["strides"]))
    except (OSError, json.JSONDecodeError, KeyError) as error:
        raise GIDInputError(f"unreadable feature cache description {root / CACHE_NAME}: {error}") from None


@torch.no_grad()
def build_feature_cache(
    dataset: str | os.PathLike[str],
    encoder: EfficientNetLiteEncoder,
    batch_size: int = 16,
    progress: bool = False,
) -> FeatureCache:
    """Compute and store the features of every sample of a prepared dataset (and of its mirror image).

    Resumable: shards whose feature file exists are skipped; each file is written under a temporary name and
    renamed, so an interrupted run leaves only complete files.

    Args:
        dataset: a ``gid prepare-data`` directory.
        encoder: the frozen image encoder (its config's fingerprint names the cache).
        batch_size: images per encoder call.
    """
    fingerprint = encoder.config.fingerprint
    if not fingerprint:
        raise GIDInputError("the image encoder has no fingerprint: convert it with gid convert-encoder")
    if batch_size < 1:
        raise GIDInputError(f"batch_size must be >= 1, got {batch_size}")
    info = open_dataset(dataset)
    root = cache_root(dataset, fingerprint)
    root.mkdir(parents=True, exist_ok=True)
    width, height = info.size
    description = {"encoder": fingerprint, "channels": list(encoder.feature_channels),
                   "strides": list(encoder.feature_strides), "size": [width, height], "views": list(VIEWS),
                   "dtype": "float16"}  # fmt: skip
    write_json_atomic(root / CACHE_NAME, description)
    cache = FeatureCache(root, fingerprint, encoder.feature_channels, encoder.feature_strides)
    encoder.eval()
    for shard, _ in tqdm(info.shards, desc="image features", unit="shard", disable=not progress):
        target = cache.shard_file(shard)
        if target.is_file():
            continue
        keys, images = [], []
        for key, files in iter_shard(shard):
            sample = decode_sample(key, files)
            keys.append(key)
            images.append(torch.from_numpy(sample.image).permute(2, 0, 1).float().div_(255.0))
        tensors: dict[str, torch.Tensor] = {}
        for start in range(0, len(images), batch_size):
            batch = torch.stack(images[start : start + batch_size]).to(encoder.device, encoder.dtype)
            for view, pixels in zip(VIEWS, (batch, batch.flip(-1)), strict=True):
                for level, maps in enumerate(encoder(pixels).features):
                    for key, feature in zip(keys[start : start + batch_size], maps, strict=True):
                        tensors[f"{key}/{view}/{level}"] = feature.to("cpu", FEATURE_DTYPE).contiguous()
        with atomic_path(target) as temporary:
            save_file(tensors, str(temporary), metadata={"encoder": fingerprint})
    return cache
