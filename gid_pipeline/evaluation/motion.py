"""How good is predicted motion? Spectral volumes predicted from still frames against ground truth, with baselines.

Cases are a still image and its true spectral volume on the evaluation grid: held-out samples of a prepared dataset
(``gid prepare-data`` output: exact procedural motion, or optical flow of real windows) or windows of real clips
measured here with ``clip_motion``. A predictor ``predict(image (3, H, W) in [0, 1], generator) -> SpectralVolume``
runs once per case and seed; its volume is resized to the case's grid (displacements scaled). Two baselines are
scored in the same run: ``no_motion`` (all zero) and ``mean_spectrum`` (one mean per-frequency magnitude profile at
every pixel). Metrics are those of evaluation.metrics: AUROC of the predicted amplitude against the true moving
mask ("where it moves"), the error of the per-frequency log amplitude density profile over that mask and the
amplitude calibration ("how it moves"). Volumes with different time bases (a 38-frame clip at 15 fps against a
prediction of 150 frames at 30 fps) are compared in Hz: profiles on their common frequency range, amplitudes over
their common band.
"""

from __future__ import annotations

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

from ..clip_motion import clip_motion
from ..data.builder import centre_crop, cover_size
from ..data.shards import SPECTRUM_EXT, decode_sample, decode_spectrum, index_shard, open_dataset, read_members
from ..errors import GIDInputError
from ..rendering import fit_spectrum_to_image
from ..spectral import amplitude
from ..spectral_volume import SpectralVolume
from ..video import probe_video, read_video
from .metrics import (
    MOVING_MIN_PX,
    MOVING_PERCENTILE,
    MOVING_RELATIVE,
    PROFILE_FLOOR,
    amplitude_calibration,
    amplitude_density_profile,
    auroc,
    mean_std,
    motion_amplitude,
    moving_mask,
    moving_threshold,
    profile_error,
)

Predictor = Callable[[torch.Tensor, torch.Generator], SpectralVolume]

