"""PyTorch datasets over prepared data (the format of data/shards.py).

SpectralShardDataset streams shards (an IterableDataset): it mixes several datasets at chosen ratios, shuffles
shard order and samples in a buffer, and splits the data over DataLoader workers and distributed ranks so that no
two of them read the same sample. SpectralMapDataset gives random access, for small sets (validation).

Items are dicts:
    image: (3, H, W) float32 in [0, 1]
    spectrum: (K, 4, H, W) float32, unnormalised, pixels of the H x W grid (spectral.CHANNELS order)
    meta: the sample's JSON metadata plus "key" and "dataset" (the index of the dataset it came from)
    features: only when read with cached image features (data.feature_cache): a tuple of (C_l, h_l, w_l) float32
        maps, those of the image as augmented (the stored image or its mirror)
Normalisation (a dataset's saved ``normalizer``, or ``SpectralShardDataset.fit_normalizer`` for a mix) is for the
model's boundary, not applied here. ``collate`` batches items (DataLoader's default cannot: metadata differs between
real and procedural samples).

Everything random derives from ``seed``: shard order from (seed, dataset, epoch), the shuffle buffer and mixing from
(seed, epoch, consumer), and each sample's augmentation from (seed, dataset, epoch, key), so a sample is augmented
alike however many workers read it.
"""

from __future__ import annotations

import copy
import itertools
import os
import zlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from ..errors import GIDInputError
from ..spectral.transform import DEFAULT_PERCENTILE, SpectralNormalizer
from .augment import Augment
from .feature_cache import FeatureCache, open_feature_cache
from .shards import (
    DatasetInfo,
    Sample,
    decode_sample,
    fit_normalizer,
    index_shard,
    iter_shard,
    open_dataset,
    read_members,
)

DatasetPaths = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
# A sample's cached features: {"plain": maps, "flip": maps}, each a tuple of (C_l, h_l, w_l) float16 maps.
FeatureViews = dict[str, tuple[torch.Tensor, ...]]


def to_item(sample: Sample, dataset_index: int = 0) -> dict[str, Any]:
    """A decoded sample as a training item: image (3, H, W) float32 in [0, 1], spectrum float32, meta."""
    image = torch.from_numpy(sample.image).permute(2, 0, 1).float().div_(255.0)
    return {"image": image, "spectrum": sample.spectrum, "meta": {**sample.meta, "key": sample.key,
                                                                   "dataset": dataset_index}}  # fmt: skip


