"""Dataset building throughput: `gid prepare-data` on real clips and on procedural scenes, 1 vs 2 workers.

Real: copies of tests/data/tree.avi at 256x160, windows of T = 40 frames at 15 fps every 5 frames (6 windows a
copy): windows per minute, counting kept and rejected ones, from the first probe to the saved statistics (so
worker start-up, decoding, flow with its backward checks, filters, encoding, shard writing and the normalisation
pass are all in). Procedural: scenes at the paper's 256x160, T = 150 at 30 fps, K = 16: samples per minute.
Also the shard bytes per sample, and the fixed cost of starting and stopping a pool of 2 worker processes.
The cores are shared with other jobs, so the cases are interleaved, each runs --repeats times, the best (fastest)
run is reported, and the load average seen by every run is recorded.
Run: python benchmarks/bench_prepare_data.py [--repeats 3] [--copies 4] [--scenes 48];
writes benchmarks/results/bench_prepare_data.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gid_pipeline.data.builder import (
    BuildSummary,
    SampleConfig,
    VideoConfig,
    _Runner,
    prepare_procedural_dataset,
    prepare_video_dataset,
)
from gid_pipeline.data.shards import read_manifest

TREE = Path(__file__).parents[1] / "tests" / "data" / "tree.avi"
RESULTS = Path(__file__).parent / "results"


def timed_build(build: Callable[[Path], BuildSummary]) -> dict:
    """Build into a fresh directory: seconds, items processed (kept + rejected), kept, shard bytes per sample."""
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "dataset"
        load = os.getloadavg()[0]
        start = time.perf_counter()
        summary = build(output)
        seconds = time.perf_counter() - start
        manifest = read_manifest(output)
    shard_bytes = sum(shard["num_bytes"] for shard in manifest["shards"])
    return {
        "seconds": seconds,
        "items": manifest["num_samples"] + len(manifest["rejected"]),
        "kept": summary.num_samples,
        "bytes_per_sample": shard_bytes / max(1, summary.num_samples),
        "load_average": load,
    }


def pool_overhead() -> float:
    """Seconds to start 2 worker processes, get a trivial result from each, and stop them."""
    start = time.perf_counter()
    with _Runner(2) as runner:
        list(runner.imap(abs, [-1, -2]))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--copies", type=int, default=4, help="copies of tree.avi (6 windows each)")
    parser.add_argument("--scenes", type=int, default=48, help="procedural scenes per run")
    args = parser.parse_args()

    real_config = SampleConfig(size=(256, 160), num_frames=40, fps=15.0, num_frequencies=16)
    video = VideoConfig(stride=5)
    runs: dict[str, list[dict]] = {}
    overheads = []
    with tempfile.TemporaryDirectory() as scratch:
        clips = Path(scratch) / "clips"
        clips.mkdir()
        for copy in range(args.copies):
            shutil.copy(TREE, clips / f"tree{copy}.avi")
        for _ in range(args.repeats):  # interleaved, so that every case sees the same mix of outside load
            overheads.append(pool_overhead())
            for workers in (1, 2):
                runs.setdefault(f"real, {workers} worker(s)", []).append(
                    timed_build(lambda out, w=workers: prepare_video_dataset(clips, out, real_config, video, workers=w))
                )
                runs.setdefault(f"procedural, {workers} worker(s)", []).append(
                    timed_build(lambda out, w=workers: prepare_procedural_dataset(args.scenes, out, workers=w))
                )

    cases = {}
    for name, case_runs in runs.items():
        best = min(case_runs, key=lambda run: run["seconds"])
        cases[name] = {**best, "per_minute": 60.0 * best["items"] / best["seconds"], "runs": case_runs}
    print(f"{'case':26} {'items':>6} {'kept':>5} {'best s':>8} {'items/min':>10} {'MB/sample':>10} {'load':>5}")
    for name, case in cases.items():
        print(
            f"{name:26} {case['items']:6d} {case['kept']:5d} {case['seconds']:8.1f} {case['per_minute']:10.1f} "
            f"{case['bytes_per_sample'] / 1e6:10.2f} {case['load_average']:5.1f}"
        )
    print(f"pool of 2 workers, start + stop: best {min(overheads):.1f} s")
    report = {
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
        },
        "real": {"clip": TREE.name, "copies": args.copies, "size": [256, 160], "frames": 40, "fps": 15, "stride": 5},
        "procedural": {"scenes": args.scenes, "size": [256, 160], "frames": 150, "fps": 30, "num_frequencies": 16},
        "repeats": args.repeats,
        "pool_start_stop_s": overheads,
        "cases": cases,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_prepare_data.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / 'bench_prepare_data.json'}")


if __name__ == "__main__":
    main()