DEFAULT_SIZE = (256, 160)  # (width, height): the model's resolution
DEFAULT_START_FRAMES = (0, 8, 16)
# Ground truth of a clip keeps the bins up to the model's top frequency (K = 16 at 150 frames / 30 fps: 3 Hz).
DEFAULT_MAX_FREQUENCY_HZ = 3.0
DEFAULT_REFERENCE_SAMPLES = 256
NO_MOTION, MEAN_SPECTRUM = "no_motion", "mean_spectrum"
BASELINES = (NO_MOTION, MEAN_SPECTRUM)
METRICS = ("auroc", "profile_error", "calibration")


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
    """

    name: str
    source: str
    kind: str
    image: torch.Tensor
    volume: SpectralVolume
    meta: dict[str, Any] = field(default_factory=dict)


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
class MotionEvaluation:
    """report: the JSON-serialisable results (report.write_motion_report); rows: figure data for a few cases."""

    report: dict[str, Any]
    rows: list[MotionFigureRow]


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


def clip_num_frequencies(window: int, fps: float, max_frequency_hz: float) -> int:
    """Bins of a window of ``window`` frames at ``fps`` up to max_frequency_hz (DC included), at most window//2+1."""
    return min(window // 2 + 1, math.floor(max_frequency_hz * window / fps + 1e-9) + 1)


@dataclass(frozen=True)
class ClipPlan:
    """A clip checked before any flow is computed: its path, usable frames, frame rate and native size."""

    path: Path
    num_frames: int
    fps: float
    size: tuple[int, int]


def plan_clips(
    paths: Sequence[str | Path],
    start_frames: Sequence[int] = DEFAULT_START_FRAMES,
    clip_frames: int | None = None,
    max_frequency_hz: float = DEFAULT_MAX_FREQUENCY_HZ,
) -> list[ClipPlan]:
    """Probe clips and check that every start frame leaves a window that resolves at least one frequency.

    Args:
        paths: video files.
        start_frames: window starts, frames at the clip's own rate.
        clip_frames: use only the first clip_frames frames of each clip (e.g. 54 for tests/data/tree.avi, where a
            hand enters at frame 54); None uses all.
        max_frequency_hz: highest frequency of the ground truth.

    Raises:
        GIDInputError: no paths, no or negative start frames, unreadable clips, too few frames.
    """
    if not paths:
        raise GIDInputError("no clips to evaluate")
    if not start_frames or min(start_frames) < 0:
        raise GIDInputError(f"start frames must be a non-empty list of frames >= 0, got {list(start_frames)}")
    plans = []
    for path in paths:
        info = probe_video(path)
        usable = info.num_frames if clip_frames is None else clip_frames
        if clip_frames is not None and info.num_frames_exact and info.num_frames < clip_frames:
            raise GIDInputError(f"{path} has {info.num_frames} frames, fewer than the {clip_frames} asked for")
        window = usable - max(start_frames)
        num_frequencies = clip_num_frequencies(max(window, 0), info.fps, max_frequency_hz)
        if window < 2 or num_frequencies < 2:
            need = math.ceil(info.fps / max_frequency_hz)
            raise GIDInputError(
                f"{path}: {usable} usable frames at {info.fps:g} fps leave a {window}-frame window after start frame "
                f"{max(start_frames)}; resolving motion up to {max_frequency_hz:g} Hz needs at least {need} frames"
            )
        plans.append(ClipPlan(Path(path), usable, info.fps, (info.width, info.height)))
    return plans


def clip_cases(
    plans: Sequence[ClipPlan],
    start_frames: Sequence[int] = DEFAULT_START_FRAMES,
    size: tuple[int, int] = DEFAULT_SIZE,
    max_frequency_hz: float = DEFAULT_MAX_FREQUENCY_HZ,
    method: str = "dis",
    stabilize: str = "none",
    progress: bool = False,
) -> list[MotionCase]:
    """Windows of real clips with ground truth from clip_motion (optical flow from the window's first frame).

    Each clip is centre-cropped to the aspect ratio of ``size`` and resized to it (as ``gid prepare-data`` does).
    All windows of a clip have the same length, usable frames - max(start_frames), at the clip's own frame rate;
    their ground truth keeps the bins up to max_frequency_hz (e.g. 38 frames at 15 fps: 8 bins, 0.39 Hz apart, up
    to 2.76 Hz). stabilize defaults to "none", as for the training data (data.builder.VideoConfig).

    Args:
        plans: from plan_clips. size: (width, height) of the evaluation grid.
    """
    cases = []
    total = len(plans) * len(start_frames)
    with tqdm(total=total, desc="ground truth (optical flow)", unit="window", disable=not progress) as bar:
        for plan in plans:
            clip = read_video(plan.path, num_frames=plan.num_frames, size=cover_size(plan.size, size),
                              max_frames=plan.num_frames)  # fmt: skip
            frames = centre_crop(clip.frames, size)
            window = plan.num_frames - max(start_frames)
            num_frequencies = clip_num_frequencies(window, clip.fps, max_frequency_hz)
            for start in start_frames:
                try:
                    motion = clip_motion(frames[start : start + window], clip.fps, num_frequencies, method=method,
                                         stabilize=stabilize)  # fmt: skip
                except GIDInputError as error:
                    raise GIDInputError(f"{plan.path} from frame {start}: {error}") from error
                image = torch.from_numpy(motion.image).permute(2, 0, 1).float().div(255.0)
                meta = {"start_frame": start, "window_frames": window, "clip_fps": clip.fps,
                        "source_size": list(plan.size), "flow": method, "stabilize": stabilize}  # fmt: skip
                cases.append(MotionCase(f"{plan.path.name}@{start}", str(plan.path), "clip", image, motion.volume,
                                        meta))  # fmt: skip
                bar.update()
    return cases


# ------------------------------------------------------------------------------------------------ baselines


def mean_magnitudes(volume: SpectralVolume) -> torch.Tensor:
    """(K,) float64 mean |S_k| in pixels over the volume's own moving mask (metrics.moving_mask); [0] = 0."""
    magnitude = amplitude(volume.spectrum)
    mask = moving_mask(motion_amplitude(volume.spectrum))
    if not bool(mask.any()):
        return torch.zeros(volume.num_frequencies, dtype=torch.float64)
    means = magnitude[:, mask].double().mean(dim=1)
    means[0] = 0.0
    return means


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
        volume = case.volume
        profiles.append(MeanSpectrum(mean_magnitudes(volume), volume.num_frames, volume.fps, volume.size, ""))
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
    mask: torch.Tensor
    threshold: float
    frequencies: np.ndarray
    profile: np.ndarray


def _truth(volume: SpectralVolume) -> _Truth:
    true_amplitude = motion_amplitude(volume.spectrum)
    threshold = moving_threshold(true_amplitude)
    mask = true_amplitude > threshold
    frequencies, profile = (
        amplitude_density_profile(volume.spectrum, mask, volume.num_frames, volume.fps) if mask.any() else (None, None)
    )
    return _Truth(true_amplitude, mask, threshold, frequencies, profile)


def _score(
    volume: SpectralVolume, case: MotionCase, truth: _Truth
) -> tuple[dict[str, float | None], torch.Tensor, tuple[np.ndarray, np.ndarray]]:
    """Metrics of one predicted volume (already on the case's grid), its (H, W) amplitude over the common band in
    pixels and its profile over the true moving mask."""
    band = min(float(volume.frequencies_hz[-1]), float(case.volume.frequencies_hz[-1]))
    predicted = motion_amplitude(volume.spectrum, volume.frequencies_hz, band)
    true_band = motion_amplitude(case.volume.spectrum, case.volume.frequencies_hz, band)
    both_classes = bool(truth.mask.any()) and not bool(truth.mask.all())
    frequencies, profile = amplitude_density_profile(volume.spectrum, truth.mask, volume.num_frames, volume.fps)
    metrics = {
        "auroc": auroc(predicted, truth.mask) if both_classes else None,
        "profile_error": profile_error(frequencies, profile, truth.frequencies, truth.profile),
        "calibration": amplitude_calibration(predicted, true_band, truth.mask),
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
        cases: the evaluation set (dataset_cases, clip_cases).
        predict: ``predict(image (3, H, W) float in [0, 1], generator) -> SpectralVolume``, called once per case and
            seed with ``torch.Generator().manual_seed(seed)``; None scores the baselines only.
        seeds: seeds per case.
        method: the predictor's name in the report.
        reference: the mean_spectrum baseline's profile (reference_mean_spectrum of the training set); None averages
            the ground truth of the evaluated cases, leaving out each case's own source.
        figure_cases, figure_seeds: cases and seeds kept for the figure.

    Returns:
        A MotionEvaluation: ``report`` has per case, per seed metrics and, per method, mean and std over all
        (case, seed) pairs; baselines are deterministic, one entry per case.
    """
    if not cases:
        raise GIDInputError("no cases to evaluate")
    if predict is not None and (not seeds or method in BASELINES):
        raise GIDInputError(f"need at least one seed and a method name other than {BASELINES}")
    means = [reference] * len(cases) if reference is not None else _leave_one_source_out(cases)
    methods = ([method] if predict is not None else []) + list(BASELINES)

    case_reports, rows, skipped = [], [], []
    time_bases: dict[str, set] = {"truth": set(), "scored": set()}
    for index, case in enumerate(tqdm(cases, desc="motion evaluation", unit="case", disable=not progress)):
        truth = _truth(case.volume)
        height, width = case.volume.size
        if truth.profile is None:
            skipped.append({"name": case.name, "reason": f"no pixel moves more than {truth.threshold:.3g} px"})
            continue
        time_bases["truth"].add((case.volume.num_frames, case.volume.fps, case.volume.num_frequencies))
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in methods}
        amplitudes: dict[str, torch.Tensor] = {}
        profiles = {"true": (truth.frequencies, truth.profile)}
        keep = len(rows) < figure_cases
        if predict is not None:
            for seed_index, seed in enumerate(seeds):
                volume = _on_grid(predict(case.image, torch.Generator().manual_seed(int(seed))), case)
                time_bases["scored"].add((volume.num_frames, volume.fps, volume.num_frequencies))
                metrics, predicted, profile = _score(volume, case, truth)
                results[method].append({"seed": int(seed), **metrics})
                if keep and seed_index < figure_seeds:
                    amplitudes[f"{method} seed {seed}"], profiles[f"{method} seed {seed}"] = predicted, profile
        baselines = {
            NO_MOTION: SpectralVolume(torch.zeros_like(case.volume.spectrum), case.volume.num_frames, case.volume.fps),
            MEAN_SPECTRUM: means[index].volume(height, width),
        }
        for name, volume in baselines.items():
            metrics, predicted, profile = _score(volume, case, truth)
            results[name].append(metrics)
            if name == MEAN_SPECTRUM:
                time_bases["scored"].add((volume.num_frames, volume.fps, volume.num_frequencies))
                if keep:
                    amplitudes[name], profiles[name] = predicted, profile
        if keep:
            rows.append(MotionFigureRow(case.name, case.image, truth.amplitude, truth.mask, amplitudes, profiles))
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
            "moving_threshold_px": truth.threshold,
            "moving_fraction": float(truth.mask.float().mean()),
            "median_true_amplitude_px": float(truth.amplitude[truth.mask].median()),
            **({"meta": case.meta} if case.meta else {}),
            "results": results,
        })  # fmt: skip
    if not case_reports:
        raise GIDInputError(f"no case has moving pixels ({len(skipped)} skipped)")
    return MotionEvaluation(_motion_report(case_reports, skipped, methods, method, predict is not None, seeds,
                                           means, time_bases), rows)  # fmt: skip


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
        "definitions": {
            "amplitude": "RMS displacement over one period, sqrt(2 sum_{k>=1} |S_k|^2), pixels of the evaluation "
                         "grid; predicted and true amplitudes over the frequency band both volumes cover",
            "moving_mask": f"true amplitude > max({MOVING_MIN_PX} px, {MOVING_RELATIVE} x its "
                           f"{MOVING_PERCENTILE:g}th percentile)",
            "auroc": "AUROC of the predicted amplitude against the true moving mask (0.5 = chance, 1 = perfect)",
            "profile_error": "mean |log10 D_pred - log10 D_true| over the common frequency range (log10 units; 0.3 "
                             "= a factor of 2), D_k = sqrt(2 mean_mask |S_k|^2 / spacing) in px/sqrt(Hz), floored "
                             f"at {PROFILE_FLOOR:g} (so no_motion's value is set by that floor)",
            "calibration": "median predicted / median true amplitude in the true moving mask (1 = ideal, 0 = still)",
        },
        "baselines": {
            NO_MOTION: "all-zero spectral volume",
            MEAN_SPECTRUM: means[0].description,
        },
        "summary": _summary(case_reports, methods),
        "cases": case_reports,
        "skipped": skipped,
        "notes": [],
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
            f"baseline {describe(time_bases['scored'])}. Profiles are compared in Hz (densities interpolated onto the "
            "coarser bins of the common range) and amplitudes over the common band"
        )
    return report
