"""Learned renderer vs pixel renderer: speed of a 150-frame loop, and (with --renderer) quality on held-out triples.

Speed: ``rendering.render_loop`` of 150 frames (motion synthesis, W, rendering: everything but video encoding) of
a procedural scene's spectral volume (K = 16), at 256x160 and 512x320, on 2 CPU threads, best of --repeats after
a warm-up. Rows: the pixel renderer (renderer=None) and SplatRenderer with each --configs entry (random weights
with a non-zero output layer: the cost does not depend on the weights). Targets of issue 6: <= 8 s at 256x160 and
<= 30 s at 512x320 for the default config.

Quality (--renderer PATH, a SplatRenderer export): held-out procedural scenes (seeds >= 10,000,000, never trained
on), 30-frame clips at 6 fps with exact motion and rendered frames; frame t rendered from frame 0 with the exact
F_t and W, against the real frame t. Rows: the learned renderer, pixel softmax splatting as the loop renders it
without a renderer (softmax_metric at DEFAULT_SHARPNESS), pixel softmax splatting with the trained model's metric
(temperature * W: the learned renderer without its networks), and frame 0 itself (no motion).

The load average is recorded with the numbers: the cores are shared with training jobs. Unless OMP_WAIT_POLICY
is set, the script re-runs itself with OMP_WAIT_POLICY=PASSIVE (see bench_models.py for why).

Run: python benchmarks/bench_renderer.py [--repeats 3] [--renderer /work/runs/renderer/renderer --scenes 16]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from bench_models import best_time  # the sibling script's timer: fastest wall and CPU time after a warm-up

from gid_pipeline.data.triples import HELD_OUT_SEED, ProceduralClips
from gid_pipeline.media.images import image_to_tensor
from gid_pipeline.models.render_losses import ssim
from gid_pipeline.models.renderer import DEFAULT_SCALE_CHANNELS, SplatRenderer
from gid_pipeline.procedural.scenes import generate_scene
from gid_pipeline.rendering.loop import DEFAULT_SHARPNESS, render_frames, render_loop, softmax_metric

RESULTS = Path(__file__).parent / "results"
NUM_FRAMES, K = 150, 16
SIZES = ((256, 160), (512, 320))
TARGET_SECONDS = {(256, 160): 8.0, (512, 320): 30.0}


def parse_channels(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(","))


def speed(configs: list[tuple[int, ...]], repeats: int, sizes: list[tuple[int, int]]) -> list[dict]:
    rows = []
    for width, height in sizes:
        scene = generate_scene(HELD_OUT_SEED, (width, height), NUM_FRAMES, num_frequencies=K,
                               return_displacements=False)  # fmt: skip
        image, spectrum = image_to_tensor(scene.image), scene.spectrum
        candidates: list[tuple[str, SplatRenderer | None]] = [("pixel", None)]
        for channels in configs:
            torch.manual_seed(0)
            model = SplatRenderer(scale_channels=channels).eval()
            torch.nn.init.normal_(model.conv_out.weight, std=0.01)
            candidates.append((f"learned {','.join(map(str, channels))}", model))
        for name, model in candidates:

            def step(model: SplatRenderer | None = model, image=image, spectrum=spectrum) -> torch.Tensor:
                return render_loop(image, spectrum, NUM_FRAMES, renderer=model)

            seconds, cpu_seconds = best_time(step, repeats)
            rows.append({
                "renderer": name, "size": f"{width}x{height}", "seconds": seconds, "cpu_seconds": cpu_seconds,
                "fps": NUM_FRAMES / seconds, "target_seconds": TARGET_SECONDS.get((width, height)),
                "parameters": 0 if model is None else sum(p.numel() for p in model.parameters()),
                "load_average_1min": os.getloadavg()[0],
            })  # fmt: skip
            print(f"{name:<24} {width}x{height}  {seconds:6.2f} s  {NUM_FRAMES / seconds:6.1f} frames/s  "
                  f"CPU {cpu_seconds:6.2f} s  load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    return rows


def psnr(frames: torch.Tensor, target: torch.Tensor) -> float:
    return float(-10.0 * torch.log10((frames - target).square().mean().clamp_min(1e-10)))


@torch.inference_mode()
def quality(renderer_path: Path, scenes: int, times: list[int]) -> dict:
    """PSNR / SSIM of each renderer over scenes x times held-out triples (means over triples)."""
    model = SplatRenderer.from_pretrained(renderer_path).eval()
    temperature = float(model.temperature)
    clips = ProceduralClips(first_seed=HELD_OUT_SEED, held_out=True)
    scores: dict[str, dict[str, list[float]]] = {}
    for index in range(scenes):
        clip = clips(index)
        image = torch.from_numpy(clip.frames[0]).permute(2, 0, 1).float().div(255).unsqueeze(0)
        targets = torch.from_numpy(clip.frames[times]).permute(0, 3, 1, 2).float().div(255)
        flow, metric = clip.displacements[times], clip.metric.unsqueeze(0)
        rendered = {
            "learned": model(image, flow, metric),
            f"pixel softmax (loop default, sharpness {DEFAULT_SHARPNESS:g})": render_frames(
                image, flow, softmax_metric(clip.metric)
            ),
            f"pixel softmax (metric {temperature:.2f} W)": render_frames(image, flow, temperature * metric),
            "no motion (frame 0)": image.expand_as(targets),
        }
        for name, frames in rendered.items():
            frames = frames.clamp(0, 1)
            entry = scores.setdefault(name, {"psnr": [], "ssim": []})
            for frame, target in zip(frames, targets, strict=True):
                entry["psnr"].append(psnr(frame, target))
                entry["ssim"].append(float(ssim(frame[None], target[None])))
    summary = {name: {key: float(np.mean(values)) for key, values in entry.items()} for name, entry in scores.items()}
    learned = np.array(scores["learned"]["psnr"])
    for name, entry in scores.items():
        summary[name]["learned_gain_db"] = float(np.mean(learned - np.array(entry["psnr"])))
        summary[name]["learned_wins"] = float(np.mean(learned > np.array(entry["psnr"])))
    print(f"\nheld-out: {scenes} scenes x t in {times} (seeds >= {HELD_OUT_SEED}), {model.config.scale_channels}")
    print(f"{'renderer':<44} {'PSNR dB':>8} {'SSIM':>7} {'learned gain':>13} {'wins':>6}")
    for name, row in summary.items():
        print(f"{name:<44} {row['psnr']:8.2f} {row['ssim']:7.4f} {row['learned_gain_db']:+12.2f}  "
              f"{row['learned_wins']:5.0%}")  # fmt: skip
    return {"renderer": str(renderer_path), "scenes": scenes, "times": times, "temperature": temperature,
            "scale_channels": list(model.config.scale_channels), "rows": summary}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--configs", type=parse_channels, nargs="*",
        default=[DEFAULT_SCALE_CHANNELS, (12, 24, 48), (16, 32, 64)], help="scale_channels to time, e.g. 8,16,32,64",
    )  # fmt: skip
    parser.add_argument("--renderer", type=Path, help="a trained SplatRenderer export: also measure its quality")
    parser.add_argument("--scenes", type=int, default=16, help="held-out scenes for the quality check")
    parser.add_argument("--times", type=int, nargs="*", default=[3, 8, 13, 18, 23, 28], help="frames t (< 30)")
    parser.add_argument("--no-speed", action="store_true", help="only the quality check")
    parser.add_argument("--sizes", nargs="*", default=[f"{w}x{h}" for w, h in SIZES], help="e.g. 256x160")
    args = parser.parse_args()
    if "OMP_WAIT_POLICY" not in os.environ:  # OpenMP reads it at start-up only
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    torch.set_num_threads(2)
    load_before = os.getloadavg()[0]
    results: dict = {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "num_frames": NUM_FRAMES,
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "load_average_1min_before": load_before,
    }  # fmt: skip
    print(f"load average before: {load_before:.1f} (2 cores)")
    if not args.no_speed:
        sizes = [tuple(int(v) for v in text.split("x")) for text in args.sizes]
        results["speed"] = speed(args.configs, args.repeats, sizes)
    if args.renderer is not None:
        results["quality"] = quality(args.renderer, args.scenes, args.times)
    results["load_average_1min_after"] = os.getloadavg()[0]
    print(f"load average after: {results['load_average_1min_after']:.1f}")
    RESULTS.mkdir(exist_ok=True)
    name = "renderer.json" if not args.no_speed else "renderer_quality.json"
    (RESULTS / name).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
