"""The baselines scored beside every predictor: no motion, one mean spectrum everywhere (from a reference dataset,
or the other sources' ground truth), and local image texture (the blurred |Laplacian| of the still as where things
move, with the mean spectrum's shape)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..data.shards import SPECTRUM_EXT, decode_spectrum, index_shard, open_dataset, read_members
from ..errors import GIDInputError
from ..spectral.transform import amplitude
from ..spectral.volume import SpectralVolume
from .cases import MotionCase
from .masks import (
    LUMA,
    amplitude_masks,
    gaussian_blur,
)
from .metrics import (
    motion_amplitude,
)

DEFAULT_REFERENCE_SAMPLES = 256


# The texture baseline's |Laplacian| is blurred with this Gaussian sigma, pixels of the evaluation grid.
TEXTURE_BLUR_PX = 3.0


@dataclass(frozen=True)
class MeanSpectrum:
    """One per-frequency profile of mean |S_k| in pixels, played at every pixel by the mean_spectrum baseline.

    Attributes:
        magnitudes: (K,) float64 mean |S_k| over moving pixels, pixels of a ``size`` grid; magnitudes[0] = 0.
        num_frames, fps: the time base of the bins (spacing fps / num_frames Hz).
        size: (height, width) of the grid the pixels refer to.
        description: where the profile comes from, for the report.
    """

    magnitudes: torch.Tensor
    num_frames: int
    fps: float
    size: tuple[int, int]
    description: str

    def volume(self, height: int, width: int) -> SpectralVolume:
        """The baseline's (K, 4, height, width) volume: |S_k| = magnitudes[k] everywhere, scaled to that grid.

        x and y move alike (real parts m / sqrt(2), zero phase); only |S_k| enters the metrics.
        """
        scale = math.sqrt(height / self.size[0] * width / self.size[1]) / math.sqrt(2.0)
        spectrum = torch.zeros(len(self.magnitudes), 4, height, width)
        spectrum[:, 0:2] = (self.magnitudes * scale).float().view(-1, 1, 1, 1)
        return SpectralVolume(spectrum, self.num_frames, self.fps)

    def resampled(self, num_frames: int, fps: float, num_frequencies: int) -> MeanSpectrum:
        """The profile on another time base: the density m_k / sqrt(spacing) is interpolated linearly in Hz (held
        constant beyond the covered range) and multiplied by the new sqrt(spacing)."""
        spacing, new_spacing = self.fps / self.num_frames, fps / num_frames
        source = np.arange(1, len(self.magnitudes)) * spacing
        target = np.arange(1, num_frequencies) * new_spacing
        density = self.magnitudes[1:].numpy() / math.sqrt(spacing)
        values = np.concatenate([[0.0], np.interp(target, source, density) * math.sqrt(new_spacing)])
        return MeanSpectrum(torch.from_numpy(values), num_frames, fps, self.size, self.description)


def mean_magnitudes(volume: SpectralVolume, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(K,) float64 mean |S_k| in pixels over a moving mask, by default the volume's own (metrics.moving_mask);
    [0] = 0."""
    magnitude = amplitude(volume.spectrum)
    mask = amplitude_masks(motion_amplitude(volume.spectrum)).moving if mask is None else mask
    if not bool(mask.any()):
        return torch.zeros(volume.num_frequencies, dtype=torch.float64)
    means = magnitude[:, mask].double().mean(dim=1)
    means[0] = 0.0
    return means


def texture_map(image: torch.Tensor) -> torch.Tensor:
    """Local image texture: (H, W) float32 |Laplacian| of the grey image (Rec. 601 luma of a (3, H, W) image in
    [0, 1]; 4-neighbour stencil, edges replicated), Gaussian-blurred with sigma TEXTURE_BLUR_PX pixels."""
    grey = (image.float() * torch.tensor(LUMA).view(3, 1, 1)).sum(dim=0)[None, None]
    padded = F.pad(grey, (1, 1, 1, 1), mode="replicate")
    laplacian = (padded[..., :-2, 1:-1] + padded[..., 2:, 1:-1] + padded[..., 1:-1, :-2] + padded[..., 1:-1, 2:]
                 - 4.0 * grey)  # fmt: skip
    return gaussian_blur(laplacian.abs(), TEXTURE_BLUR_PX)[0, 0]


