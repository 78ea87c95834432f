"""A dataset being built or resumed: which items are done, the shard being filled, the manifest and the dataset
card written atomically as it grows, and the normalisation statistics fitted when it completes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import GIDInputError
from ..files import PARTIAL_SUFFIX, write_bytes_atomic, write_json_atomic
from ..spectral.transform import SpectralNormalizer
from .shards import (
    CARD_NAME,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    NORMALIZATION_NAME,
    SHARD_GLOB,
    ShardWriter,
    compute_normalization,
    read_manifest,
    shard_name,
)


@dataclass(frozen=True)
class BuildSummary:
    """What a prepare-data run left behind.

    num_samples / num_shards: in the whole dataset; new_samples: added by this run; rejected: windows (and
    too-short clips) per reason, whole dataset; errors: unreadable files; normalizer: the saved statistics.
    """

    root: Path
    num_samples: int
    num_shards: int
    new_samples: int
    rejected: dict[str, int]
    errors: int
    normalizer: SpectralNormalizer | None


@dataclass(frozen=True)
class Outcome:
    """What processing one item gave: encoded sample members, or a rejection record."""

    source: str
    item: int
    key: str | None = None
    files: dict[str, bytes] | None = None
    rejection: dict[str, Any] | None = None


def to_ranges(items: Iterable[int]) -> list[list[int]]:
    """Sorted integers as inclusive [first, last] runs: {0, 1, 2, 5} -> [[0, 2], [5, 5]]."""
    ranges: list[list[int]] = []
    for item in sorted(items):
        if ranges and item == ranges[-1][1] + 1:
            ranges[-1][1] = item
        else:
            ranges.append([item, item])
    return ranges


def from_ranges(ranges: Iterable[list[int]]) -> set[int]:
    return {item for first, last in ranges for item in range(first, last + 1)}


class DatasetState:
    """The dataset directory during a build: its committed manifest, the shard being written, and the items
    processed since the last commit (done only once their samples are in a renamed shard)."""

    def __init__(self, root: Path, config: dict[str, Any], samples_per_shard: int) -> None:
        self.root, self.config, self.samples_per_shard = root, config, samples_per_shard
        if root.exists() and not root.is_dir():
            raise GIDInputError(f"output {root} exists and is not a directory")
        if (root / MANIFEST_NAME).exists():
            manifest = read_manifest(root)
            check_same_config(root, manifest["config"], config)
        elif root.exists() and any(root.iterdir()):
            raise GIDInputError(f"output directory {root} is not empty and holds no gid dataset; use a new one")
        else:
            root.mkdir(parents=True, exist_ok=True)
            manifest = {"shards": [], "done": {}, "rejected": []}
        self.shards: list[dict[str, Any]] = manifest["shards"]
        self.done = {source: from_ranges(ranges) for source, ranges in manifest["done"].items()}
        # Clip-level records (too short, unreadable) are re-established by every run's probing; window-level
        # rejections are committed with their windows.
        self.rejected: list[dict[str, Any]] = [r for r in manifest["rejected"] if r.get("start_frame") is not None]
        self.clip_rejected: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.normalization: dict[str, Any] | None = manifest.get("normalization")
        self.pending: list[Outcome] = []
        self.writer: ShardWriter | None = None
        self.new_samples = 0
        self._remove_leftovers()

    def _remove_leftovers(self) -> None:
        """Delete what an interrupted run may have left: temporary files, and a shard renamed into place whose
        manifest entry was never written (its items were not done, so they will be redone)."""
        listed = {shard["name"] for shard in self.shards}
        for path in self.root.glob(SHARD_GLOB):
            if path.name not in listed:
                path.unlink()
        for path in self.root.glob(f".*{PARTIAL_SUFFIX}"):
            path.unlink()

    def is_done(self, source: str, item: int) -> bool:
        return item in self.done.get(source, ())

    def record(self, outcome: Outcome) -> None:
        """Take one item's outcome, in item order; closing a full shard commits everything recorded so far."""
        self.pending.append(outcome)
        if outcome.files is None:
            return
        if self.writer is None:
            self.writer = ShardWriter(self.root / shard_name(len(self.shards)))
        self.writer.add(outcome.key, outcome.files)  # type: ignore[arg-type]
        self.new_samples += 1
        if self.writer.num_samples >= self.samples_per_shard:
            self._close_shard()
            self.commit(complete=False)

    def _close_shard(self) -> None:
        writer, self.writer = self.writer, None
        num_bytes = writer.close()  # type: ignore[union-attr]
        self.shards.append({"name": writer.path.name, "num_samples": writer.num_samples, "num_bytes": num_bytes})

    def commit(self, complete: bool) -> None:
        """Mark every pending item done and rewrite the manifest (atomically)."""
        for outcome in self.pending:
            self.done.setdefault(outcome.source, set()).add(outcome.item)
            if outcome.rejection is not None:
                self.rejected.append(outcome.rejection)
        self.pending = []
        rejected = sorted(
            self.rejected + self.clip_rejected, key=lambda r: (r["source"], r.get("start_frame") is not None,
                                                               r.get("start_frame") or 0),
        )  # fmt: skip
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "config": self.config,
            "complete": complete,
            "num_samples": sum(shard["num_samples"] for shard in self.shards),
            "shards": self.shards,
            "done": {source: to_ranges(items) for source, items in sorted(self.done.items())},
            "rejected": rejected,
            "rejected_counts": dict(sorted(Counter(r["reason"] for r in rejected).items())),
            "errors": sorted(self.errors, key=lambda e: e["source"]),
            "normalization": self.normalization,
        }
        write_json_atomic(self.root / MANIFEST_NAME, manifest)

    def finish(self, percentile: float) -> BuildSummary:
        """Close the last shard, commit, fit the normalisation statistics if the samples changed, write the card."""
        if self.writer is not None:
            self._close_shard()
        self.commit(complete=False)
        num_samples = sum(shard["num_samples"] for shard in self.shards)
        stats = self.root / NORMALIZATION_NAME
        current = self.normalization == {"num_samples": num_samples, "percentile": percentile} and stats.is_file()
        normalizer = None
        if num_samples and not current:
            normalizer = compute_normalization(self.root, percentile)
            self.normalization = {"num_samples": num_samples, "percentile": percentile}
        elif num_samples:
            normalizer = SpectralNormalizer.load(stats)
        self.commit(complete=True)
        write_card(self.root, self.config, num_samples, len(self.shards), normalizer)
        return BuildSummary(
            root=self.root,
            num_samples=num_samples,
            num_shards=len(self.shards),
            new_samples=self.new_samples,
            rejected=dict(Counter(r["reason"] for r in self.rejected + self.clip_rejected)),
            errors=len(self.errors),
            normalizer=normalizer,
        )

    def abort(self) -> None:
        """Drop the shard being written; the manifest on disk stays at the last commit."""
        if self.writer is not None:
            self.writer.abort()
            self.writer = None


