"""A global amplitude calibration of a motion prior, fitted on real clips from a ``gid evaluate`` report.

A prior trained on procedural scenes can place motion well and still be off in scale on photographs (the sim-to-real
gap of DESIGN.md section 8). Multiplying every predicted displacement by one factor c changes nothing a ranking
metric sees (AUROC, Spearman) and changes the two scale metrics exactly:

    calibration(c) = c * calibration(1)                    (a ratio of medians)
    band_error(c)  = mean_b |log10(max(c R_b, f) / max(T_b, f))|   (R, T: predicted and true band RMS, f the floor)

so both can be recomputed from the band RMS that the report keeps per case and seed, for any c, without sampling
again. The fitted c minimises the headline band error (the mean over clips of each clip's mean over its windows,
seeds and bands): a weighted median of log10(T_b / R_b), each clip weighing 1 however many windows it has.
Because the same clips then score the result, fit_calibration also reports leave-one-clip-out numbers: each clip
scored with the factor fitted on the others, an honest estimate of what the factor does on an unseen photo.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GIDInputError
from ..limits import MAX_MOTION_CALIBRATION, MIN_MOTION_CALIBRATION
from .metrics import BAND_FLOOR_PX, mean_std


@dataclass(frozen=True)
class ClipScales:
    """The scale data of one clip: for each (window, seed) entry its calibration and predicted / true band RMS.

    Attributes:
        name: the clip's file name.
        calibration: (E,) median predicted / median true amplitude of each entry.
        predicted, true: (E, B) band RMS in pixels; NaN for a band the volume does not resolve.
    """

    name: str
    calibration: np.ndarray
    predicted: np.ndarray
    true: np.ndarray

    def band_error(self, factor: float) -> float:
        """The clip's band error with every predicted displacement times factor: mean over entries of the mean
        over bands both resolve (metrics.band_error); NaN when no entry has one."""
        both = np.isfinite(self.predicted) & np.isfinite(self.true)
        ratio = np.maximum(factor * self.predicted, BAND_FLOOR_PX) / np.maximum(self.true, BAND_FLOOR_PX)
        errors = np.where(both, np.abs(np.log10(np.where(both, ratio, 1.0))), 0.0)
        counts = both.sum(axis=1)
        per_entry = errors.sum(axis=1)[counts > 0] / counts[counts > 0]
        return float(per_entry.mean()) if per_entry.size else float("nan")

    def log_ratios(self) -> tuple[np.ndarray, np.ndarray]:
        """log10(T_b / R_b) over the resolved bands of every entry, and their weights (each entry's bands share
        1 / E, so the clip weighs 1): two (N,) float64 arrays."""
        both = np.isfinite(self.predicted) & np.isfinite(self.true)
        counts = both.sum(axis=1, keepdims=True)
        weights = np.where(both, 1.0 / np.maximum(counts, 1) / max(int((counts > 0).sum()), 1), 0.0)
        ratio = np.maximum(self.true, BAND_FLOOR_PX) / np.maximum(np.where(both, self.predicted, 1.0), BAND_FLOOR_PX)
        return np.log10(ratio)[both], weights[both]


def clip_scales(report: dict[str, Any], method: str = "gid") -> list[ClipScales]:
    """The scale data of every real clip in a motion report (gid evaluate on a folder of clips), in order.

    Raises GIDInputError for a report without clips, without the method, or written before band RMS were kept.
    """
    if report.get("kind") != "motion" or "cases" not in report:
        raise GIDInputError("not a gid evaluate motion report (no 'cases')")
    if method not in report.get("methods", []):
        raise GIDInputError(f"the report has no method {method!r} (it has {report.get('methods')})")
    clips: dict[str, dict[str, list]] = {}
    for case in report["cases"]:
        if case["kind"] != "clip":
            continue
        entry = clips.setdefault(case["source"], {"calibration": [], "predicted": [], "true": []})
        for result in case["results"][method]:
            if "band_rms_px" not in result:
                raise GIDInputError(f"case {case['name']} has no band_rms_px: rerun gid evaluate (this report is "
                                    "older than calibration fitting)")  # fmt: skip
            entry["calibration"].append(result["calibration"])
            entry["predicted"].append(result["band_rms_px"])
            entry["true"].append(case["true_band_rms_px"])
    if len(clips) < 2:
        raise GIDInputError(f"fitting a calibration needs real clips from at least 2 videos, the report has "
                            f"{len(clips)}")  # fmt: skip

    def array(rows: list) -> np.ndarray:
        return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)

    return [ClipScales(source.replace("\\", "/").rsplit("/", 1)[-1], np.asarray(data["calibration"], np.float64),
                       array(data["predicted"]), array(data["true"])) for source, data in clips.items()]  # fmt: skip


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """A minimiser of sum_i w_i |values_i - m| over m: the smallest value where the cumulative weight reaches half
    (values, weights: (N,) float, weights >= 0 with a positive sum)."""
    if values.size == 0 or not weights.sum() > 0:
        raise GIDInputError("a weighted median needs at least one value with positive weight")
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def fit_factor(clips: list[ClipScales]) -> float:
    """The factor c minimising the mean over clips of their band errors (module docstring), within
    [MIN_MOTION_CALIBRATION, MAX_MOTION_CALIBRATION]. Floors are ignored in the fit (a true band below 1e-3 px is
    rare); the scores of the fitted factor keep them."""
    parts = [clip.log_ratios() for clip in clips]
    values = np.concatenate([values for values, _ in parts])
    weights = np.concatenate([weights for _, weights in parts])
    return float(np.clip(10.0 ** weighted_median(values, weights), MIN_MOTION_CALIBRATION, MAX_MOTION_CALIBRATION))


def _scores(clip: ClipScales, factor: float) -> dict[str, float]:
    return {"calibration": float(factor * clip.calibration.mean()), "band_error": clip.band_error(factor)}


def fit_calibration(report: dict[str, Any], method: str = "gid") -> dict[str, Any]:
    """Fit the global factor on the report's clips and score it (module docstring): fit_clip_scales of its clips,
    with "method"."""
    return {"method": method, **fit_clip_scales(clip_scales(report, method))}


def fit_clip_scales(clips: list[ClipScales]) -> dict[str, Any]:
    """Fit the global factor on the clips' scale data and score it (module docstring).

    Returns:
        {"factor", "clips": {name: {"before", "fitted", "leave_one_out": {"factor", "calibration", "band_error"}}},
        "summary_over_clips": {"before", "fitted", "leave_one_out": {metric: mean_std}}}: before is the data's
        own (factor 1), fitted uses the factor fitted on all clips, leave_one_out each clip's factor from the
        others.
    """
    if len(clips) < 2:
        raise GIDInputError(f"fitting a calibration needs clips from at least 2 videos, got {len(clips)}")
    factor = fit_factor(clips)
    rows: dict[str, dict[str, Any]] = {}
    for index, clip in enumerate(clips):
        held_out = fit_factor(clips[:index] + clips[index + 1:])
        rows[clip.name] = {
            "before": _scores(clip, 1.0),
            "fitted": _scores(clip, factor),
            "leave_one_out": {"factor": held_out, **_scores(clip, held_out)},
        }
    summary = {
        variant: {metric: mean_std([row[variant][metric] for row in rows.values()])
                  for metric in ("calibration", "band_error")}
        for variant in ("before", "fitted", "leave_one_out")
    }  # fmt: skip
    return {"factor": factor, "clips": rows, "summary_over_clips": summary}
