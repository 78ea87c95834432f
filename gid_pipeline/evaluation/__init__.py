"""Evaluation of predicted motion and of renderers, always beside simple baselines (DESIGN.md, section 7).

metrics: pure metric functions (AUROC, Spearman, amplitude, moving mask, band RMS and log amplitude density
    profiles, calibration, PSNR, SSIM). masks: moving / still / uncertain pixels. ignore: ignore-region files.
    clips: evaluation cases from windows of real clips. motion: spectral-volume evaluation with its baselines
    (evaluate_motion). rendering: renderer evaluation (evaluate_renderers). report: report.json, figures and text
    tables.
"""

from .baselines import MeanSpectrum, reference_mean_spectrum, texture_map, texture_volume
from .cases import MotionCase, dataset_cases
from .clips import ClipPlan, clip_cases, plan_clips
from .ignore import ignore_mask, load_ignore
from .masks import MotionMasks, amplitude_masks, clip_masks
from .metrics import (
    BAND_EDGES_HZ,
    MOVING_MIN_PX,
    MOVING_RELATIVE,
    amplitude_calibration,
    amplitude_density_profile,
    auroc,
    band_error,
    band_rms,
    motion_amplitude,
    moving_mask,
    moving_threshold,
    profile_error,
    psnr,
    spearman,
    ssim_per_image,
)
from .motion import MotionEvaluation, evaluate_motion
from .rendering import (
    RenderCase,
    RenderEvaluation,
    backward_warp,
    clip_render_case,
    evaluate_renderers,
    procedural_render_cases,
)
from .report import format_table, write_evaluation

__all__ = [
    "BAND_EDGES_HZ",
    "MOVING_MIN_PX",
    "MOVING_RELATIVE",
    "ClipPlan",
    "MeanSpectrum",
    "MotionCase",
    "MotionEvaluation",
    "MotionMasks",
    "RenderCase",
    "RenderEvaluation",
    "amplitude_calibration",
    "amplitude_density_profile",
    "amplitude_masks",
    "auroc",
    "backward_warp",
    "band_error",
    "band_rms",
    "clip_cases",
    "clip_masks",
    "clip_render_case",
    "dataset_cases",
    "evaluate_motion",
    "evaluate_renderers",
    "format_table",
    "ignore_mask",
    "load_ignore",
    "motion_amplitude",
    "moving_mask",
    "moving_threshold",
    "plan_clips",
    "procedural_render_cases",
    "profile_error",
    "psnr",
    "reference_mean_spectrum",
    "spearman",
    "ssim_per_image",
    "texture_map",
    "texture_volume",
    "write_evaluation",
]