def texture_volume(image: torch.Tensor, mean: SpectralVolume) -> SpectralVolume:
    """The texture baseline: the mean_spectrum baseline's volume (K, 4, H, W) with every pixel scaled by its
    texture_map relative to the image's mean texture, so its per-frequency shape is the mean spectrum's and its
    amplitude, proportional to the texture, averages to the mean spectrum's over the image (a textureless image
    gives the mean spectrum itself)."""
    texture = texture_map(image)
    mean_texture = float(texture.mean())
    weight = texture / mean_texture if mean_texture > 0 else torch.ones_like(texture)
    return SpectralVolume(mean.spectrum * weight.to(mean.spectrum.dtype), mean.num_frames, mean.fps)


def reference_mean_spectrum(root: str | Path, max_samples: int = DEFAULT_REFERENCE_SAMPLES) -> MeanSpectrum:
    """The mean_spectrum baseline's profile from a reference (training) dataset: each of up to max_samples evenly
    spaced samples contributes its mean |S_k| over its moving pixels, and the samples are averaged."""
    info = open_dataset(root)
    located = [(path, members) for path, _ in info.shards for _, members in index_shard(path)]
    if not located:
        raise GIDInputError(f"reference dataset {root} holds no samples")
    chosen = np.unique(np.linspace(0, len(located) - 1, min(max_samples, len(located))).round().astype(int))
    profiles = []
    for index in chosen:
        path, members = located[index]
        spectrum = decode_spectrum(read_members(path, {SPECTRUM_EXT: members[SPECTRUM_EXT]}))
        profiles.append(mean_magnitudes(SpectralVolume(spectrum, info.num_frames, info.fps)))
    description = (f"mean |S_k| over moving pixels of {len(chosen)} samples of the reference dataset {root} "
                   f"({info.num_frames} frames at {info.fps:g} fps)")  # fmt: skip
    width, height = info.size
    return MeanSpectrum(torch.stack(profiles).mean(dim=0), info.num_frames, info.fps, (height, width), description)


def leave_one_source_out(cases: Sequence[MotionCase]) -> list[MeanSpectrum]:
    """Per case, the mean of the other sources' profiles, resampled in Hz to the case's time base.

    One pass over the cases (each decoded once); the means come from per-time-base totals minus the case's own
    source's sum, so the cost grows linearly with the number of cases.
    """
    profiles, sources = [], []
    for case in cases:
        volume, mask = case.volume, None if case.masks is None else case.masks.moving
        profiles.append(MeanSpectrum(mean_magnitudes(volume, mask), volume.num_frames, volume.fps, volume.size, ""))
        sources.append(case.source)
    if len(set(sources)) < 2:
        raise GIDInputError(
            "the mean_spectrum baseline without a reference dataset averages the other sources' ground truth, but "
            f"every case comes from {sources[0]}; pass a reference dataset (gid evaluate --reference DIR)"
        )
    counts = Counter(sources)
    totals: dict[tuple[int, float, int], tuple[torch.Tensor, dict[str, torch.Tensor]]] = {}
    for base in {(p.num_frames, p.fps, len(p.magnitudes)) for p in profiles}:
        on_base = torch.stack([p.resampled(*base).magnitudes for p in profiles])  # (N, K) pixels
        per_source: dict[str, torch.Tensor] = {}
        for source, row in zip(sources, on_base, strict=True):
            per_source[source] = per_source.get(source, 0) + row
        totals[base] = (on_base.sum(dim=0), per_source)
    description = "mean |S_k| over moving pixels of the evaluated ground truth, leaving out the case's source"
    result = []
    for profile, source in zip(profiles, sources, strict=True):
        total, per_source = totals[(profile.num_frames, profile.fps, len(profile.magnitudes))]
        others = (total - per_source[source]) / (len(sources) - counts[source])
        result.append(MeanSpectrum(others, profile.num_frames, profile.fps, profile.size, description))
    return result
