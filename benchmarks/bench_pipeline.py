"""GIDPipeline end to end on 2 CPU threads: sampling a spectral volume and rendering the loop, timed separately.

One 256x160 photo (assets/examples/meadow.jpg, centre-cropped to 1.6:1), 25 DPM-Solver++ steps with
classifier-free guidance at the checkpoint's default scale (both halves in one batch of 2; photo-guided resampling
as the checkpoint sets it), then 150 frames rendered at 256x160 by the pipeline's player with its learned renderer
and with pixel softmax splatting. The target for sampling is <= 5 s (issue "Real photos move"). The pipeline is
DEFAULT_CHECKPOINT (assets/gid-default) when present, else randomly initialised models of the default configs
(same cost, meaningless motion); the JSON says which.

--self-guidance U1,U2,... also measures what motion self-guidance changes, over --seeds seeds with
--guidance-steps steps: the loop's seam step |F_{T-1} - F_0| against the median and largest ordinary step
|F_{t+1} - F_t| (pixels at 256x160, mean over pixels), the motion amplitude mean_t |F_t|, L_g, and the time.

Like bench_models.py, the script re-runs itself with OMP_WAIT_POLICY=PASSIVE unless that is set (spinning OpenMP
threads stall on cores shared with other jobs). Times are the best of --repeats runs.
Run: python benchmarks/bench_pipeline.py [--checkpoint DIR] [--repeats 3] [--self-guidance 0,50,200 --seeds 3
--guidance-steps 10]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from diffusers import DPMSolverMultistepScheduler
from PIL import Image, ImageOps

from gid_pipeline import DEFAULT_CHECKPOINT, GIDInputError, GIDPipeline
from gid_pipeline.guidance import motion_step_statistics, self_guidance_loss
from gid_pipeline.media.images import image_to_tensor
from gid_pipeline.models import FrequencyUNet, SplatRenderer, make_spectral_vae
from gid_pipeline.player import Player
from gid_pipeline.training.train_unet import make_noise_scheduler

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
PHOTO = ROOT / "assets" / "examples" / "meadow.jpg"
HEIGHT, WIDTH, NUM_FRAMES, STEPS = 160, 256, 150, 25


def best_time(step: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    """(wall seconds, process CPU seconds) of the fastest of ``repeats`` runs and the last result; the first run
    is a warm-up. CPU seconds say what the work costs when other jobs share the cores (wall time then stretches)."""
    result = step()
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = step()
        best = min(best, (time.perf_counter() - start, time.process_time() - start_cpu))
    return *best, result


def load_pipeline(checkpoint: Path) -> tuple[GIDPipeline, str]:
    if (checkpoint / "model_index.json").is_file():
        return GIDPipeline.from_pretrained(checkpoint), str(checkpoint)
    torch.manual_seed(0)
    unet = FrequencyUNet(normalization_scales=[1.0] * 16)
    scheduler = DPMSolverMultistepScheduler.from_config(
        make_noise_scheduler("v_prediction").config, algorithm_type="dpmsolver++"
    )
    pipe = GIDPipeline(make_spectral_vae(scaling_factor=0.5), unet, scheduler, SplatRenderer())
    return pipe, "random models of the default configs (no checkpoint)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT, help="pipeline folder to time")
    parser.add_argument("--self-guidance", type=lambda text: [float(u) for u in text.split(",")], default=[])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--guidance-steps", type=int, default=10)
    args = parser.parse_args()
    if "OMP_WAIT_POLICY" not in os.environ:  # OpenMP reads it at start-up only
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    torch.set_num_threads(2)

    pipe, source = load_pipeline(args.checkpoint)
    pipe.set_progress_bar_config(disable=True)
    if not isinstance(pipe.scheduler, DPMSolverMultistepScheduler):
        pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="dpmsolver++")
    photo = image_to_tensor(np.asarray(ImageOps.fit(Image.open(PHOTO).convert("RGB"), (WIDTH, HEIGHT))))[None]

    def sample(steps: int = STEPS, seed: int = 0, self_guidance_scale: float = 0.0):
        return pipe.predict_spectral_volume(
            photo, num_inference_steps=steps, num_frames=NUM_FRAMES,
            self_guidance_scale=self_guidance_scale, generator=torch.Generator().manual_seed(seed),
        )  # fmt: skip

    rows = []
    with torch.inference_mode():
        seconds, cpu_seconds, volumes = best_time(sample, args.repeats)
        rows.append({"name": f"sample ({STEPS} DPM-Solver++ steps, CFG)", "seconds": seconds,
                     "cpu_seconds": cpu_seconds})  # fmt: skip
        players = {"learned renderer": pipe.player, "pixel splatting": Player()}
        if pipe.renderer is None:
            del players["learned renderer"]
        for name, player in players.items():
            seconds, cpu_seconds, _ = best_time(lambda player=player: player.render(photo[0], volumes[0]), args.repeats)
            rows.append({"name": f"render {NUM_FRAMES} frames, {name}", "seconds": seconds,
                         "cpu_seconds": cpu_seconds, "fps": NUM_FRAMES / seconds})  # fmt: skip

    guidance = []
    for scale in args.self_guidance:
        stats, losses, times = [], [], []
        for seed in range(args.seeds):
            start = time.perf_counter()
            try:
                (volume,) = sample(args.guidance_steps, seed, scale)
            except GIDInputError:  # too large a scale diverges; say so in the table
                break
            times.append(time.perf_counter() - start)
            entry = motion_step_statistics(volume.spectrum, NUM_FRAMES)
            if not all(math.isfinite(value) for value in entry.values()):  # finite spectrum, overflowing motion
                break
            stats.append(entry)
            losses.append(float(self_guidance_loss(volume.spectrum[None], NUM_FRAMES)))
        if len(stats) < args.seeds:
            guidance.append({"u": scale, "diverged": True})
            continue
        mean = {key: sum(entry[key] for entry in stats) / len(stats) for key in stats[0]}
        guidance.append({"u": scale, **mean, "seam_over_median": mean["seam_step"] / mean["median_step"],
                         "loss": sum(losses) / len(losses), "seconds": min(times)})  # fmt: skip

    load = os.getloadavg()[0]
    print(f"pipeline: {source}; 2 threads, {WIDTH}x{HEIGHT}, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, "
          f"load {load:.1f}")  # fmt: skip
    print(f"{'step':<44} {'best s':>8} {'CPU s':>8} {'fps':>7}")
    for row in rows:
        fps = f"{row['fps']:7.1f}" if "fps" in row else ""
        print(f"{row['name']:<44} {row['seconds']:8.2f} {row['cpu_seconds']:8.2f} {fps}")
    if guidance:
        print(f"\nself-guidance ({args.guidance_steps} steps, mean of {args.seeds} seeds; px at {WIDTH}x{HEIGHT})")
        print(f"{'u':>6} {'seam':>7} {'median':>7} {'max':>7} {'seam/med':>8} {'ampl':>7} {'L_g':>7} {'s':>7}")
        for entry in guidance:
            if entry.get("diverged"):
                print(f"{entry['u']:6g} diverged (non-finite or overflowing displacements)")
                continue
            print(f"{entry['u']:6g} {entry['seam_step']:7.3f} {entry['median_step']:7.3f} {entry['max_step']:7.3f} "
                  f"{entry['seam_over_median']:8.2f} {entry['amplitude']:7.3f} {entry['loss']:7.3f} "
                  f"{entry['seconds']:7.1f}")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "pipeline.json").write_text(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": args.repeats,
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "load_average_1min": load, "pipeline": source,
        "size": f"{WIDTH}x{HEIGHT}", "num_frames": NUM_FRAMES, "steps": STEPS,
        "guidance_scale": pipe.config.default_guidance_scale, "target_sample_seconds": 5.0, "rows": rows,
        "self_guidance": guidance, "self_guidance_steps": args.guidance_steps, "self_guidance_seeds": args.seeds,
    }, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
