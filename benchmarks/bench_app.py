"""The app's latency and memory on this machine: seconds from a request to its files, through Gradio's own server.

The app (app.py) is launched in this process and driven over HTTP with gradio_client, so every figure includes
the upload, the queue, the work, the H.264 / GIF encoding and the download of the results. The model is the
default checkpoint (assets/gid-default) unless --checkpoint says otherwise. Rows:

- loop cold: the process's first Loop request at the app's defaults (25 steps, 512 px, 30 fps, 5 s, speed 1,
  pixel renderer on a CPU): loads the pipeline, predicts, renders one period, writes mp4 + GIF + heatmap;
- loop 512 / loop 256: Loop at default settings with a new seed per run (predict + render), best of --repeats;
- loop 256 cached: the same photo and seed again with another motion scale (render only: the prediction cache);
- loop 512 cached, 2x speed 20 s: the period halves (75 frames rendered once), repeated 8 times in the mp4;
- poke first: the first poke of a new photo and seed at the poke defaults (384 px, 90 frames), best of --repeats;
- poke cached: a further poke of that photo (render only), best of --repeats;
- poke cached 512 px 150 f: the same at the former defaults (512 px, 150 frames), to show what they cost;
- poke after loop: the Loop tab's photo and settings carried over: the first poke reuses the loop's prediction;
- from video: tests/data/tree.avi frames 0-53 at the tab's default 320 px (flow, fit, render), best of --repeats;
- queued x8, round N: 4 Loop requests (new seeds) and 4 cached pokes submitted at once with gradio_client.submit:
  all must succeed; the row's seconds are until the last finishes. --queue-rounds rounds, memory after each.

"cpu_s" is the CPU time of this process (server threads included) plus its finished child processes (ffmpeg):
what the work costs, which other jobs on the machine change far less than the wall clock. Memory: the process's
peak resident set (ru_maxrss) and its current RSS, before and after the queued requests (flat = no leak, no
growth with the queue). Results go to benchmarks/results/app.json.
Run: python benchmarks/bench_app.py [--checkpoint DIR] [--repeats 2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
PHOTOS = [ROOT / "assets" / "examples" / name for name in ("meadow.jpg", "dandelion.jpg", "marigold.jpg")]
CLIP = ROOT / "tests" / "data" / "tree.avi"
STEPS, GUIDANCE, SIZE, FPS, DURATION = 25, 2.75, 512, 30.0, 5.0  # the app's Loop defaults
POKE_FRAMES, POKE_SIZE = 90, 384  # the app's poke defaults (gid_pipeline.app.pokes.POKE_FRAMES, POKE_SIDE)




def cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children (ffmpeg encoders), user + system."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def peak_rss_mb() -> float:
    """Peak resident set of this process so far, MB (Linux reports ru_maxrss in kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss / 1024**2


def timed(request: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds, result) of one request."""
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = request()
    return time.perf_counter() - wall, cpu_seconds() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="GIDPipeline folder (default: assets/gid-default)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per row, best kept (2)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    parser.add_argument("--queue-rounds", type=int, default=2, help="rounds of 8 queued requests (2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client, handle_file

    import gid_pipeline.app as app
    from gid_pipeline.media.video import probe_video
    checkpoint = app.resolve_checkpoint(args.checkpoint)
    demo = app.build_demo(checkpoint)
    app.launch(demo, prevent_thread_lock=True, quiet=True)
    client = Client(demo.local_url, verbose=False)
    engine = app.engine_for(checkpoint)
    renderer = "learned" if engine.device == "cuda" else "pixel"  # the app's default

    def loop_args(photo: Path, size: int, seed: int, scale: float = 1.0, speed: float = 1.0, duration=DURATION):
        return (handle_file(str(photo)), size, FPS, duration, speed, scale, STEPS, GUIDANCE, seed, renderer)

    def loop(*args, **kwargs):
        return client.predict(*loop_args(*args, **kwargs), api_name="/loop")

    def poke_args(photo: Path, seed: int, x: float, y: float, frames: int = POKE_FRAMES, size: int = POKE_SIZE):
        return (handle_file(str(photo)), None, x, y, 0, 10, 0.2, 0, frames, size, seed, STEPS, GUIDANCE)

    def poke(*args, **kwargs):
        return client.predict(*poke_args(*args, **kwargs), api_name="/poke")

    def from_video():
        return client.predict(handle_file(str(CLIP)), 0, 3.6, 320, 1.0, api_name="/from_video")

    rows = []

    def record(name: str, runs: list[tuple[float, float, object]], video_of: Callable[[object], str]) -> None:
        wall, cpu, result = min(runs, key=lambda run: run[0])
        info = probe_video(video_of(result))
        rows.append(
            {
                "name": name,
                "seconds": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "runs": len(runs),
                "video": f"{info.width}x{info.height}, {info.num_frames} frames at {info.fps:g} fps, {info.codec}",
            }
        )
        print(f"{name:34s} {wall:7.2f} s  (cpu {cpu:6.2f} s)  {rows[-1]['video']}", flush=True)

    first = lambda result: result[0]  # noqa: E731 (Loop and From video return the video first)
    same = lambda video: video  # noqa: E731 (Poke returns the video)
    seeds = iter(range(100, 1000))
    record("loop cold", [timed(lambda: loop(PHOTOS[0], SIZE, seed=0))], first)
    record("loop 512", [timed(lambda: loop(PHOTOS[0], SIZE, next(seeds))) for _ in range(args.repeats)], first)
    record("loop 256", [timed(lambda: loop(PHOTOS[0], 256, next(seeds))) for _ in range(args.repeats)], first)
    seed = next(seeds)
    loop(PHOTOS[0], 256, seed)
    predictions = engine.predictions
    record("loop 256 cached", [timed(lambda: loop(PHOTOS[0], 256, seed, 1.5)) for _ in range(args.repeats)], first)
    loop(PHOTOS[0], SIZE, seed)
    record(
        "loop 512 cached, 2x speed 20 s",
        [timed(lambda: loop(PHOTOS[0], SIZE, seed, speed=2.0, duration=20)) for _ in range(args.repeats)],
        first,
    )
    assert engine.predictions == predictions, "a cached loop ran the model"
    record("poke first", [timed(lambda: poke(PHOTOS[1], next(seeds), 500.0, 200.0)) for _ in range(args.repeats)], same)
    seed = next(seeds)
    poke(PHOTOS[2], seed, 500.0, 300.0)
    record("poke cached", [timed(lambda: poke(PHOTOS[2], seed, 520.0, 280.0)) for _ in range(args.repeats)], same)
    record(
        "poke cached 512 px 150 f",
        [timed(lambda: poke(PHOTOS[2], seed, 520.0, 280.0, 150, 512)) for _ in range(args.repeats)],
        same,
    )
    # What the browser does after a loop: the poke tab takes the loop's photo and seed (app.carry_to_poke).
    seed = next(seeds)
    loop(PHOTOS[1], SIZE, seed)
    predictions = engine.predictions
    record("poke after loop", [timed(lambda: poke(PHOTOS[1], seed, 300.0, 300.0))], same)
    assert engine.predictions == predictions, "the poke after a loop ran the model"
    record("from video", [timed(from_video) for _ in range(args.repeats)], first)

    # 8 requests at once: 4 new loops and 4 cached pokes; the queue runs them one at a time (concurrency 1).
    # Several rounds: memory that is flat stops growing after the first (the prediction cache grows by one volume
    # per new seed, up to gid_pipeline.app.engine.CACHE_SIZE).
    memory = {"peak_rss_mb_before_queue": round(peak_rss_mb(), 1), "rss_mb_before_queue": current_rss_mb()}
    print("memory (MB) before:", memory, flush=True)
    for round_index in range(1, args.queue_rounds + 1):
        wall, cpu = time.perf_counter(), cpu_seconds()
        jobs = [client.submit(*loop_args(PHOTOS[0], SIZE, next(seeds)), api_name="/loop") for _ in range(4)]
        jobs += [client.submit(*poke_args(PHOTOS[2], seed, 400.0 + 20 * i, 300.0), api_name="/poke") for i in range(4)]
        results = [job.result(timeout=900) for job in jobs]
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        frames = [probe_video(first(result) if isinstance(result, tuple) else result).num_frames for result in results]
        assert frames == [150] * 4 + [POKE_FRAMES] * 4, frames
        name = f"queued x8 (4 loops + 4 pokes), round {round_index}"
        rows.append({"name": name, "seconds": round(wall, 3), "cpu_s": round(cpu, 3), "runs": 1,
                     "video": f"all 8 succeeded: {frames}"})  # fmt: skip
        print(f"{name:34s} {wall:7.2f} s  (cpu {cpu:6.2f} s)  all 8 succeeded", flush=True)
        memory |= {
            f"peak_rss_mb_after_round_{round_index}": round(peak_rss_mb(), 1),
            f"rss_mb_after_round_{round_index}": current_rss_mb(),
        }
        print("memory (MB):", memory, flush=True)
    memory = {key: round(value, 1) if isinstance(value, float) else value for key, value in memory.items()}
    volumes = list(engine._cache.values())  # what the prediction cache holds, for the memory figures
    cache_mb = sum(volume.spectrum.numel() * volume.spectrum.element_size() for volume in volumes) / 1024**2
    memory["prediction_cache"] = {"volumes": len(volumes), "mb": round(cache_mb, 1)}
    demo.close()

    result = {
        "checkpoint": checkpoint,
        "device": engine.device,
        "torch": torch.__version__,
        "threads": args.threads,
        "load_average_1min": os.getloadavg()[0],
        "settings": {
            "steps": STEPS,
            "guidance": GUIDANCE,
            "loop": {"size": SIZE, "fps": FPS, "duration_s": DURATION, "renderer": renderer},
            "poke": {"size": POKE_SIZE, "frames": POKE_FRAMES},
            "photo": PHOTOS[0].name,
        },
        "targets": {"loop_s": 30.0, "poke_s": 3.0},
        "model_predictions": engine.predictions,
        "memory": memory,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "app.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / 'app.json'}")


if __name__ == "__main__":
    main()
