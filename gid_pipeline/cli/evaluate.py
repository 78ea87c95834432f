"""``gid evaluate`` (predicted motion against ground truth) and ``gid evaluate-renderer`` (renderers against real
frames), each beside simple baselines in the same run; both write report.json and figure.png and print a table.

The evaluation modules (matplotlib, diffusers) are imported when a command runs, so ``gid --help`` stays fast.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import shlex
from pathlib import Path
from typing import Any

import torch

from ..data.builder import INPUT_VIDEO_SUFFIXES, find_videos
from ..data.shards import MANIFEST_NAME, SHARD_GLOB, open_dataset
from ..data.triples import HELD_OUT_SEED
from ..errors import GIDInputError
from ..extras import require
from .arguments import positive_float, positive_int, size


def frame_list(text: str) -> tuple[int, ...]:
    """'0,8,16' -> (0, 8, 16): distinct frame indices >= 0, sorted."""
    try:
        frames = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected frame numbers like 0,8,16, got {text!r}") from None
    if frames[0] < 0:
        raise argparse.ArgumentTypeError(f"frame numbers must be >= 0, got {text!r}")
    return tuple(frames)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(name)
    except RuntimeError as error:
        raise GIDInputError(f"unknown device {name!r}: {error}") from error


def classify_data(path: Path) -> tuple[str, list[Path]]:
    """("dataset", [path]) for a prepared dataset, ("clips", videos) for a video file or a folder of videos.

    Raises GIDInputError for a missing path, shards without a manifest, or a folder with neither.
    """
    if not path.exists():
        raise GIDInputError(f"{path} does not exist")
    if path.is_file():
        if path.suffix.lower() not in INPUT_VIDEO_SUFFIXES:
            suffixes = ", ".join(INPUT_VIDEO_SUFFIXES)
            raise GIDInputError(f"{path} is neither a prepared dataset folder nor a video ({suffixes})")
        return "clips", [path]
    if (path / MANIFEST_NAME).is_file():
        open_dataset(path)  # validates the manifest
        return "dataset", [path]
    if any(path.glob(SHARD_GLOB)):
        raise GIDInputError(f"{path} holds shards but no {MANIFEST_NAME}: not a complete gid dataset")
    return "clips", find_videos(path)


def check_checkpoint(path: Path) -> None:
    if not (path / "model_index.json").is_file():
        raise GIDInputError(f"checkpoint {path} is not a GIDPipeline folder (no model_index.json there)")


def _write(evaluation: Any, out: Path) -> None:
    from ..evaluation import format_table, write_evaluation

    report_path, figure_path = write_evaluation(evaluation, out)
    print(format_table(evaluation.report))
    clips = evaluation.report.get("clip_figures", [])
    per_clip = f" and {len(clips)} per-clip figures under {out / Path(clips[0]).parent}" if clips else ""
    print(f"wrote {report_path}, {figure_path}{per_clip}")


def _evaluate(args: argparse.Namespace) -> None:
    require("matplotlib")
    from ..evaluation import (
        clip_cases,
        dataset_cases,
        evaluate_motion,
        load_ignore,
        plan_clips,
        reference_mean_spectrum,
    )

    # Everything that can be wrong with the input is checked before optical flow or the model runs.
    device = _device(args.device)
    kind, paths = classify_data(args.data)
    if not args.baselines_only:
        check_checkpoint(args.checkpoint)
    if args.reference is not None:
        open_dataset(args.reference)
    if kind == "dataset" and args.ignore is not None:
        raise GIDInputError("--ignore applies to folders of clips; a prepared dataset has exact masks")
    ignore = load_ignore(args.ignore) if args.ignore is not None else None
    if kind == "clips":
        windows = len(args.start_frames) if args.start_frames else args.windows
        if args.max_cases is not None:
            paths = paths[: math.ceil(args.max_cases / windows)]
        plans = plan_clips(paths, args.start_frames, args.clip_frames, args.max_frequency, args.window_seconds,
                           args.windows, ignore)  # fmt: skip
        cases = clip_cases(plans, args.size, args.max_frequency, progress=True)
        cases = cases[: args.max_cases]
    else:
        cases = dataset_cases(paths[0], args.max_cases, args.size)
    reference = reference_mean_spectrum(args.reference, args.reference_samples) if args.reference else None

    predict = None
    if not args.baselines_only:
        from ..pipeline_gid import GIDPipeline

        pipe = GIDPipeline.from_pretrained(args.checkpoint).to(device)
        pipe.set_progress_bar_config(disable=True)
        options: dict[str, Any] = {"num_inference_steps": args.steps}
        if args.guidance_scale is not None:
            options["guidance_scale"] = args.guidance_scale

        def predict(image: torch.Tensor, generator: torch.Generator):
            return pipe.predict_spectral_volume(image, generator=generator, **options)[0]

    evaluation = evaluate_motion(cases, predict, range(args.seeds), method="gid", reference=reference, progress=True)
    evaluation.report["command"] = {
        "data": str(args.data),
        "checkpoint": None if args.baselines_only else str(args.checkpoint),
        "motion_calibration": None if args.baselines_only else pipe.config.get("motion_calibration", 1.0),
        "steps": args.steps,
        "guidance_scale": args.guidance_scale,
        "reference": None if args.reference is None else str(args.reference),
        "seeds": args.seeds,
        "start_frames": None if args.start_frames is None or kind != "clips" else list(args.start_frames),
        "windows": args.windows if kind == "clips" and args.start_frames is None else None,
        "window_seconds": args.window_seconds if kind == "clips" else None,
        "clip_frames": args.clip_frames if kind == "clips" else None,
        "ignore": None if args.ignore is None else str(args.ignore),
        "size": list(args.size),
        "command_line": shlex.join(["gid", *args.argv]),
    }
    _write(evaluation, args.out)


def _load_renderer(args: argparse.Namespace) -> Any:
    """The learned renderer of --renderer DIR or --checkpoint DIR/renderer, or None when neither is given."""
    folder = args.renderer
    if args.checkpoint is not None:
        check_checkpoint(args.checkpoint)
        folder = args.checkpoint / "renderer"
    if folder is None:
        return None
    if not (folder / "config.json").is_file():
        raise GIDInputError(f"{folder} is not a SplatRenderer folder (no config.json there)")
    from ..models.renderer import SplatRenderer

    try:
        return SplatRenderer.from_pretrained(folder)
    except (OSError, ValueError) as error:
        raise GIDInputError(f"cannot load the renderer in {folder}: {error}") from error


def _evaluate_renderer(args: argparse.Namespace) -> None:
    require("matplotlib")
    from ..evaluation import clip_render_case, evaluate_renderers, procedural_render_cases

    if args.procedural < 0:
        raise GIDInputError(f"--procedural must be >= 0, got {args.procedural}")
    if not args.clip and args.procedural == 0:
        raise GIDInputError("nothing to evaluate: give --clip and/or --procedural N (N > 0)")
    for clip in args.clip:
        if not clip.is_file():
            raise GIDInputError(f"clip {clip} does not exist")
    device = _device(args.device)
    renderer = _load_renderer(args)
    procedural = (procedural_render_cases(args.procedural, args.first_seed, args.size, frame_step=args.frame_step)
                  if args.procedural else iter(()))  # fmt: skip
    clips = [clip_render_case(clip, args.clip_frames, args.size, args.clip_frame_step) for clip in args.clip]
    cases = itertools.chain(clips, procedural)  # scenes are generated as they are evaluated
    evaluation = evaluate_renderers(cases, renderer, device=device, progress=True, total=len(clips) + args.procedural)
    folder = args.renderer or (args.checkpoint / "renderer" if args.checkpoint is not None else None)
    evaluation.report["command"] = {
        "clips": [str(clip) for clip in args.clip],
        "clip_frames": args.clip_frames,
        "procedural": args.procedural,
        "first_seed": args.first_seed,
        "renderer": None if folder is None else str(folder),
    }
    if renderer is None:
        evaluation.report.setdefault("notes", []).append("no learned renderer given (--renderer / --checkpoint)")
    _write(evaluation, args.out)


def _calibrate(args: argparse.Namespace) -> None:
    from ..evaluation.calibration import fit_calibration
    from ..files import check_output, write_bytes_atomic, write_json_atomic

    if args.out is not None:
        check_output(args.out)
    if not args.report.is_file():
        raise GIDInputError(f"report {args.report} does not exist")
    try:
        report = json.loads(args.report.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GIDInputError(f"cannot read the report {args.report}: {error}") from error
    index_path = None
    if args.write is not None:
        check_checkpoint(args.write)
        index_path = args.write / "model_index.json"
        try:
            index = json.loads(index_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise GIDInputError(f"cannot read {index_path}: {error}") from error
        current = float(index.get("motion_calibration", 1.0))
        evaluated = report.get("command", {}).get("motion_calibration")
        if evaluated is None or abs(float(evaluated) - current) > 1e-9 * current:
            raise GIDInputError(f"{args.write} has motion_calibration {current:g} but the report evaluated a "
                                f"checkpoint with {evaluated}: evaluate this checkpoint again first")  # fmt: skip
    fit = fit_calibration(report, args.method)
    summary = fit["summary_over_clips"]
    print(f"{'clip':<28}{'calibration':>34}{'band error':>30}")
    print(f"{'':<28}{'before  fitted  left-out':>34}{'before  fitted  left-out':>30}")
    for name, row in fit["clips"].items():
        cells = [row[variant][metric] for metric in ("calibration", "band_error")
                 for variant in ("before", "fitted", "leave_one_out")]  # fmt: skip
        print(f"{name[:27]:<28}" + "".join(f"{value:8.3f}" for value in cells[:3]) + " " * 10
              + "".join(f"{value:8.3f}" for value in cells[3:]))  # fmt: skip
    means = [summary[variant][metric]["mean"] for metric in ("calibration", "band_error")
             for variant in ("before", "fitted", "leave_one_out")]  # fmt: skip
    print(f"{'mean over clips':<28}" + "".join(f"{value:8.3f}" for value in means[:3]) + " " * 10
          + "".join(f"{value:8.3f}" for value in means[3:]))  # fmt: skip
    print(f"fitted factor {fit['factor']:.4g} (AUROC and Spearman do not change with it)")
    if args.out is not None:
        write_json_atomic(args.out, fit)
        print(f"wrote {args.out}")
    if index_path is not None:
        index["motion_calibration"] = current * fit["factor"]
        # In the layout diffusers' save_pretrained writes, so the file's diff is the one value.
        write_bytes_atomic(index_path, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
        print(f"set motion_calibration = {index['motion_calibration']:.4g} in {index_path} (was {current:g})")


def register(commands: argparse._SubParsersAction) -> None:
    """Add evaluate, calibrate and evaluate-renderer to the ``gid`` subcommands."""
    from .. import DEFAULT_CHECKPOINT

    evaluate = commands.add_parser(
        "evaluate",
        help="score predicted motion against ground truth, beside baselines",
        description="Predict spectral volumes for held-out stills and compare them with the true motion: AUROC of "
        "the amplitude against moving vs still pixels, Spearman rank correlation of the amplitude maps, amplitude "
        "calibration, band-profile and per-bin profile errors, beside the no_motion, mean_spectrum and texture "
        "baselines. DATA is a prepared dataset (gid prepare-data output) or a video / folder of videos (ground "
        "truth from optical flow of --window-seconds windows starting at --windows frames spread over each clip, "
        "or at --start-frames; masks from flow and visible grey-level change, see gid_pipeline/evaluation/masks.py). "
        "Writes report.json, figure.png and, for clips, one figure per clip under --out/clips.",
    )
    evaluate.add_argument("data", type=Path, help="prepared dataset folder, video file, or folder of videos")
    evaluate.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="GIDPipeline folder (default: "
                          "the shipped checkpoint)")  # fmt: skip
    evaluate.add_argument("--baselines-only", action="store_true", help="score only the baselines (no model)")
    evaluate.add_argument("--seeds", type=positive_int, default=3, help="seeds per case: 0..N-1 (3)")
    evaluate.add_argument("--steps", type=positive_int, default=25, help="denoising steps (25)")
    evaluate.add_argument("--guidance-scale", type=float, help="classifier-free guidance (default: the pipeline's)")
    evaluate.add_argument("--windows", type=positive_int, default=3, help="windows per clip, their starts spread "
                          "evenly over it and at least 0.5 s apart (3)")  # fmt: skip
    evaluate.add_argument("--start-frames", type=frame_list, help="clip windows start at these frames instead "
                          "(e.g. 0,8,16; frames at the clip's own rate)")  # fmt: skip
    evaluate.add_argument("--window-seconds", type=positive_float, default=5.0, help="clip window length, or what "
                          "the clip has after a window's start (5: the model's 150 frames at 30 fps)")  # fmt: skip
    evaluate.add_argument("--clip-frames", type=positive_int, help="use only the first N frames of each clip "
                          "(tests/data/tree.avi: 54, a hand enters at frame 54)")  # fmt: skip
    evaluate.add_argument("--max-frequency", type=positive_float, default=3.0, help="clip ground truth keeps "
                          "frequencies up to this many Hz (3, the model's band)")  # fmt: skip
    evaluate.add_argument("--size", type=size, default=(256, 160), help="evaluation grid WIDTHxHEIGHT (256x160)")
    evaluate.add_argument("--reference", type=Path, help="dataset whose mean spectrum is the mean_spectrum baseline "
                          "(the training set); default: the evaluated ground truth, leaving out each case's source")
    evaluate.add_argument("--reference-samples", type=positive_int, default=256, help="samples of --reference (256)")
    evaluate.add_argument("--ignore", type=Path, help="JSON file of boxes per clip file name left out of every metric "
                          "(gid_pipeline/evaluation/ignore.py; e.g. benchmarks/real_val_ignore.json)")  # fmt: skip
    evaluate.add_argument("--max-cases", type=positive_int, help="evaluate at most N cases")
    evaluate.add_argument("--device", default="auto", help="torch device for the model (auto: cuda if available)")
    evaluate.add_argument("-o", "--out", type=Path, default=Path("evaluation/motion"), help="output folder "
                          "(evaluation/motion)")  # fmt: skip
    evaluate.set_defaults(run=_evaluate)

    calibrate = commands.add_parser(
        "calibrate",
        help="fit a checkpoint's motion_calibration from a gid evaluate report of real clips",
        description="Fit the one factor on every predicted displacement that minimises the band error of REPORT "
        "(gid evaluate on a folder of real clips, e.g. ../shared/data/real_val) and print calibration and band "
        "error per clip before, with the factor, and with the factor fitted on the other clips only (an honest "
        "estimate for unseen photos). AUROC and Spearman do not depend on it. --write stores it in the checkpoint "
        "that REPORT evaluated.",
    )
    calibrate.add_argument("report", type=Path, help="report.json of gid evaluate on real clips")
    calibrate.add_argument("--method", default="gid", help="the report's method to calibrate (gid)")
    calibrate.add_argument("--write", type=Path, help="checkpoint folder whose model_index.json gets the factor "
                           "(multiplied into the motion_calibration the report evaluated)")  # fmt: skip
    calibrate.add_argument("-o", "--out", type=Path, help="also write the fit and every number as JSON")
    calibrate.set_defaults(run=_calibrate)

    renderer = commands.add_parser(
        "evaluate-renderer",
        help="score renderers on real and procedural frames, beside baselines",
        description="Render frame t from frame 0 with known motion (optical flow of a real clip; exact motion of "
        "held-out procedural scenes) with the learned renderer, pixel softmax and average splatting, backward "
        "warping and no motion, and compare with the real frame t (PSNR, SSIM). Writes report.json and figure.png.",
    )
    renderer.add_argument("--clip", type=Path, action="append", default=[], help="real clip (repeatable)")
    renderer.add_argument("--clip-frames", type=positive_int, help="use only the first N frames of each clip")
    renderer.add_argument("--clip-frame-step", type=positive_int, default=1, help="evaluate every n-th clip frame (1)")
    renderer.add_argument("--procedural", type=int, default=8, help="held-out procedural scenes (8; 0 for none)")
    renderer.add_argument("--first-seed", type=int, default=HELD_OUT_SEED, help="seed of the first procedural scene "
                          f"(>= {HELD_OUT_SEED}: held out from training)")  # fmt: skip
    renderer.add_argument("--frame-step", type=positive_int, default=5, help="evaluate every n-th procedural frame "
                          "(5, of 150)")  # fmt: skip
    source = renderer.add_mutually_exclusive_group()
    source.add_argument("--renderer", type=Path, help="SplatRenderer folder (config.json + weights)")
    source.add_argument("--checkpoint", type=Path, help="GIDPipeline folder; its renderer/ is evaluated")
    renderer.add_argument("--size", type=size, default=(256, 160), help="evaluation grid WIDTHxHEIGHT (256x160)")
    renderer.add_argument("--device", default="auto", help="torch device for the learned renderer (auto)")
    renderer.add_argument("--out", type=Path, default=Path("evaluation/renderer"), help="output folder "
                          "(evaluation/renderer)")  # fmt: skip
    renderer.set_defaults(run=_evaluate_renderer)
