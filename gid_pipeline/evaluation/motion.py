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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import GIDInputError
from ..spectral.volume import SpectralVolume
from .baselines import (
    TEXTURE_BLUR_PX,
    MeanSpectrum,
    leave_one_source_out,
    texture_volume,
)
from .cases import MotionCase
from .masks import (
    GREY_BLUR_PX,
    MOVING_GREY_STD,
    NOISE_FACTOR,
    STILL_FRACTION,
    STILL_GREY_STD,
    TEXTURE_MIN,
    TEXTURE_WINDOW_PX,
    MotionMasks,
    amplitude_masks,
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

NO_MOTION, MEAN_SPECTRUM, TEXTURE = "no_motion", "mean_spectrum", "texture"
BASELINES = (NO_MOTION, MEAN_SPECTRUM, TEXTURE)
METRICS = ("auroc", "spearman", "calibration", "band_error", "profile_error")






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








# ------------------------------------------------------------------------------------------------ baselines












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
) -> tuple[dict[str, Any], torch.Tensor, tuple[np.ndarray, np.ndarray]]:
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
    # Kept beside the metrics so that a global amplitude calibration can be fitted from the report (calibration.py).
    metrics["band_rms_px"] = [_finite_or_none(float(value)) for value in bands]
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
    means = [reference] * len(cases) if reference is not None else leave_one_source_out(cases)
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
