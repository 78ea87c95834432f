"""Writing evaluations: report.json, a summary figure, one figure per real clip and compact text tables.

Figures are drawn on matplotlib Figure objects with the Agg canvas, without pyplot: no global state, no window.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..files import atomic_path, write_json_atomic
from .masks import MotionMasks
from .metrics import psnr
from .motion import ClipFigureRow, MotionEvaluation
from .rendering import RenderEvaluation

REPORT_NAME, FIGURE_NAME, CLIP_FIGURES = "report.json", "figure.png", "clips"
_MOTION_COLUMNS = (
    ("auroc", "AUROC", 3),
    ("spearman", "Spearman", 3),
    ("calibration", "calibration", 3),
    ("band_error", "band err (log10)", 3),
    ("profile_error", "profile err (log10)", 3),
)
# Mask overlay colours (RGB in [0, 1]) and how strongly they tint the photo.
_MASK_COLOURS = {"moving": (1.0, 0.1, 0.1), "still": (0.1, 0.35, 1.0), "uncertain": (1.0, 0.9, 0.0)}
_MASK_TINT = 0.55
_RENDER_COLUMNS = (("psnr", "PSNR (dB)", 2), ("ssim", "SSIM", 4))


def _cell(stats: dict[str, Any], digits: int) -> str:
    if stats["mean"] is None:
        return "n/a"
    spread = f" ± {stats['std']:.{digits}f}" if stats["std"] is not None else ""
    return f"{stats['mean']:.{digits}f}{spread}"


def _table(title: str, summary: dict[str, dict[str, Any]], columns: tuple) -> list[str]:
    rows = [["method", *(label for _, label, _ in columns)]]
    rows += [[name, *(_cell(stats[key], digits) for key, _, digits in columns)] for name, stats in summary.items()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [title]
    for row in rows:
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return lines


def _clip_table(report: dict[str, Any]) -> list[str]:
    """Per clip: AUROC of every method, then the moving and still fractions averaged over its windows."""
    methods = report["methods"]
    rows = [["clip", "windows", *(f"AUROC {name}" for name in methods), "moving", "still"]]
    cases = {case["name"]: case for case in report["cases"]}
    for clip in report["clips"].values():
        windows = [cases[name] for name in clip["windows"]]
        values = [clip["results"][name]["auroc"] for name in methods]
        rows.append([clip["name"], str(len(windows)), *("n/a" if v is None else f"{v:.3f}" for v in values),
                     f"{np.mean([w['moving_fraction'] for w in windows]):.2f}",
                     f"{np.mean([w['still_fraction'] for w in windows]):.2f}"])  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["per clip (mean over windows and seeds; fraction of pixels moving / still)"] + [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    ]


def format_table(report: dict[str, Any]) -> str:
    """The report's summary as text tables (mean ± std): with real clips first the mean over clips and a per-clip
    AUROC table, then the mean over all cases (and per case kind when there are several kinds)."""
    columns = _MOTION_COLUMNS if report["kind"] == "motion" else _RENDER_COLUMNS
    seeds = f", seeds {report['seeds']}" if report.get("seeds") else ""
    lines = []
    if "summary_over_clips" in report:
        lines += _table(f"motion evaluation, mean over {len(report['clips'])} clips{seeds}",
                        report["summary_over_clips"], columns)  # fmt: skip
        lines += ["", *_clip_table(report), ""]
    lines += _table(f"{report['kind']} evaluation ({report['num_cases']} cases{seeds})", report["summary"], columns)
    by_kind = report.get("summary_by_kind", {})
    if len(by_kind) > 1 or report["kind"] == "renderer":
        for kind, summary in by_kind.items():
            lines += ["", *_table(f"{kind} cases", summary, columns)]
    lines += [f"note: {note}" for note in report.get("notes", [])]
    return "\n".join(lines)


def _new_figure(rows: int, columns: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(rows, columns, squeeze=False)


def _save_figure(figure: Figure, path: Path) -> None:
    """Write a PNG atomically (a hidden sibling renamed into place)."""
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)


def _show(axis: Axes, image: torch.Tensor, title: str, **kwargs: Any) -> Any:
    """(3, H, W) in [0, 1] as RGB, or (H, W) with a colour map."""
    data = image.permute(1, 2, 0).clamp(0, 1).numpy() if image.dim() == 3 else image.numpy()
    shown = axis.imshow(data, **kwargs)
    axis.set_title(title, fontsize=8)
    axis.set_xticks([])
    axis.set_yticks([])
    return shown


def motion_figure(evaluation: MotionEvaluation, path: Path) -> None:
    """Per figure case: the image, the true amplitude (moving mask outlined), predicted and baseline amplitudes on
    the same colour scale (pixels), and the log10 amplitude density profiles over the moving mask."""
    rows = evaluation.rows
    maps = max((len(row.predicted) for row in rows), default=0)
    figure, axes = _new_figure(len(rows), maps + 3, (2.6 * (maps + 3), 2.1 * len(rows) + 0.4))
    for axis_row, row in zip(axes, rows, strict=True):
        scale = max(float(torch.quantile(row.true_amplitude.flatten(), 0.99)), 1e-3)
        _show(axis_row[0], row.image, row.name)
        shown = _show(axis_row[1], row.true_amplitude, "true amplitude (px)", cmap="magma", vmin=0, vmax=scale)
        axis_row[1].contour(row.mask.numpy().astype(float), levels=[0.5], colors="cyan", linewidths=0.5)
        for axis, (name, amplitude) in zip(axis_row[2 : 2 + maps], row.predicted.items(), strict=False):
            _show(axis, amplitude, name, cmap="magma", vmin=0, vmax=scale)
        for axis in axis_row[2 + len(row.predicted) : 2 + maps]:
            axis.axis("off")
        figure.colorbar(shown, ax=axis_row[1 : 2 + maps].tolist(), shrink=0.8, label="RMS px")
        profile_axis = axis_row[-1]
        for name, (frequencies, profile) in row.profiles.items():
            style = {"color": "black", "linewidth": 2} if name == "true" else {"linestyle": "--" if "mean" in name
                                                                                else "-"}  # fmt: skip
            profile_axis.plot(frequencies, profile, marker=".", label=name, **style)
        profile_axis.set_xlabel("Hz", fontsize=8)
        profile_axis.set_ylabel("log10 px/√Hz", fontsize=8)
        profile_axis.tick_params(labelsize=7)
        profile_axis.legend(fontsize=6)
        profile_axis.set_title("amplitude density over moving mask", fontsize=8)
    _save_figure(figure, path)


def mask_overlay(image: torch.Tensor, masks: MotionMasks) -> torch.Tensor:
    """(3, H, W) photo in [0, 1] tinted red where moving, blue where still, yellow where uncertain, darkened where
    ignored."""
    overlay = image.clone()
    for name, colour in _MASK_COLOURS.items():
        where = getattr(masks, name)
        tint = torch.tensor(colour).view(3, 1, 1).expand_as(image)
        overlay = torch.where(where, (1 - _MASK_TINT) * overlay + _MASK_TINT * tint, overlay)
    return torch.where(masks.ignore, 0.25 * overlay, overlay)


def clip_figure(rows: list[ClipFigureRow], path: Path) -> None:
    """One clip, one row per window: the photo, the true amplitude, the predicted amplitude (first seed; each map on
    its own colour scale, its 99th percentile in the title), the masks over the photo and the texture baseline."""
    figure, axes = _new_figure(len(rows), 5, (13.5, 2.3 * len(rows) + 0.3))
    for axis_row, row in zip(axes, rows, strict=True):
        masks = row.masks
        _show(axis_row[0], row.image, row.name)
        _show_amplitude(axis_row[1], row.true_amplitude, masks.scored, "true amplitude")
        if row.predicted is None:
            axis_row[2].axis("off")
            axis_row[2].set_title("no predictor (baselines only)", fontsize=8)
        else:
            _show_amplitude(axis_row[2], row.predicted, masks.scored, "predicted, first seed")
        fractions = f"{float(masks.moving.float().mean()):.2f} / {float(masks.still.float().mean()):.2f}"
        _show(axis_row[3], mask_overlay(row.image, masks), f"moving red / still blue: {fractions}\nuncertain "
              f"yellow, ignored dark; T {masks.threshold:.2f} px")  # fmt: skip
        _show_amplitude(axis_row[4], row.texture, masks.scored, "texture baseline")
    _save_figure(figure, path)


def _show_amplitude(axis: Axes, amplitude: torch.Tensor, kept: torch.Tensor, title: str) -> None:
    """An (H, W) amplitude map in pixels on its own colour scale (0 to its 99th percentile over the kept pixels);
    pixels not kept are left blank."""
    scale = max(float(torch.quantile(amplitude[kept].flatten().float(), 0.99)), 1e-6)
    _show(axis, torch.where(kept, amplitude, torch.nan), f"{title}\n(p99 {scale:.3g} px)", cmap="magma", vmin=0,
          vmax=scale)  # fmt: skip


def clip_figures(evaluation: MotionEvaluation, folder: Path) -> list[Path]:
    """clip_figure for every real clip of the evaluation, as folder/<clip file stem>.png; returns the paths."""
    by_clip: dict[str, list[ClipFigureRow]] = {}
    for row in evaluation.clip_rows:
        by_clip.setdefault(row.source, []).append(row)
    if by_clip:
        folder.mkdir(parents=True, exist_ok=True)
    paths, stems = [], Counter()
    for source, rows in by_clip.items():
        stem = Path(source).stem
        stems[stem] += 1  # clips of one name in different folders: name-2.png, ...
        paths.append(folder / (f"{stem}.png" if stems[stem] == 1 else f"{stem}-{stems[stem]}.png"))
        clip_figure(rows, paths[-1])
    return paths


def render_figure(evaluation: RenderEvaluation, path: Path, error_scale: float = 0.25) -> None:
    """Per figure case, two rows: the real frame and each method's frame (with its PSNR); the flow magnitude and
    each method's absolute error (mean over channels, 0..error_scale)."""
    rows = evaluation.rows
    methods = list(rows[0].frames) if rows else []
    figure, axes = _new_figure(2 * len(rows), len(methods) + 1, (2.4 * (len(methods) + 1), 3.6 * len(rows) + 0.4))
    for index, row in enumerate(rows):
        top, bottom = axes[2 * index], axes[2 * index + 1]
        _show(top[0], row.target, f"{row.name}\nreal frame {row.time}")
        _show(bottom[0], row.flow_magnitude, "|F_t| (px)", cmap="viridis")
        for column, name in enumerate(methods, start=1):
            frame = row.frames[name]
            value = float(psnr(frame[None], row.target[None])[0])
            _show(top[column], frame, f"{name} ({value:.1f} dB)")
            error = (frame - row.target).abs().mean(dim=0)
            shown = _show(bottom[column], error, f"|error| {name}", cmap="inferno", vmin=0, vmax=error_scale)
        figure.colorbar(shown, ax=bottom[1:].tolist(), shrink=0.8)
    _save_figure(figure, path)


def write_evaluation(evaluation: MotionEvaluation | RenderEvaluation, out_dir: str | Path) -> tuple[Path, Path]:
    """Write report.json and figure.png under out_dir (created), and for a motion evaluation of real clips one figure
    per clip under out_dir/clips (listed in the report's "clip_figures"); returns the report's and figure's paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report_path, figure_path = out / REPORT_NAME, out / FIGURE_NAME
    if isinstance(evaluation, MotionEvaluation):
        motion_figure(evaluation, figure_path)
        figures = clip_figures(evaluation, out / CLIP_FIGURES)
        if figures:
            evaluation.report["clip_figures"] = [path.relative_to(out).as_posix() for path in figures]
    else:
        render_figure(evaluation, figure_path)
    write_json_atomic(report_path, _plain(evaluation.report))
    return report_path, figure_path


def _plain(value: Any) -> Any:
    """JSON-ready copy: tuples to lists, numpy scalars to Python numbers."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
