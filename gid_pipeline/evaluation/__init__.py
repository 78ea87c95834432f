"""Evaluation of predicted motion and of renderers, always beside simple baselines (DESIGN.md, section 7).

metrics: pure metric functions (AUROC, amplitude, moving mask, log amplitude density profiles, calibration, PSNR,
    SSIM). motion: spectral-volume evaluation (evaluate_motion). rendering: renderer evaluation
    (evaluate_renderers). report: report.json, figure.png and text tables.
"""

from .metrics import (
    MOVING_MIN_PX,
    MOVING_RELATIVE,
    amplitude_calibration,
    amplitude_density_profile,
    auroc,
    motion_amplitude,
    moving_mask,
    moving_threshold,
    profile_error,
    psnr,
    ssim_per_image,
)
from .motion import (
    MeanSpectrum,
    MotionCase,
    MotionEvaluation,
    clip_cases,
    dataset_cases,
    evaluate_motion,
    plan_clips,
    reference_mean_spectrum,
)
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
    "MOVING_MIN_PX",
    "MOVING_RELATIVE",
    "MeanSpectrum",
    "MotionCase",
    "MotionEvaluation",
    "RenderCase",
    "RenderEvaluation",
    "amplitude_calibration",
    "amplitude_density_profile",
    "auroc",
    "backward_warp",
    "clip_cases",
    "clip_render_case",
    "dataset_cases",
    "evaluate_motion",
    "evaluate_renderers",
    "format_table",
    "motion_amplitude",
    "moving_mask",
    "moving_threshold",
    "plan_clips",
    "procedural_render_cases",
    "profile_error",
    "psnr",
    "reference_mean_spectrum",
    "ssim_per_image",
    "write_evaluation",
]
