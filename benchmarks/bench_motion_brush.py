"""What the motion brush does (issue: the user paints where it moves): the true moving / still masks of each case
are painted as the motion mask (white moves, black stays still, the uncertain band unknown), and the sample is
compared with the same seed's sample without a mask. Per case and seed:

- leak: RMS displacement in the painted "stays still" region over the RMS in the painted "moves" region (target
  <= 5 %);
- calibration (median predicted / true amplitude) and band error (mean |log10| of band RMS ratios) inside the true
  moving region, with and without the mask (targets: calibration in [0.5, 2]; band error at least 20 % lower);
- AUROC without the mask (the ordinary prior).

"masked" is what the pipeline returns (what is painted "stays still" held exactly still: hold_still_painted);
"model" the same sample before that, the model's own answer to the mask (its leak is the honest measure of what
the diffusion model learned).

Cases: the clips of a folder (default ../shared/data/real_val, validation only: ground truth from optical flow,
masks and ignore boxes as gid evaluate makes them) and, with --dataset, a prepared procedural hold-out (exact
motion). Results: benchmarks/results/motion_brush.json.

The brush's own amplitude factor (the pipeline's mask_motion_calibration) is fitted on the clips as gid calibrate
fits motion_calibration (evaluation.calibration: the factor minimising the mean band error over clips, with
leave-one-clip-out scores); --write DIR stores it in that checkpoint's model_index.json (multiplied into the one
this run evaluated).

Run: python benchmarks/bench_motion_brush.py [--checkpoint DIR] [--clips DIR] [--dataset DIR] [--seeds 3]
     [--windows 1] [--steps 25] [--guidance-scale G] [--max-cases N] [--write DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from gid_pipeline import GIDPipeline
from gid_pipeline.evaluation import clip_cases, dataset_cases, load_ignore, plan_clips
from gid_pipeline.evaluation.calibration import ClipScales, fit_clip_scales
from gid_pipeline.evaluation.masks import amplitude_masks
from gid_pipeline.evaluation.metrics import (
    amplitude_calibration,
    auroc,
    band_error,
    band_rms,
    motion_amplitude,
)
from gid_pipeline.files import write_bytes_atomic
from gid_pipeline.motion.mask import hold_still

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"


def mask_image(moving: torch.Tensor, still: torch.Tensor) -> np.ndarray:
    """(H, W) bool masks -> the mask image a person would paint: white moves, black stays still, grey unknown."""
    levels = np.full(moving.shape, 128, np.uint8)
    levels[moving.numpy()] = 255
    levels[still.numpy()] = 0
    return levels


def scores(volume, case, masks) -> dict[str, float]:
    band = min(float(volume.frequencies_hz[-1]), float(case.volume.frequencies_hz[-1]))
    predicted = motion_amplitude(volume.spectrum, volume.frequencies_hz, band)
    true = motion_amplitude(case.volume.spectrum, case.volume.frequencies_hz, band)
    truth_bands = band_rms(case.volume.spectrum, masks.moving, case.volume.frequencies_hz)
    judged = masks.moving | masks.still
    bands = band_rms(volume.spectrum, masks.moving, volume.frequencies_hz)
    out = {
        "calibration": amplitude_calibration(predicted, true, masks.moving),
        "band_error": band_error(bands, truth_bands),
        "band_rms_px": [None if not np.isfinite(v) else float(v) for v in bands],
        "true_band_rms_px": [None if not np.isfinite(v) else float(v) for v in truth_bands],
    }
    if bool(masks.still.any()):
        out["auroc"] = auroc(predicted[judged], masks.moving[judged])
        rms = {name: float(predicted[region].square().mean().sqrt()) for name, region in
               (("still", masks.still), ("moving", masks.moving))}  # fmt: skip
        out["leak"] = rms["still"] / max(rms["moving"], 1e-12)
    return out


def mask_clip_scales(rows: list[dict]) -> list[ClipScales]:
    """The masked samples' scale data per clip (case names are "<clip>@<start>"), for evaluation.calibration."""
    clips: dict[str, list[dict]] = {}
    for row in rows:
        clips.setdefault(row["case"].split("@")[0], []).append(row["masked"])

    def array(entries: list[dict], key: str) -> np.ndarray:
        return np.array([[np.nan if v is None else v for v in entry[key]] for entry in entries], np.float64)

    return [ClipScales(name, np.array([e["calibration"] for e in entries]), array(entries, "band_rms_px"),
                       array(entries, "true_band_rms_px")) for name, entries in clips.items()]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "assets" / "gid-default"))
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "real_val")
    parser.add_argument("--dataset", type=Path, help="a prepared procedural hold-out (gid prepare-data)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--windows", type=int, default=1)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance-scale", type=float)
    parser.add_argument("--max-cases", type=int)
    parser.add_argument("--write", type=Path, help="store the fitted mask_motion_calibration in this checkpoint")
    args = parser.parse_args()

    pipe = GIDPipeline.from_pretrained(args.checkpoint)
    pipe.set_progress_bar_config(disable=True)
    options = {"num_inference_steps": args.steps}
    if args.guidance_scale is not None:
        options["guidance_scale"] = args.guidance_scale
    groups = {}
    if args.clips and args.clips.is_dir():
        ignore_file = ROOT / "benchmarks" / "real_val_ignore.json"
        plans = plan_clips(sorted(args.clips.glob("*.mp4")), num_windows=args.windows,
                           ignore=load_ignore(ignore_file) if ignore_file.is_file() else None)  # fmt: skip
        groups["clips"] = clip_cases(plans, progress=True)[: args.max_cases]
    if args.dataset is not None:
        groups["procedural"] = list(dataset_cases(args.dataset, args.max_cases))

    report: dict[str, dict] = {}
    for group, cases in groups.items():
        rows = []
        for case in cases:
            masks = case.masks if case.masks is not None else amplitude_masks(motion_amplitude(case.volume.spectrum))
            if not bool(masks.moving.any()):
                continue
            painted = mask_image(masks.moving, masks.still)
            for seed in range(args.seeds):
                plain, model = (
                    pipe.predict_spectral_volume(case.image, generator=torch.Generator().manual_seed(seed),
                                                 motion_mask=mask, hold_still_painted=False, **options)[0]
                    for mask in (None, painted)
                )  # fmt: skip
                masked = dataclasses.replace(
                    model, spectrum=hold_still(model.spectrum[None], model.motion_mask[None])[0]
                )
                height, width = case.volume.size
                row = {"case": case.name, "seed": seed}
                for kind, volume in (("plain", plain), ("model", model), ("masked", masked)):
                    row[kind] = scores(volume.resized(height, width), case, masks)
                rows.append(row)
                kinds = ("plain", "model", "masked")
                shown = {k: {m: round(v, 3) for m, v in row[k].items() if isinstance(v, float)} for k in kinds}
                print(case.name, seed, shown, flush=True)
        summary = {}
        for kind in ("plain", "model", "masked"):
            for metric in ("calibration", "band_error", "auroc", "leak"):
                values = [row[kind][metric] for row in rows if metric in row[kind] and np.isfinite(row[kind][metric])]
                if values:
                    summary[f"{kind} {metric}"] = statistics.mean(values)
        report[group] = {"summary": summary, "rows": rows}
        print(group, json.dumps(summary, indent=1))
    if "clips" in report and len({row["case"].split("@")[0] for row in report["clips"]["rows"]}) >= 2:
        evaluated = pipe.config.get("mask_motion_calibration") or pipe.config.get("motion_calibration", 1.0)
        fit = {"evaluated": evaluated, **fit_clip_scales(mask_clip_scales(report["clips"]["rows"]))}
        report["clips"]["mask_calibration"] = fit
        print("mask calibration fit", json.dumps({"factor": fit["factor"], **fit["summary_over_clips"]}, indent=1))
        if args.write is not None:
            index_path = args.write / "model_index.json"
            index = json.loads(index_path.read_text())
            index["mask_motion_calibration"] = evaluated * fit["factor"]
            # In the layout diffusers' save_pretrained writes (as gid calibrate --write), atomically.
            write_bytes_atomic(index_path, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
            print(f"set mask_motion_calibration = {index['mask_motion_calibration']:.4g} in {index_path}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "motion_brush.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