def check_same_config(root: Path, old: dict[str, Any], new: dict[str, Any]) -> None:
    if old == new:
        return
    flat_old, flat_new = flatten_config(old), flatten_config(new)
    changed = [f"{k}: {flat_old.get(k)} -> {flat_new.get(k)}" for k in sorted(flat_old.keys() | flat_new.keys())
               if flat_old.get(k) != flat_new.get(k)]  # fmt: skip
    raise GIDInputError(
        f"{root} was prepared with other settings ({'; '.join(changed)}); rerun with the same settings to resume, "
        "or use a new output directory"
    )


def flatten_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(flatten_config(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def write_card(
    root: Path, config: dict[str, Any], num_samples: int, num_shards: int, normalizer: SpectralNormalizer | None
) -> None:
    """A short dataset card; its YAML header points Hugging Face's viewer at the shards."""
    width, height = config["size"]
    stats = "no samples, no statistics"
    if normalizer is not None:
        scales = ", ".join(f"{s:.3g}" for s in normalizer.scales)
        stats = f"the per-frequency {normalizer.percentile:g}th-percentile scales: {scales}"
    text = f"""---
configs:
- config_name: default
  data_files: "{SHARD_GLOB}"
tags:
- generative-image-dynamics
- optical-flow
- webdataset
---
# Spectral volumes ({config["kind"]})

{num_samples} (image, spectral volume) pairs in {num_shards} WebDataset shards, made by `gid prepare-data`
(gid_pipeline). Each sample `KEY` has `KEY.png` (frame 0, {width}x{height} RGB), `KEY.spectrum.safetensors`
(tensor `spectrum`, ({config["num_frequencies"]}, 4, {height}, {width}) {config["spectrum_dtype"]}, unnormalised pixels,
channels x.real, y.real, x.imag, y.imag; bin k is k * {config["fps"]:g} / {config["num_frames"]} Hz) and `KEY.json`.
`manifest.json` lists the shards, the settings and every rejected window with its reason; `normalization.json` holds
{stats}.
"""
    write_bytes_atomic(root / CARD_NAME, text.encode())
