"""How visible the loop seam is, for every source of motion and every output format (issue: seamless means
invisible). Two ratios, 1 for a seam like any other step (gid_pipeline.evaluation.seams):

- pixel: mean |frame[T-1] - frame[0]| over the median |frame[t+1] - frame[t]|, on the decoded video;
- motion: the same on the displacements of the loop (its trajectories' own seam step).

Rows: every example photo (assets/examples/*.jpg) through the pipeline, with the paper's motion self-guidance off
and on (to choose the default from the numbers); tests/data/tree.avi and every clip of a folder of clips
(default ../shared/data/real_val) through from-video's loop choice (motion.loop_window.clip_loop: the window
whose seam step looks like its own steps, its end measured from the closing frame, drift removed), with the share
of the clip's motion amplitude (RMS of the measured flow over the window) that the loop keeps. Medians over the
clips are printed last. Results go to benchmarks/results/seams.json.

Run: python benchmarks/bench_seams.py [--checkpoint assets/gid-default] [--clips DIR] [--long-side 256]
     [--steps 25] [--formats mp4,webm,gif] [--self-guidance 0,30] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gid_pipeline import GIDPipeline
from gid_pipeline.evaluation.seams import motion_seam_ratio, pixel_seam_ratio
from gid_pipeline.media.video import probe_video, read_video
from gid_pipeline.media.writer import write_video
from gid_pipeline.motion.flow import estimate_flow
from gid_pipeline.motion.loop_window import clip_loop
from gid_pipeline.player import Player
from gid_pipeline.spectral.transform import spectrum_to_motion
from gid_pipeline.spectral.volume import SpectralVolume

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"


def decoded_ratios(frames: np.ndarray, fps: float, formats: list[str], folder: Path) -> dict[str, float]:
    """Pixel seam ratio of (T, H, W, 3) uint8 frames as rendered and after each format's encode and decode."""
    ratios = {"rendered": pixel_seam_ratio(frames)}
    for suffix in formats:
        path = write_video(folder / f"loop.{suffix}", frames, fps=fps)
        ratios[suffix] = pixel_seam_ratio(read_video(path).frames)
    return ratios


def motion_ratio(volume: SpectralVolume) -> float:
    return motion_seam_ratio(spectrum_to_motion(volume.spectrum, volume.num_frames))


def to_uint8(frames: np.ndarray) -> np.ndarray:
    return (np.asarray(frames) * 255).round().clip(0, 255).astype(np.uint8)


def generated_rows(args: argparse.Namespace, folder: Path) -> list[dict]:
    pipe = GIDPipeline.from_pretrained(args.checkpoint)
    pipe.set_progress_bar_config(disable=True)
    rows = []
    for photo in sorted((ROOT / "assets" / "examples").glob("*.jpg")):
        image = Image.open(photo).convert("RGB")
        image.thumbnail((args.long_side, args.long_side))
        for scale in args.self_guidance:
            out = pipe(image, num_inference_steps=args.steps, self_guidance_scale=scale, output_type="np",
                       generator=torch.Generator().manual_seed(0))  # fmt: skip
            frames = to_uint8(out.frames[0])
            row = {"source": photo.name, "kind": "generated", "self_guidance": scale,
                   "motion": motion_ratio(out.spectral_volumes[0]),
                   **decoded_ratios(frames, 30.0, args.formats, folder)}  # fmt: skip
            rows.append(row)
            print(format_row(row), flush=True)
    return rows


def clip_rows(args: argparse.Namespace, clips: list[Path], folder: Path) -> list[dict]:
    player = Player.from_pretrained(args.checkpoint)
    rows = []
    for path in clips:
        fps = args.fps or min(probe_video(path).fps, 30.0)
        clip = read_video(path, fps=fps, long_side=args.long_side)
        motion, window = clip_loop(clip.frames, clip.fps, max_frames=args.max_frames)
        frames = clip.frames[window.start : window.start + window.num_frames]
        flow = torch.from_numpy(estimate_flow(frames).flow)
        loop = spectrum_to_motion(motion.volume.spectrum, motion.volume.num_frames)
        retention = float(loop.square().mean().sqrt() / flow.square().mean().sqrt())
        rendered = player.render(motion.image, motion.volume, output_type="np").frames[0]
        row = {"source": path.name, "kind": "clip", "start": window.start, "length": window.num_frames,
               "drift_px": float(np.median(motion.drift)) if motion.drift is not None else 0.0,
               "amplitude_kept": retention, "motion": motion_ratio(motion.volume),
               **decoded_ratios(to_uint8(rendered), clip.fps, args.formats, folder)}  # fmt: skip
        rows.append(row)
        print(format_row(row), flush=True)
    return rows


def format_row(row: dict) -> str:
    extra = (f"sg {row['self_guidance']:<5g}" if row["kind"] == "generated"
             else f"{row['start']:>4}+{row['length']:<4} kept {row['amplitude_kept']:.0%}")  # fmt: skip
    ratios = "  ".join(f"{key} {row[key]:.2f}" for key in ("motion", "rendered", "mp4", "webm", "gif") if key in row)
    return f"{row['source']:<24} {extra:<22} {ratios}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=str(ROOT / "assets" / "gid-default"))
    parser.add_argument("--clips", type=Path, default=ROOT.parent / "shared" / "data" / "real_val")
    parser.add_argument("--long-side", type=int, default=256)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--fps", type=float, help="sample clips at this rate (default: their own, at most 30)")
    parser.add_argument("--max-frames", type=int, default=150)
    parser.add_argument("--formats", type=lambda text: text.split(","), default=["mp4", "webm", "gif"])
    parser.add_argument("--self-guidance", type=lambda text: [float(v) for v in text.split(",")], default=[0.0, 30.0])
    parser.add_argument("--skip-generated", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clips = [ROOT / "tests" / "data" / "tree.avi", *sorted(args.clips.glob("*.mp4"))]
    with tempfile.TemporaryDirectory() as tmp:
        rows = [] if args.skip_generated else generated_rows(args, Path(tmp))
        rows += clip_rows(args, clips, Path(tmp))
    summary = {}
    for kind, extra in (("generated", "self_guidance"), ("clip", None)):
        groups: dict[object, list[dict]] = {}
        for row in rows:
            if row["kind"] == kind:
                groups.setdefault(row[extra] if extra else "all", []).append(row)
        for key, group in groups.items():
            keys = ["motion", "rendered", *args.formats] + (["amplitude_kept"] if kind == "clip" else [])
            medians = {name: statistics.median(row[name] for row in group) for name in keys}
            summary[f"{kind} {extra or ''} {key}".replace("  ", " ")] = medians
            print(f"median {kind:<10} {key!s:<6} " + "  ".join(f"{n} {v:.2f}" for n, v in medians.items()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "seams.json").write_text(json.dumps({"rows": rows, "medians": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