def collate(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Items -> {"image": (B, 3, H, W), "spectrum": (B, K, 4, H, W), "meta": list of B dicts}, plus "features"
    (a tuple of (B, C_l, h_l, w_l)) when the items have them."""
    batched = {
        "image": torch.stack([item["image"] for item in batch]),
        "spectrum": torch.stack([item["spectrum"] for item in batch]),
        "meta": [item["meta"] for item in batch],
    }
    if "features" in batch[0]:
        batched["features"] = tuple(torch.stack(maps) for maps in zip(*(item["features"] for item in batch),
                                                                      strict=True))  # fmt: skip
    return batched


def _open_all(paths: DatasetPaths) -> list[DatasetInfo]:
    """Open one or several datasets and check that their samples are interchangeable."""
    roots = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not roots:
        raise GIDInputError("no dataset given")
    infos = [open_dataset(root) for root in roots]
    for info in infos:
        if info.num_samples == 0:
            raise GIDInputError(f"dataset {info.root} has no samples")
    first = infos[0]
    for info in infos[1:]:
        for what, mine, theirs in (
            ("K (number of frequencies)", first.num_frequencies, info.num_frequencies),
            ("size (width, height)", first.size, info.size),
            # Bin k is k * fps / T Hz: datasets that differ here put different frequencies in the same bin.
            ("frequency spacing fps / T (Hz)", first.fps / first.num_frames, info.fps / info.num_frames),
        ):
            if not np.isclose(np.asarray(mine, float), np.asarray(theirs, float)).all():
                raise GIDInputError(f"datasets {first.root} and {info.root} differ in {what}: {mine} vs {theirs}")
    return infos


def _feature_caches(
    infos: list[DatasetInfo], fingerprint: str | None, augment: Augment | None
) -> list[FeatureCache] | None:
    """Every dataset's cache of ``fingerprint``'s features, checked before any sample is read; None without one."""
    if fingerprint is None:
        return None
    if augment is not None and augment.changes_pixels:
        raise GIDInputError(
            "cached image features describe the stored images (and their mirrors): train without zoom and "
            "photometric augmentation (they would show the model an image the features do not describe)"
        )
    caches = []
    for info in infos:
        cache = open_feature_cache(info.root, fingerprint)
        if cache is None:
            raise GIDInputError(f"dataset {info.root} has no cached image features: run gid cache-features on it")
        caches.append(cache)
    return caches


def _rank_and_world_size(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """This process's rank among distributed processes: given, from torch.distributed, or from RANK / WORLD_SIZE
    (set by torchrun and accelerate)."""
    if rank is not None and world_size is not None:
        found = rank, world_size
    elif torch.distributed.is_available() and torch.distributed.is_initialized():
        found = torch.distributed.get_rank(), torch.distributed.get_world_size()
    else:
        found = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if not 0 <= found[0] < found[1]:
        raise GIDInputError(f"rank {found[0]} is not in range for world size {found[1]}")
    return found


def _shuffled(items: Iterator[Any], buffer_size: int, rng: np.random.Generator) -> Iterator[Any]:
    """Approximate shuffle of a stream through a buffer of buffer_size items."""
    buffer: list[Any] = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        index = int(rng.integers(buffer_size))
        buffer[index], item = item, buffer[index]
        yield item
    rng.shuffle(buffer)  # type: ignore[arg-type]
    yield from buffer


class _Augmenting:
    """Shared by both datasets: the normaliser, and augmentation seeded per sample."""

    infos: list[DatasetInfo]
    augment: Augment | None
    seed: int
    epoch: int

    @property
    def normalizer(self) -> SpectralNormalizer | None:
        """The first dataset's saved normalisation statistics (None if it has none); for a mix, see
        SpectralShardDataset.fit_normalizer."""
        return self.infos[0].normalizer

    @property
    def normalizers(self) -> list[SpectralNormalizer | None]:
        return [info.normalizer for info in self.infos]

    @property
    def num_frequencies(self) -> int:
        return self.infos[0].num_frequencies

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of every item."""
        return self.infos[0].size

    def set_epoch(self, epoch: int) -> None:
        """Reseed shard order, shuffling and augmentation for a new epoch (call before iterating)."""
        self.epoch = epoch

    def _item(
        self, sample: Sample, dataset_index: int, epoch: int, views: FeatureViews | None = None
    ) -> dict[str, Any]:
        item, flipped = to_item(sample, dataset_index), False
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, dataset_index, epoch, zlib.crc32(sample.key.encode())])
            item["image"], item["spectrum"], flipped = self.augment.apply(item["image"], item["spectrum"], rng)
        if views is not None:
            item["features"] = tuple(maps.float() for maps in views["flip" if flipped else "plain"])
        return item


