"""Throughput of the procedural scene generator, per core.

    cd /work/main && /work/venv/bin/python benchmarks/bench_procedural.py

Runs single-threaded (torch and OpenCV) at 256x160, T = 150 frames at 30 fps, K = 16, over seeds that cycle
through all scene types, in three modes: motion (displacements + spectrum, the default call), spectrum only
(return_displacements=False) and with all frames rendered (render_frames=True). Reports samples per minute
from wall time and from process CPU time (the latter is robust to other load on a shared machine), prints a
table and writes benchmarks/results/bench_procedural.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from gid_pipeline.procedural import SCENE_TYPES, generate_scene

RESULTS = Path(__file__).parent / "results" / "bench_procedural.json"


def measure(seeds: list[int], **kwargs) -> dict:
    """Generate one sample per seed; wall and CPU seconds per sample, overall and per scene type."""
    per_type: dict[str, list[float]] = {}
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    for seed in seeds:
        start = time.perf_counter()
        sample = generate_scene(seed, **kwargs)
        per_type.setdefault(sample.meta["scene_type"], []).append(time.perf_counter() - start)
    wall = (time.perf_counter() - wall_start) / len(seeds)
    cpu = (time.process_time() - cpu_start) / len(seeds)
    return {
        "samples": len(seeds),
        "wall_s_per_sample": wall,
        "cpu_s_per_sample": cpu,
        "samples_per_min_wall": 60.0 / wall,
        "samples_per_min_cpu": 60.0 / cpu,
        "wall_s_per_sample_by_type": {k: float(np.mean(v)) for k, v in sorted(per_type.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=50, help="samples for the motion-only modes")
    parser.add_argument("--render-samples", type=int, default=10, help="samples with all frames rendered")
    parser.add_argument("--first-seed", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

    config = {"size": (256, 160), "num_frames": 150, "fps": 30.0, "num_frequencies": 16}
    for seed in range(len(SCENE_TYPES)):  # warm-up: imports, allocator, first calls
        generate_scene(seed, **config)
    motion_seeds = list(range(args.first_seed, args.first_seed + args.samples))
    render_seeds = list(range(args.first_seed, args.first_seed + args.render_samples))
    modes = {
        "motion (displacements + spectrum)": measure(motion_seeds, **config),
        "spectrum only": measure(motion_seeds, return_displacements=False, **config),
        "render_frames=True (150 frames)": measure(render_seeds, render_frames=True, **config),
    }

    print("256x160, T=150 at 30 fps, K=16; torch and OpenCV on 1 thread")
    header = f"{'mode':36s} {'n':>4s} {'s/sample':>9s} {'per min (wall)':>15s} {'per min (CPU)':>14s}"
    print(header)
    print("-" * len(header))
    for name, r in modes.items():
        print(
            f"{name:36s} {r['samples']:4d} {r['wall_s_per_sample']:9.3f} "
            f"{r['samples_per_min_wall']:15.1f} {r['samples_per_min_cpu']:14.1f}"
        )
    print("\nwall seconds per sample by scene type")
    print(f"{'mode':36s} " + " ".join(f"{k:>8s}" for k in SCENE_TYPES))
    for name, r in modes.items():
        by_type = r["wall_s_per_sample_by_type"]
        print(f"{name:36s} " + " ".join(f"{by_type.get(k, float('nan')):8.3f}" for k in SCENE_TYPES))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(f"\nload average (1 min) at the end: {load}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "config": config,
        "threads": {"torch": torch.get_num_threads(), "opencv": cv2.getNumThreads()},
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "load_average_1min": load},
        "versions": {"torch": torch.__version__, "numpy": np.__version__, "opencv": cv2.__version__},
        "modes": modes,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
