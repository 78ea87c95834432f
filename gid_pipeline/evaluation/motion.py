"""How good is predicted motion? Spectral volumes predicted from still frames against ground truth, with baselines.

Cases are a still image and its true spectral volume on the evaluation grid: held-out samples of a prepared dataset
(``gid prepare-data`` output: exact procedural motion, or optical flow of real windows) or windows of real clips
measured by evaluation.clips. A predictor ``predict(image (3, H, W) in [0, 1], generator) -> SpectralVolume``
runs once per case and seed; its volume is resized to the case's grid (displacements scaled). Three baselines are
scored in the same run: ``no_motion`` (all zero), ``mean_spectrum`` (one mean per-frequency magnitude profile at
every pixel) and ``texture`` (that profile times the blurred |Laplacian| of the still, texture_map: local image
texture places motion with no learning at all).

Metrics (evaluation.metrics; masks of evaluation.masks): "where it moves": AUROC of the predicted amplitude against
the moving vs still pixels (uncertain and ignored ones left out) and Spearman's rank correlation of predicted and
true amplitude maps over all pixels not ignored; "how it moves", over the moving pixels: the band-profile error
(mean |log10| ratio of band RMS motion), the per-bin log amplitude density profile error and the amplitude
calibration. Volumes with different time bases (a 46-frame clip at 15 fps against a prediction of 150 frames at
30 fps) are compared in Hz: bands and profiles on their common frequencies, amplitudes over their common band.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.shards import SPECTRUM_EXT, decode_sample, decode_spectrum, index_shard, open_dataset, read_members
from ..errors import GIDInputError
from ..rendering.loop import fit_spectrum_to_image
from ..spectral.transform import amplitude
from ..spectral.volume import SpectralVolume
from .masks import (
    GREY_BLUR_PX,
    LUMA,
    MOVING_GREY_STD,
    NOISE_FACTOR,
    STILL_FRACTION,
    STILL_GREY_STD,
    TEXTURE_MIN,
    TEXTURE_WINDOW_PX,
    MotionMasks,
    amplitude_masks,
    gaussian_blur,
)
from .metrics import (
    BAND_EDGES_HZ,
    BAND_FLOOR_PX,
    MOVING_MIN_PX,
    MOVING_PERCENTILE,
    MOVING_RELATIVE,
    PROFILE_FLOOR,
    amplitude_calibration,
    amplitude_density_profile,
    auroc,
    band_error,
    band_rms,
    mean_std,
    motion_amplitude,
    profile_error,
    spearman,
)

Predictor = Callable[[torch.Tensor, torch.Generator], SpectralVolume]

DEFAULT_SIZE = (256, 160)  # (width, height): the model's resolution
# Ground truth of a clip keeps the bins up to the model's top frequency (K = 16 at 150 frames / 30 fps: 3 Hz).
DEFAULT_MAX_FREQUENCY_HZ = 3.0
DEFAULT_REFERENCE_SAMPLES = 256
NO_MOTION, MEAN_SPECTRUM, TEXTURE = "no_motion", "mean_spectrum", "texture"
BASELINES = (NO_MOTION, MEAN_SPECTRUM, TEXTURE)
METRICS = ("auroc", "spearman", "calibration", "band_error", "profile_error")
# The texture baseline's |Laplacian| is blurred with this Gaussian sigma, pixels of the evaluation grid.
TEXTURE_BLUR_PX = 3.0


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


@dataclass(frozen=True)
class MotionFigureRow:
    """What the figure shows for one case: (H, W) amplitude maps in pixels and log10 density profiles."""

    name: str
    image: torch.Tensor
    true_amplitude: torch.Tensor
    mask: torch.Tensor
    predicted: dict[str, torch.Tensor]
    profiles: dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ClipFigureRow:
    """What a clip's own figure shows for one of its windows: (H, W) maps, amplitudes in pixels.

    predicted: the predictor's amplitude for the first seed (None with baselines only); texture: the texture
    baseline's amplitude.
    """

    name: str
    source: str
    image: torch.Tensor
    true_amplitude: torch.Tensor
    masks: MotionMasks
    predicted: torch.Tensor | None
    texture: torch.Tensor


@dataclass(frozen=True)
class MotionEvaluation:
    """report: the JSON-serialisable results (report.write_evaluation); rows: summary-figure data for a few cases;
    clip_rows: per-clip figure data, one row per window of every real clip."""

    report: dict[str, Any]
    rows: list[MotionFigureRow]
    clip_rows: list[ClipFigureRow] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------ cases


def _resize_image(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
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
        return MotionCase(sample.key, source, kind, _resize_image(image, height, width), volume, meta)


def dataset_cases(
    root: str | Path, max_cases: int | None = None, size: tuple[int, int] | None = None
) -> DatasetCases:
    """The first max_cases samples of a prepared dataset as a lazily decoded sequence of cases (DatasetCases)."""
    return DatasetCases(root, max_cases, size)


# ------------------------------------------------------------------------------------------------ baselines


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


def _leave_one_source_out(cases: Sequence[MotionCase]) -> list[MeanSpectrum]:
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


# ------------------------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class _Truth:
    amplitude: torch.Tensor
    masks: MotionMasks
    frequencies: np.ndarray
    profile: np.ndarray
    bands: np.ndarray


def _truth(volume: SpectralVolume, true_amplitude: torch.Tensor, masks: MotionMasks) -> _Truth:
    """The true density profile and band RMS over a non-empty moving mask."""
    frequencies, profile = amplitude_density_profile(volume.spectrum, masks.moving, volume.num_frames, volume.fps)
    bands = band_rms(volume.spectrum, masks.moving, volume.frequencies_hz)
    return _Truth(true_amplitude, masks, frequencies, profile, bands)


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _score(
    volume: SpectralVolume, case: MotionCase, truth: _Truth
) -> tuple[dict[str, float | None], torch.Tensor, tuple[np.ndarray, np.ndarray]]:
    """Metrics of one predicted volume (already on the case's grid), its (H, W) amplitude over the common band in
    pixels and its profile over the true moving mask."""
    band = min(float(volume.frequencies_hz[-1]), float(case.volume.frequencies_hz[-1]))
    predicted = motion_amplitude(volume.spectrum, volume.frequencies_hz, band)
    true_band = motion_amplitude(case.volume.spectrum, case.volume.frequencies_hz, band)
    masks = truth.masks
    judged = masks.moving | masks.still
    both_classes = bool(masks.still.any())  # moving is non-empty (_truth)
    frequencies, profile = amplitude_density_profile(volume.spectrum, masks.moving, volume.num_frames, volume.fps)
    bands = band_rms(volume.spectrum, masks.moving, volume.frequencies_hz)
    metrics = {
        "auroc": auroc(predicted[judged], masks.moving[judged]) if both_classes else None,
        "spearman": _finite_or_none(spearman(predicted, true_band, masks.scored)),
        "calibration": amplitude_calibration(predicted, true_band, masks.moving),
        "band_error": _finite_or_none(band_error(bands, truth.bands)),
        "profile_error": profile_error(frequencies, profile, truth.frequencies, truth.profile),
    }
    return metrics, predicted, (frequencies, profile)


def _on_grid(volume: SpectralVolume, case: MotionCase) -> SpectralVolume:
    if not isinstance(volume, SpectralVolume):
        raise GIDInputError(f"the predictor returned {type(volume).__name__}, expected a SpectralVolume")
    height, width = case.volume.size
    return volume if volume.size == (height, width) else volume.resized(height, width)


def evaluate_motion(
    cases: Sequence[MotionCase],
    predict: Predictor | None = None,
    seeds: Sequence[int] = (0, 1, 2),
    *,
    method: str = "gid",
    reference: MeanSpectrum | None = None,
    figure_cases: int = 3,
    figure_seeds: int = 2,
    progress: bool = False,
) -> MotionEvaluation:
    """Score a predictor and the baselines on every case.

    Args:
        cases: the evaluation set (dataset_cases, clips.clip_cases).
        predict: ``predict(image (3, H, W) float in [0, 1], generator) -> SpectralVolume``, called once per case and
            seed with ``torch.Generator().manual_seed(seed)``; None scores the baselines only.
        seeds: seeds per case.
        method: the predictor's name in the report.
        reference: the mean_spectrum baseline's profile (reference_mean_spectrum of the training set); None averages
            the ground truth of the evaluated cases, leaving out each case's own source.
        figure_cases, figure_seeds: cases (of distinct sources) and seeds kept for the summary figure (every real
            clip's windows are kept for its own figure).

    Returns:
        A MotionEvaluation: ``report`` has per case, per seed metrics and, per method, mean and std over all
        (case, seed) pairs; with real clips also per clip (mean over its windows and seeds) and the mean over
        clips. Baselines are deterministic, one entry per case.
    """
    if not cases:
        raise GIDInputError("no cases to evaluate")
    if predict is not None and (not seeds or method in BASELINES):
        raise GIDInputError(f"need at least one seed and a method name other than {BASELINES}")
    means = [reference] * len(cases) if reference is not None else _leave_one_source_out(cases)
    methods = ([method] if predict is not None else []) + list(BASELINES)

    case_reports, rows, clip_rows, skipped = [], [], [], []
    figure_sources: set[str] = set()  # the summary figure shows one case per source (the first window of a clip)
    time_bases: dict[str, set] = {"truth": set(), "scored": set()}
    for index, case in enumerate(tqdm(cases, desc="motion evaluation", unit="case", disable=not progress)):
        true_amplitude = motion_amplitude(case.volume.spectrum)
        masks = case.masks if case.masks is not None else amplitude_masks(true_amplitude)
        if not bool(masks.moving.any()):
            skipped.append({"name": case.name, "reason": f"no moving pixels (amplitude threshold {masks.threshold:.3g} "
                                                         "px)"})  # fmt: skip
            continue
        truth = _truth(case.volume, true_amplitude, masks)
        height, width = case.volume.size
        time_bases["truth"].add((case.volume.num_frames, case.volume.fps, case.volume.num_frequencies))
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in methods}
        amplitudes: dict[str, torch.Tensor] = {}
        profiles = {"true": (truth.frequencies, truth.profile)}
        keep = len(rows) < figure_cases and case.source not in figure_sources
        if keep:
            figure_sources.add(case.source)
        first_prediction = None
        if predict is not None:
            for seed_index, seed in enumerate(seeds):
                volume = _on_grid(predict(case.image, torch.Generator().manual_seed(int(seed))), case)
                time_bases["scored"].add((volume.num_frames, volume.fps, volume.num_frequencies))
                metrics, predicted, profile = _score(volume, case, truth)
                results[method].append({"seed": int(seed), **metrics})
                first_prediction = predicted if seed_index == 0 else first_prediction
                if keep and seed_index < figure_seeds:
                    amplitudes[f"{method} seed {seed}"], profiles[f"{method} seed {seed}"] = predicted, profile
        mean_volume = means[index].volume(height, width)
        baselines = {
            NO_MOTION: SpectralVolume(torch.zeros_like(case.volume.spectrum), case.volume.num_frames, case.volume.fps),
            MEAN_SPECTRUM: mean_volume,
            TEXTURE: texture_volume(case.image, mean_volume),
        }
        for name, volume in baselines.items():
            metrics, predicted, profile = _score(volume, case, truth)
            results[name].append(metrics)
            if name != NO_MOTION:
                time_bases["scored"].add((volume.num_frames, volume.fps, volume.num_frequencies))
                if keep:
                    amplitudes[name], profiles[name] = predicted, profile
            if name == TEXTURE and case.kind == "clip":
                clip_rows.append(ClipFigureRow(case.name, case.source, case.image, truth.amplitude, truth.masks,
                                               first_prediction, predicted))  # fmt: skip
        if keep:
            rows.append(MotionFigureRow(case.name, case.image, truth.amplitude, truth.masks.moving, amplitudes,
                                        profiles))  # fmt: skip
        case_reports.append({
            "name": case.name,
            "source": case.source,
            "kind": case.kind,
            "size": [width, height],
            "num_frames": case.volume.num_frames,
            "fps": case.volume.fps,
            "num_frequencies": case.volume.num_frequencies,
            "frequency_spacing_hz": case.volume.fps / case.volume.num_frames,
            "top_frequency_hz": float(case.volume.frequencies_hz[-1]),
            "moving_threshold_px": masks.threshold,
            "noise_floor_px": masks.noise_floor,
            "moving_fraction": float(masks.moving.float().mean()),
            "still_fraction": float(masks.still.float().mean()),
            "ignored_fraction": float(masks.ignore.float().mean()),
            "median_true_amplitude_px": float(truth.amplitude[masks.moving].median()),
            "true_band_rms_px": [_finite_or_none(float(value)) for value in truth.bands],
            **({"meta": case.meta} if case.meta else {}),
            "results": results,
        })  # fmt: skip
    if not case_reports:
        raise GIDInputError(f"no case has moving pixels ({len(skipped)} skipped)")
    return MotionEvaluation(_motion_report(case_reports, skipped, methods, method, predict is not None, seeds,
                                           means, time_bases), rows, clip_rows)  # fmt: skip


def _summary(case_reports: list[dict[str, Any]], methods: list[str]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            metric: mean_std(
                [entry[metric] for case in case_reports for entry in case["results"][name] if entry[metric] is not None]
            )
            for metric in METRICS
        }
        for name in methods
    }


def _clip_summaries(case_reports: list[dict[str, Any]], methods: list[str]) -> dict[str, dict[str, Any]]:
    """Per real clip (source of "clip" cases), in order of appearance: its windows and, per method and metric, the
    mean over its windows and seeds (None where no window defines the metric)."""
    clips: dict[str, dict[str, Any]] = {}
    for case in case_reports:
        if case["kind"] == "clip":
            clips.setdefault(case["source"], {"name": Path(case["source"]).name, "windows": []})["windows"].append(case)
    return {
        source: {
            "name": clip["name"],
            "windows": [case["name"] for case in clip["windows"]],
            "results": {name: {metric: stats["mean"] for metric, stats in summary.items()}
                        for name, summary in _summary(clip["windows"], methods).items()},
        }
        for source, clip in clips.items()
    }  # fmt: skip


def _definitions() -> dict[str, str]:
    bands = ", ".join(f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(BAND_EDGES_HZ))
    return {
        "amplitude": "RMS displacement over one period, sqrt(2 sum_{k>=1} |S_k|^2), pixels of the evaluation "
                     "grid; predicted and true amplitudes over the frequency band both volumes cover",
        "moving_mask": f"prepared datasets: true amplitude A > max({MOVING_MIN_PX} px, {MOVING_RELATIVE} x its "
                       f"{MOVING_PERCENTILE:g}th percentile), still = the rest. Real clips (evaluation.masks): "
                       f"moving where A > T = max({MOVING_MIN_PX} px, {MOVING_RELATIVE} x its {MOVING_PERCENTILE:g}th "
                       f"percentile, {NOISE_FACTOR:g} x N), G > {MOVING_GREY_STD:g} grey levels and tau >= "
                       f"{TEXTURE_MIN:g}; still where "
                       f"G < {STILL_GREY_STD:g} and (A < {STILL_FRACTION:g} T or tau < {TEXTURE_MIN:g}); the "
                       "rest uncertain. G: temporal std of the window's grey levels (0-255) blurred with sigma "
                       f"{GREY_BLUR_PX:g} px; tau: RMS grey gradient of the first frame over a Gaussian window of "
                       f"sigma {TEXTURE_WINDOW_PX:g} px (levels/px); N: median of the in-band amplitude of the "
                       "flow's frame-to-frame jitter. Ignored boxes are in no mask; percentile and median are over "
                       "the other pixels",
        "auroc": "AUROC of the predicted amplitude, moving against still pixels (uncertain and ignored left out; "
                 "0.5 = chance, 1 = perfect)",
        "spearman": "Spearman rank correlation (average ranks for ties) of predicted and true amplitude over all "
                    "pixels not ignored; undefined (n/a) for a prediction constant over the image",
        "calibration": "median predicted / median true amplitude over the moving pixels (1 = ideal, 0 = still)",
        "band_error": f"mean over the frequency bands {bands} Hz (a bin in the band holding its frequency) that both "
                      "volumes resolve of |log10(R_pred / R_true)|, R_b = sqrt(mean over moving pixels of 2 sum_(k "
                      f"in b) |S_k|^2) in px, floored at {BAND_FLOOR_PX:g} px (log10 units; 0.3 = a factor of 2)",
        "profile_error": "mean |log10 D_pred - log10 D_true| over the common frequency range (log10 units; 0.3 "
                         "= a factor of 2), D_k = sqrt(2 mean_moving |S_k|^2 / spacing) in px/sqrt(Hz), floored "
                         f"at {PROFILE_FLOOR:g} (so no_motion's value is set by that floor)",
        "clip_value": "a clip's value is the mean over its windows and seeds; summary_over_clips is the mean "
                      "(and std) over clips, summary the mean over all (case, seed) pairs",
    }  # fmt: skip


def _motion_report(
    case_reports: list[dict[str, Any]],
    skipped: list[dict[str, Any]],
    methods: list[str],
    method: str,
    has_predictor: bool,
    seeds: Sequence[int],
    means: Sequence[MeanSpectrum],
    time_bases: dict[str, set],
) -> dict[str, Any]:
    kinds = sorted({case["kind"] for case in case_reports})
    report: dict[str, Any] = {
        "kind": "motion",
        "methods": methods,
        "seeds": [int(s) for s in seeds] if has_predictor else [],
        "sizes": sorted({tuple(case["size"]) for case in case_reports}),
        "num_cases": len(case_reports),
        "definitions": _definitions(),
        "baselines": {
            NO_MOTION: "all-zero spectral volume",
            MEAN_SPECTRUM: means[0].description,
            TEXTURE: f"the mean_spectrum volume with each pixel scaled by the |Laplacian| of the grey still blurred "
                     f"with sigma {TEXTURE_BLUR_PX:g} px, relative to its mean over the image",
        },
        "summary": _summary(case_reports, methods),
        "cases": case_reports,
        "skipped": skipped,
        "notes": [],
    }  # fmt: skip
    clips = _clip_summaries(case_reports, methods)
    if clips:
        report["clips"] = clips
        report["summary_over_clips"] = {
            name: {metric: mean_std([clip["results"][name][metric] for clip in clips.values()
                                     if clip["results"][name][metric] is not None]) for metric in METRICS}
            for name in methods
        }  # fmt: skip
    if len(kinds) > 1:
        report["summary_by_kind"] = {
            kind: _summary([c for c in case_reports if c["kind"] == kind], methods) for kind in kinds
        }
    if has_predictor and len(seeds) > 1:
        report["seed_spread"] = {
            metric: mean_std([
                np.std([e[metric] for e in case["results"][method]], ddof=1)
                for case in case_reports
                if all(e[metric] is not None for e in case["results"][method])
            ])
            for metric in METRICS
        }  # fmt: skip
        report["notes"].append("seed_spread: per case the std of a metric across seeds, averaged over cases")
    if time_bases["scored"] != time_bases["truth"]:
        def describe(bases: set) -> str:
            return ", ".join(f"{t} frames at {fps:g} fps ({fps / t:.3g} Hz bins up to {(k - 1) * fps / t:.3g} Hz)"
                             for t, fps, k in sorted(bases))  # fmt: skip

        report["notes"].append(
            f"time bases differ: ground truth {describe(time_bases['truth'])}; predictions and the mean_spectrum "
            f"baseline {describe(time_bases['scored'])}. Bands and profiles are compared in Hz (profiles "
            "interpolated onto the coarser bins of the common range) and amplitudes over the common band"
        )
    return report
