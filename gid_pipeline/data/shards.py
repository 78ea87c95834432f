"""The on-disk training-data format: WebDataset tar shards of (image, spectral volume) pairs, plus a manifest.

A dataset is a directory:

    manifest.json            config (size, T, fps, K, how it was made), shards with their sample counts, every
                             rejected window with its reason, every unreadable file with its error
    normalization.json       spectral.SpectralNormalizer fitted over all samples (per-frequency 95th percentile)
    README.md                a dataset card (Hugging Face reads its YAML header)
    shard-000000.tar, ...    the samples, ``samples_per_shard`` per shard (the last one may hold fewer)

A sample is three consecutive tar members sharing a key (WebDataset's convention: the key is a member's name up to
its first dot), so the ``webdataset`` package and Hugging Face ``datasets`` read the shards as they are:

    KEY.png                   frame 0, uint8 RGB, H x W
    KEY.spectrum.safetensors  tensor "spectrum" (K, 4, H, W) float16, unnormalised, pixels of the H x W grid,
                              channel order spectral.CHANNELS; its metadata is spectral_volume's, so an extracted
                              member loads with SpectralVolume.load
    KEY.json                  metadata: source, start frame, fps, T, K, size, filter scores, ...

float16 halves a sample (256x160 with K = 16 is 5.2 MB instead of 10.5 MB) at a relative rounding error of 2^-11:
0.005 px on a 10 px coefficient, far below optical flow's own error (~0.1 px), with the full relative precision
down to 6e-5 px, so the normaliser's sqrt of small coefficients loses nothing either. Shards are written under a
temporary name and renamed when complete, and tar headers carry no time or owner, so equal samples give
byte-identical shards.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from safetensors.torch import load as load_safetensors

from ..errors import GIDInputError
from ..files import CloseOrAbort, partial_path, write_json_atomic
from ..spectral.transform import CHANNELS, DEFAULT_PERCENTILE, SpectralNormalizer
from ..spectral.volume import FORMAT_NAME as SPECTRUM_FORMAT_NAME
from ..spectral.volume import FORMAT_VERSION as SPECTRUM_FORMAT_VERSION
from ..spectral.volume import TENSOR_NAME

FORMAT_NAME = "gid_pipeline.spectral_webdataset"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
NORMALIZATION_NAME = "normalization.json"
CARD_NAME = "README.md"
SHARD_GLOB = "shard-*.tar"
IMAGE_EXT, SPECTRUM_EXT, META_EXT = "png", "spectrum.safetensors", "json"
SAMPLE_EXTS = (IMAGE_EXT, SPECTRUM_EXT, META_EXT)
SPECTRUM_DTYPE = torch.float16  # safetensors_bytes writes it as "F16"
DEFAULT_SAMPLES_PER_SHARD = 100  # ~530 MB shards at 256x160, K = 16: the 100 MB - 1 GB WebDataset recommends
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]+")


def shard_name(index: int) -> str:
    """'shard-000042.tar' for index 42 (brace-expandable as shard-{000000..000042}.tar)."""
    return f"shard-{index:06d}.tar"


@dataclass(frozen=True)
class Sample:
    """One training pair as stored.

    Attributes:
        key: sample key, letters, digits, '_' and '-' only (no dots: WebDataset splits names at the first one).
        image: (H, W, 3) uint8 RGB, frame 0.
        spectrum: (K, 4, H, W) float32 (as read back: float16 precision), pixels of the H x W grid.
        meta: JSON-serialisable metadata.
    """

    key: str
    image: np.ndarray
    spectrum: torch.Tensor
    meta: dict[str, Any]


def encode_sample(sample: Sample, num_frames: int, fps: float) -> dict[str, bytes]:
    """Serialise a sample into its tar members {extension: bytes}; num_frames and fps (T and the frame rate the
    spectrum's frequencies refer to) go into the safetensors metadata, as in a SpectralVolume file."""
    if not _KEY_PATTERN.fullmatch(sample.key):
        raise GIDInputError(f"sample key {sample.key!r} must use only letters, digits, '_' and '-'")
    image, spectrum = sample.image, sample.spectrum
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise GIDInputError(f"sample {sample.key}: image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if spectrum.dim() != 4 or spectrum.shape[1] != 4 or tuple(spectrum.shape[-2:]) != image.shape[:2]:
        raise GIDInputError(
            f"sample {sample.key}: spectrum must be (K, 4, H, W) on the image's grid {image.shape[:2]}, got "
            f"{tuple(spectrum.shape)}"
        )
    ok, png = cv2.imencode(".png", np.ascontiguousarray(image[..., ::-1]), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise GIDInputError(f"sample {sample.key}: PNG encoding failed")
    metadata = {
        "format": SPECTRUM_FORMAT_NAME,
        "version": SPECTRUM_FORMAT_VERSION,
        "num_frames": str(num_frames),
        "fps": repr(float(fps)),
        "channels": ",".join(CHANNELS),
    }
    return {
        IMAGE_EXT: png.tobytes(),
        SPECTRUM_EXT: safetensors_bytes(spectrum, metadata),
        META_EXT: (json.dumps(sample.meta, sort_keys=True) + "\n").encode(),
    }


def safetensors_bytes(spectrum: torch.Tensor, metadata: dict[str, str]) -> bytes:
    """A safetensors file holding ``spectrum`` as SPECTRUM_DTYPE under TENSOR_NAME, byte-for-byte reproducible.

    safetensors' own writer orders the metadata through a hash map, so equal inputs can give different bytes;
    this writes the same layout (8-byte little-endian header length, JSON header padded with spaces to a
    multiple of 8, little-endian data) with sorted keys.
    """
    data = spectrum.detach().to("cpu", SPECTRUM_DTYPE).contiguous().numpy().astype("<f2").tobytes()
    entry = {"dtype": "F16", "shape": list(spectrum.shape), "data_offsets": [0, len(data)]}
    header = json.dumps({"__metadata__": metadata, TENSOR_NAME: entry}, sort_keys=True, separators=(",", ":"))
    header += " " * (-len(header) % 8)
    return len(header).to_bytes(8, "little") + header.encode() + data


def decode_sample(key: str, files: dict[str, bytes]) -> Sample:
    """Inverse of encode_sample; the spectrum comes back as float32."""
    missing = [ext for ext in SAMPLE_EXTS if ext not in files]
    if missing:
        raise GIDInputError(f"sample {key} lacks its {', '.join(missing)} member(s)")
    bgr = cv2.imdecode(np.frombuffer(files[IMAGE_EXT], np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise GIDInputError(f"sample {key}: its PNG image cannot be decoded")
    spectrum = load_safetensors(files[SPECTRUM_EXT])[TENSOR_NAME].float()
    return Sample(key, np.ascontiguousarray(bgr[..., ::-1]), spectrum, json.loads(files[META_EXT]))


def decode_spectrum(files: dict[str, bytes]) -> torch.Tensor:
    """Only the (K, 4, H, W) float32 spectrum of a sample's members."""
    return load_safetensors(files[SPECTRUM_EXT])[TENSOR_NAME].float()


class ShardWriter(CloseOrAbort):
    """Writes one tar shard under a hidden temporary name; ``close`` renames it into place, so a shard path only
    ever holds a complete shard. Leaving a ``with`` block by an exception (a full disk, Ctrl-C) deletes the
    temporary file instead."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.num_samples = 0
        self._temporary = partial_path(self.path)
        self._file = open(self._temporary, "wb")  # closed by close() or abort()
        self._tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)

    def add(self, key: str, files: dict[str, bytes]) -> None:
        """Append one sample's members, in SAMPLE_EXTS order."""
        for ext in SAMPLE_EXTS:
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mode, info.mtime = len(files[ext]), 0o644, 0
            self._tar.addfile(info, io.BytesIO(files[ext]))
        self.num_samples += 1

    def close(self) -> int:
        """Finish the shard, flush it to disk and rename it into place; returns its size in bytes."""
        self._tar.close()
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._temporary, self.path)
        return self.path.stat().st_size

    def abort(self) -> None:
        """Drop the shard: close and delete the temporary file (idempotent)."""
        try:
            self._file.close()
        finally:
            self._temporary.unlink(missing_ok=True)


def _split_name(member: tarfile.TarInfo) -> tuple[str, str] | None:
    """WebDataset's reading of a member name: (key, extension), split at the first dot of the base name; None for
    anything but a file with an extension."""
    directory, _, base = member.name.rpartition("/")
    stem, dot, ext = base.partition(".")
    if not member.isfile() or not dot:
        return None
    return (f"{directory}/{stem}" if directory else stem), ext


def iter_shard(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream a shard's samples as (key, {extension: bytes}), reading the file once from start to end."""
    key: str | None = None
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(path, mode="r|") as tar:
            for member in tar:
                name = _split_name(member)
                if name is None:
                    continue
                if name[0] != key and key is not None:
                    yield key, files
                    files = {}
                key = name[0]
                files[name[1]] = tar.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, OSError) as error:
        raise GIDInputError(f"cannot read shard {path}: {error}") from error
    if key is not None:
        yield key, files


def index_shard(path: str | os.PathLike[str]) -> list[tuple[str, dict[str, tuple[int, int]]]]:
    """(key, {extension: (byte offset, size)}) per sample of a shard, in order, from its tar headers alone (the
    sample data is skipped, not read)."""
    samples: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                name = _split_name(member)
                if name is not None:
                    samples.setdefault(name[0], {})[name[1]] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError) as error:
        raise GIDInputError(f"cannot read shard {path}: {error}") from error
    return list(samples.items())


def read_members(path: str | os.PathLike[str], members: dict[str, tuple[int, int]]) -> dict[str, bytes]:
    """The bytes of a sample's members, located by index_shard: {extension: bytes}."""
    files = {}
    with open(path, "rb") as handle:
        for ext, (offset, size) in members.items():
            handle.seek(offset)
            files[ext] = handle.read(size)
    return files


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of the dataset at ``root``; GIDInputError if there is none or it is not one of ours."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise GIDInputError(f"{root} is not a gid dataset: it has no {MANIFEST_NAME}")
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise GIDInputError(f"cannot read {path}: {error}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise GIDInputError(f"{path} is not a {FORMAT_NAME} manifest")
    if manifest.get("version") != FORMAT_VERSION:
        raise GIDInputError(f"{path} has format version {manifest.get('version')}, this code reads {FORMAT_VERSION}")
    return manifest


@dataclass(frozen=True)
class DatasetInfo:
    """What a reader needs to know about a dataset directory.

    Attributes:
        root: the directory.
        size: (width, height) of every image and spectrum.
        num_frames, fps: T and the frame rate the spectra were computed over (bin k is k * fps / T Hz).
        num_frequencies: K.
        shards: (path, sample count) per shard, in order.
        normalizer: the dataset's normalisation statistics, or None if normalization.json is missing.
        complete: False while a build is unfinished (the shards listed are complete nonetheless).
        kind: "video" or "procedural".
    """

    root: Path
    size: tuple[int, int]
    num_frames: int
    fps: float
    num_frequencies: int
    shards: tuple[tuple[Path, int], ...]
    normalizer: SpectralNormalizer | None
    complete: bool
    kind: str

    @property
    def num_samples(self) -> int:
        return sum(count for _, count in self.shards)


def open_dataset(root: str | os.PathLike[str]) -> DatasetInfo:
    """Read a dataset directory's manifest (and normalisation statistics, when present)."""
    root = Path(root)
    manifest = read_manifest(root)
    config = manifest["config"]
    stats = root / NORMALIZATION_NAME
    return DatasetInfo(
        root=root,
        size=(int(config["size"][0]), int(config["size"][1])),
        num_frames=int(config["num_frames"]),
        fps=float(config["fps"]),
        num_frequencies=int(config["num_frequencies"]),
        shards=tuple((root / shard["name"], int(shard["num_samples"])) for shard in manifest["shards"]),
        normalizer=SpectralNormalizer.load(stats) if stats.is_file() else None,
        complete=bool(manifest.get("complete")),
        kind=str(config["kind"]),
    )


def iter_dataset(info: DatasetInfo) -> Iterator[Sample]:
    """Every sample of a dataset, in shard order, decoded."""
    for path, _ in info.shards:
        for key, files in iter_shard(path):
            yield decode_sample(key, files)


def fit_normalizer(
    spectra: Iterable[torch.Tensor],
    num_samples: int,
    percentile: float = DEFAULT_PERCENTILE,
    max_values_per_frequency: int = 2_000_000,
    seed: int = 0,
) -> SpectralNormalizer:
    """SpectralNormalizer over a stream of num_samples (K, 4, H, W) spectra, in bounded memory.

    Every spectrum contributes the same number of randomly chosen pixels (all of them when the data set is
    small enough), so the values fitted are a uniform sample of the data set, about max_values_per_frequency
    per frequency; with every pixel kept the result equals SpectralNormalizer.fit on the spectra themselves.
    """
    generator = torch.Generator().manual_seed(seed)
    # The kept values go into one buffer allocated at the first sample, not one small tensor per sample: small
    # allocations between the samples' large decode buffers pin glibc's heap, which then grew by a whole sample
    # (5 MB) per sample read, 17 GB for 3,000 samples.
    values: torch.Tensor | None = None
    filled = 0
    for spectrum in spectra:
        flat = spectrum.float().flatten(-2)  # (K, 4, H * W)
        per_sample = min(flat.shape[-1], max(1, max_values_per_frequency // (4 * max(num_samples, 1))))
        if per_sample < flat.shape[-1]:
            flat = flat[..., torch.randperm(flat.shape[-1], generator=generator)[:per_sample]]
        if values is None:
            values = torch.empty(*flat.shape[:-1], per_sample * max(num_samples, 1))
        if filled + flat.shape[-1] > values.shape[-1]:
            raise GIDInputError(f"the data set has more samples than the {num_samples} announced")
        values[..., filled : filled + flat.shape[-1]] = flat
        filled += flat.shape[-1]
    if values is None:
        raise GIDInputError("cannot fit normalisation statistics: the data set has no samples")
    values = values[..., :filled].unsqueeze(-2)  # (K, 4, 1, N): a spectral volume one pixel high
    return SpectralNormalizer.fit(
        [values], percentile, max_values_per_frequency=max(max_values_per_frequency, values[0].numel())
    )


def compute_normalization(
    root: str | os.PathLike[str], percentile: float = DEFAULT_PERCENTILE, max_samples: int = 4096, seed: int = 0
) -> SpectralNormalizer:
    """Fit the normaliser over a dataset and save it as normalization.json.

    Uses every sample, or max_samples of them drawn at random (seeded) from larger datasets: a percentile of
    ~2M values per frequency from thousands of scenes is already stable to well under 1 %, and reading only those
    samples (located from the tar headers) keeps the cost bounded however large the dataset grows.
    """
    info = open_dataset(root)
    located = [(path, members) for path, _ in info.shards for _, members in index_shard(path)]
    if len(located) > max_samples:
        chosen = np.sort(np.random.default_rng(seed).choice(len(located), max_samples, replace=False))
        located = [located[i] for i in chosen]
    spectra = (decode_spectrum(read_members(path, {SPECTRUM_EXT: members[SPECTRUM_EXT]})) for path, members in located)
    normalizer = fit_normalizer(spectra, len(located), percentile, seed=seed)
    write_json_atomic(Path(root) / NORMALIZATION_NAME, normalizer.to_dict())
    return normalizer
