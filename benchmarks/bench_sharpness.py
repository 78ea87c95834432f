"""Which softmax sharpness should the pixel renderer use? PSNR of pixel softmax splatting per sharpness.

The loop renderer without a learned renderer splats pixels with log-weights ``rendering.softmax_metric(W,
sharpness)``: W(p) = mean_t |F_t(p)| scaled so that its 99th percentile maps to ``sharpness``. Too low and a still
background bleeds over moving foreground; too high and the softmax picks single noisy pixels. This sweeps it on
the renderer evaluation's cases (evaluation.rendering): held-out procedural scenes (exact motion and frames) and a
real clip (DIS flow frame 0 -> t), frame t rendered from frame 0 and compared with the real frame t.

Results go to benchmarks/results/sharpness.json.
Run: python benchmarks/bench_sharpness.py [--scenes 8] [--clip tests/data/tree.avi --clip-frames 54]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from gid_pipeline.evaluation.metrics import psnr
from gid_pipeline.evaluation.rendering import RenderCase, clip_render_case, procedural_render_cases
from gid_pipeline.rendering.loop import DEFAULT_SHARPNESS, render_frames, softmax_metric

RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parent.parent


def case_psnr(case: RenderCase, sharpness: float, chunk: int = 16) -> list[float]:
    """Per-frame PSNR (dB) of pixel softmax splatting at ``sharpness`` on one case."""
    metric = softmax_metric(case.metric, sharpness)
    scores: list[float] = []
    for start in range(0, len(case.times), chunk):
        frames = render_frames(case.image, case.flows[start : start + chunk], metric, mode="softmax")
        scores += psnr(frames.clamp(0.0, 1.0), case.targets[start : start + chunk]).tolist()
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8, help="held-out procedural scenes (8)")
    parser.add_argument("--frame-step", type=int, default=10, help="evaluate every n-th procedural frame (10)")
    parser.add_argument("--clip", type=Path, default=ROOT / "tests" / "data" / "tree.avi", help="real clip")
    parser.add_argument("--clip-frames", type=int, default=54, help="frames of the clip (54)")
    parser.add_argument("--sharpness", type=float, nargs="+", default=[0.5, 1, 1.5, 2, 3, 5, 10, 20])
    args = parser.parse_args()
    torch.set_num_threads(2)

    cases = [clip_render_case(args.clip, args.clip_frames)]
    cases += list(procedural_render_cases(args.scenes, frame_step=args.frame_step))
    rows: dict[str, dict[str, float]] = {}
    for sharpness in args.sharpness:
        by_kind: dict[str, list[float]] = {}
        for case in cases:
            by_kind.setdefault(case.kind, []).extend(case_psnr(case, sharpness))
        rows[f"{sharpness:g}"] = {kind: sum(values) / len(values) for kind, values in by_kind.items()}
        print(f"sharpness {sharpness:>5g}: " + "  ".join(f"{k} {v:.2f} dB" for k, v in rows[f"{sharpness:g}"].items()))
    RESULTS.mkdir(exist_ok=True)
    report = {"default_sharpness": DEFAULT_SHARPNESS, "scenes": args.scenes, "clip": str(args.clip),
              "clip_frames": args.clip_frames, "psnr_db": rows}  # fmt: skip
    (RESULTS / "sharpness.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
