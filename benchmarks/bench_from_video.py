"""`gid from-video` on the real tree clip, end to end and phase by phase, on 2 threads.

Run: python benchmarks/bench_from_video.py [--repeats 3]
Phases: decode (read_video), flow (DIS, frame 0 -> every frame), fit (fit_loop_spectrum), render+encode (softmax
splatting, pull-push fill, H.264). Also the whole command as a user runs it (a fresh process, imports included).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

from gid_pipeline.media.images import image_to_tensor
from gid_pipeline.media.video import read_video
from gid_pipeline.media.writer import VideoWriter
from gid_pipeline.motion.clip import clip_motion
from gid_pipeline.rendering.loop import iter_loop_frames

CLIP = Path(__file__).parents[1] / "tests" / "data" / "tree.avi"
RESULTS = Path(__file__).parent / "results"
SIZES = ((320, 240), (256, 160))  # the clip's own resolution (4:3), and the model's (resized, 16:10)


def phases(size: tuple[int, int], out_dir: Path) -> dict[str, float]:
    timings = {}
    start = time.perf_counter()
    clip = read_video(CLIP, fps=15, num_frames=54, size=size)
    timings["decode"] = time.perf_counter() - start
    start = time.perf_counter()
    motion = clip_motion(clip.frames, clip.fps)
    timings["flow+fit"] = time.perf_counter() - start
    start = time.perf_counter()
    with VideoWriter(out_dir / "loop.mp4", clip.fps) as writer:
        for frames in iter_loop_frames(image_to_tensor(motion.image), motion.volume.spectrum, 54):
            writer.write(frames)
    timings["render+encode"] = time.perf_counter() - start
    timings["total"] = sum(timings.values())
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            best = min((phases(size, Path(tmp)) for _ in range(args.repeats)), key=lambda t: t["total"])
            rows.append({"size": f"{size[0]}x{size[1]}", "frames": 54, **best})
        command = [sys.executable, "-m", "gid_pipeline.cli", "from-video", str(CLIP), "-o", f"{tmp}/cli.mp4",
                   "--frames", "54", "--fps", "15"]
        walls = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
    print(f"{'size':>8} {'decode':>8} {'flow+fit':>9} {'render+enc':>11} {'total s':>8}")
    for row in rows:
        print(f"{row['size']:>8} {row['decode']:8.3f} {row['flow+fit']:9.3f} {row['render+encode']:11.3f} "
              f"{row['total']:8.3f}")
    print(f"`gid from-video tree.avi --frames 54 --fps 15` in a fresh process: {min(walls):.2f} s (best of "
          f"{args.repeats})")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_from_video.json").write_text(
        json.dumps({"rows": rows, "cli_wall_seconds": min(walls), "threads": 2}, indent=2))


if __name__ == "__main__":
    main()