class SpectralShardDataset(_Augmenting, IterableDataset):
    """Streams one or several prepared datasets, mixed at the given ratios.

    Args:
        paths: a dataset directory or several; they must agree on K, size and frequency spacing.
        weights: relative sampling frequency per dataset (default: proportional to their sizes); e.g. [0.3, 0.7]
            draws about 30 % of items from the first.
        shuffle: shuffle the shard order per epoch and the samples through a buffer of shuffle_buffer items.
        repeat: restart each dataset when it runs out (an endless stream; the default when mixing, so that the
            ratio holds). Without it, every sample is read once per pass and a dataset that runs out leaves the mix.
        augment: applied to every item, or None.
        seed: the source of all randomness (see the module docstring).
        rank, world_size: this process among distributed ones (default: torch.distributed or RANK / WORLD_SIZE).
        features: the fingerprint of an image encoder whose cached features (data.feature_cache) every item
            carries; every dataset needs that cache, and augment may only mirror.

    The consumers (ranks x DataLoader workers) split each dataset by shards when it has at least as many shards
    as consumers, else by samples (each consumer then reads every shard but decodes only its share). Either way
    each sample reaches exactly one consumer per pass; consumers may get unequal numbers, so use repeat=True
    (and a fixed number of steps) for distributed training.
    """

    def __init__(
        self,
        paths: DatasetPaths,
        weights: Sequence[float] | None = None,
        *,
        shuffle: bool = True,
        shuffle_buffer: int = 256,
        repeat: bool | None = None,
        augment: Augment | None = None,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
        features: str | None = None,
    ) -> None:
        super().__init__()
        self.infos = _open_all(paths)
        self.feature_caches = _feature_caches(self.infos, features, augment)
        if weights is None:
            weights = [info.num_samples for info in self.infos]
        if len(weights) != len(self.infos) or not all(np.isfinite(w) and w > 0 for w in weights):
            raise GIDInputError(f"need one positive weight per dataset ({len(self.infos)}), got {list(weights)}")
        self.weights = np.asarray(weights, np.float64) / float(np.sum(weights))
        self.shuffle, self.shuffle_buffer = shuffle, max(1, shuffle_buffer)
        self.repeat = len(self.infos) > 1 if repeat is None else repeat
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.rank, self.world_size = rank, world_size

    def fit_normalizer(self, num_samples: int = 1024, percentile: float = DEFAULT_PERCENTILE) -> SpectralNormalizer:
        """Normalisation statistics of the stream as it is drawn (mixing weights included, augmentation left
        out but for its motion reshaping): the per-frequency percentile over its first num_samples items, in
        bounded memory. For a mix of real and procedural data this, rather than either dataset's own statistics,
        matches what the model sees."""
        plain = copy.copy(self)
        reshaping = self.augment is not None and self.augment.reshapes_motion
        plain.augment = self.augment.motion_only() if reshaping else None
        spectra = (item["spectrum"] for item in itertools.islice(plain, num_samples))
        return fit_normalizer(spectra, num_samples, percentile, seed=self.seed)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world_size = _rank_and_world_size(self.rank, self.world_size)
        worker = get_worker_info()
        workers, worker_id = (worker.num_workers, worker.id) if worker is not None else (1, 0)
        consumer, consumers = rank * workers + worker_id, world_size * workers
        streams = [self._stream(index, consumer, consumers) for index in range(len(self.infos))]
        rng = np.random.default_rng([self.seed, self.epoch, consumer])
        active = list(range(len(streams)))
        while active:
            weights = self.weights[active]
            choice = active[int(rng.choice(len(active), p=weights / weights.sum()))] if len(active) > 1 else active[0]
            item = next(streams[choice], None)
            if item is None:
                active.remove(choice)
                continue
            yield item

    def _stream(self, index: int, consumer: int, consumers: int) -> Iterator[dict[str, Any]]:
        """One dataset's items for one consumer, pass after pass while repeating."""
        shards = self.infos[index].shards
        epoch = self.epoch
        while True:
            order = np.arange(len(shards))
            if self.shuffle:
                np.random.default_rng([self.seed, index, epoch]).shuffle(order)  # the same for every consumer
            if len(shards) >= consumers:
                mine = (shards[i][0] for i in order[consumer::consumers])
                raw = (sample for path in mine for sample in self._read_shard(index, path))
            else:
                every = (sample for i in order for sample in self._read_shard(index, shards[i][0]))
                raw = (sample for n, sample in enumerate(every) if n % consumers == consumer)
            if self.shuffle:
                raw = _shuffled(raw, self.shuffle_buffer, np.random.default_rng([self.seed, index, epoch, consumer]))
            count = 0
            for key, files, views in raw:
                count += 1
                yield self._item(decode_sample(key, files), index, epoch, views)
            if not self.repeat or count == 0:  # a consumer with no share would otherwise spin forever
                return
            epoch += 1


    def _read_shard(
        self, index: int, path: str | os.PathLike[str]
    ) -> Iterator[tuple[str, dict[str, bytes], FeatureViews | None]]:
        """A shard's raw samples with their cached feature views (None without a feature cache)."""
        cache = self.feature_caches[index] if self.feature_caches else None
        shard_views = cache.load_shard(path) if cache is not None else None
        for key, files in iter_shard(path):
            if shard_views is not None and key not in shard_views:
                raise GIDInputError(f"the feature cache {cache.root} has no features of sample {key}: rebuild it")
            yield key, files, None if shard_views is None else shard_views[key]


class SpectralMapDataset(_Augmenting, Dataset):
    """Random access to every sample of one or several datasets (concatenated, in shard order); for small sets.

    Indexing reads tar headers once (no sample data); an item is a few seeks and reads. To mix datasets at a ratio,
    pair it with torch.utils.data.WeightedRandomSampler. augment / seed as SpectralShardDataset.
    """

    def __init__(self, paths: DatasetPaths, *, augment: Augment | None = None, seed: int = 0) -> None:
        super().__init__()
        self.infos = _open_all(paths)
        self.augment, self.seed, self.epoch = augment, seed, 0
        self.index = [
            (dataset, path, key, members)
            for dataset, info in enumerate(self.infos)
            for path, _ in info.shards
            for key, members in index_shard(path)
        ]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, index: int) -> dict[str, Any]:
        dataset, path, key, members = self.index[index]
        return self._item(decode_sample(key, read_members(path, members)), dataset, self.epoch)
