"""The app's latency on this machine: seconds from a request to its video, through Gradio's own server.

The app (app.py) is launched in this process and driven over HTTP with gradio_client, so every figure includes
the upload, the queue, the work, the H.264 encoding and the download of the result. The model is the default
checkpoint (assets/gid-default) unless --checkpoint says otherwise. Rows:

- loop cold: the process's first Loop request, default settings (25 steps, 150 frames, 512 px): loads the
  pipeline, predicts, renders;
- loop 512 / loop 256: Loop at default settings with a new seed per run (predict + render), best of --repeats;
- loop 256 cached: the same photo and seed again with another motion scale (render only: the prediction cache);
- poke first: the first poke of a new photo and seed (predict + render 150 frames at 512 px), best of --repeats;
- poke cached: a further poke of that photo (render only), best of --repeats;
- from video: tests/data/tree.avi frames 0-53 at the tab's default 320 px (flow, fit, render), best of --repeats.

"cpu_s" is the CPU time of this process (server threads included) for the same request: what the work costs,
which other jobs on the machine change far less than the wall clock. Results go to benchmarks/results/app.json.
Run: python benchmarks/bench_app.py [--checkpoint DIR] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
PHOTOS = [ROOT / "assets" / "examples" / name for name in ("meadow.jpg", "dandelion.jpg", "marigold.jpg")]
CLIP = ROOT / "tests" / "data" / "tree.avi"
STEPS, GUIDANCE, FRAMES = 25, 2.75, 150  # the app's defaults


def load_app():
    spec = importlib.util.spec_from_file_location("gid_app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gid_app"] = module
    spec.loader.exec_module(module)
    return module


def timed(request: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process, result) of one request."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = request()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="GIDPipeline folder (default: assets/gid-default)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per row, best kept (3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client, handle_file

    from gid_pipeline.video import probe_video

    app = load_app()
    checkpoint = app.resolve_checkpoint(args.checkpoint)
    demo = app.build_demo(checkpoint)
    app.launch(demo, prevent_thread_lock=True, quiet=True)
    client = Client(demo.local_url, verbose=False)
    engine = app.engine_for(checkpoint)

    renderer = "learned" if engine.device == "cuda" else "pixel"  # the app's default

    def loop(photo: Path, size: int, seed: int, scale: float = 1.0):
        return client.predict(
            handle_file(str(photo)), size, FRAMES, scale, STEPS, GUIDANCE, seed, renderer, api_name="/loop"
        )

    def poke(photo: Path, seed: int, x: float, y: float):
        return client.predict(
            handle_file(str(photo)), None, x, y, 0, 10, 0.2, 0, FRAMES, 512, seed, STEPS, GUIDANCE, api_name="/poke"
        )

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
                "video": f"{info.width}x{info.height}, {info.num_frames} frames, {info.codec}",
            }
        )
        print(f"{name:18s} {wall:7.2f} s  (cpu {cpu:6.2f} s)  {rows[-1]['video']}", flush=True)

    first = lambda result: result[0]  # noqa: E731 (Loop and From video return (video, spectral volume))
    record("loop cold", [timed(lambda: loop(PHOTOS[0], 512, seed=0))], first)
    seeds = iter(range(100, 1000))
    record("loop 512", [timed(lambda: loop(PHOTOS[0], 512, next(seeds))) for _ in range(args.repeats)], first)
    record("loop 256", [timed(lambda: loop(PHOTOS[0], 256, next(seeds))) for _ in range(args.repeats)], first)
    seed = next(seeds)
    loop(PHOTOS[0], 256, seed)
    predictions = engine.predictions
    record("loop 256 cached", [timed(lambda: loop(PHOTOS[0], 256, seed, 1.5)) for _ in range(args.repeats)], first)
    assert engine.predictions == predictions, "the cached loop ran the model"
    record(
        "poke first",
        [timed(lambda: poke(PHOTOS[1], next(seeds), 500.0, 200.0)) for _ in range(args.repeats)],
        lambda video: video,
    )
    seed = next(seeds)
    poke(PHOTOS[2], seed, 500.0, 300.0)
    record(
        "poke cached",
        [timed(lambda: poke(PHOTOS[2], seed, 520.0, 280.0)) for _ in range(args.repeats)],
        lambda video: video,
    )
    record("from video", [timed(from_video) for _ in range(args.repeats)], first)
    demo.close()

    result = {
        "checkpoint": checkpoint,
        "device": engine.device,
        "torch": torch.__version__,
        "threads": args.threads,
        "load_average_1min": os.getloadavg()[0],
        "settings": {"steps": STEPS, "guidance": GUIDANCE, "frames": FRAMES, "photo": PHOTOS[0].name},
        "model_predictions": engine.predictions,
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "app.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / 'app.json'}")


if __name__ == "__main__":
    main()
