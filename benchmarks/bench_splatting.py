"""Splatting throughput: frames per second for 150 frames, 3 channels, softmax mode, 2 threads.

Compares gid_pipeline.rendering.splatting.splat (adjoint of grid_sample, chunked) with a straightforward scatter-add
implementation in the same run. Each (method, size) runs in its own process so that its peak memory (max RSS) is
its own. Run: python benchmarks/bench_splatting.py [--frames 150] [--repeats 3] [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from gid_pipeline.rendering.splatting import splat

SIZES = ((256, 160), (512, 320), (1280, 720))
RESULTS = Path(__file__).parent / "results"


def scatter_add_softmax(values: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
    """Reference: bilinear softmax splatting with index_add_ over channels-last rows, four corners at once."""
    batch, channels, height, width = values.shape
    weights = torch.exp(metric - metric.amax(dim=(-2, -1), keepdim=True)).expand(batch, 1, height, width)
    payload = torch.cat([values * weights, weights], dim=1).permute(0, 2, 3, 1).reshape(-1, channels + 1)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    tx, ty = xs + flow[:, 0], ys + flow[:, 1]
    x0, y0 = tx.floor(), ty.floor()
    fx, fy = tx - x0, ty - y0
    x0, y0 = x0.long(), y0.long()
    base = (torch.arange(batch) * height * width).view(batch, 1, 1)
    out = torch.zeros(batch * height * width, channels + 1)
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xx, yy = x0 + dx, y0 + dy
        inside = (xx >= 0) & (xx < width) & (yy >= 0) & (yy < height)
        index = (base + yy.clamp(0, height - 1) * width + xx.clamp(0, width - 1)).flatten()
        out.index_add_(0, index, payload * (w * inside).reshape(-1, 1))
    out = out.view(batch, height, width, channels + 1).permute(0, 3, 1, 2)
    total = out[:, channels:]
    return torch.where(total > 0, out[:, :channels] / total.clamp_min(1e-30), 0.0)


def run_one(method: str, width: int, height: int, frames: int, repeats: int) -> dict:
    torch.set_num_threads(2)
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, height, width, generator=generator)
    # Smooth-ish motion of a few pixels, like a swaying tree at this resolution.
    flow = torch.nn.functional.interpolate(
        torch.randn(frames, 2, height // 16, width // 16, generator=generator) * (width / 128),
        size=(height, width), mode="bilinear", align_corners=False,
    )
    metric = torch.linalg.vector_norm(flow, dim=1, keepdim=True).mean(0, keepdim=True)
    values = image.expand(frames, -1, -1, -1)
    if method == "gid":
        def step():
            return splat(values, flow, metric, "softmax")
    else:
        # The reference holds all frames at once; run it in chunks of 16 to keep its memory comparable.
        def step():
            return torch.cat([
                scatter_add_softmax(values[i:i + 16], flow[i:i + 16], metric) for i in range(0, frames, 16)
            ])
    step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - start)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"method": method, "size": f"{width}x{height}", "frames": frames, "seconds": best,
            "fps": frames / best, "peak_rss_mib": peak_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="skip 1280x720")
    parser.add_argument("--one", nargs=3, metavar=("METHOD", "WIDTH", "HEIGHT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        method, width, height = args.one
        print(json.dumps(run_one(method, int(width), int(height), args.frames, args.repeats)))
        return
    rows = []
    for width, height in SIZES[:2] if args.quick else SIZES:
        for method in ("gid", "scatter_add"):
            command = [sys.executable, __file__, "--one", method, str(width), str(height),
                       "--frames", str(args.frames), "--repeats", str(args.repeats)]
            rows.append(json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout))
    print(f"{'size':>10} {'method':>12} {'fps':>8} {'s/150f':>8} {'peak MiB':>9} {'speedup':>8}")
    for row in rows:
        reference = next(r for r in rows if r["size"] == row["size"] and r["method"] == "scatter_add")
        print(f"{row['size']:>10} {row['method']:>12} {row['fps']:8.0f} {row['seconds']:8.3f} "
              f"{row['peak_rss_mib']:9.0f} {row['fps'] / reference['fps']:7.1f}x")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_splatting.json").write_text(json.dumps(
        {"torch": torch.__version__, "threads": 2, "channels": 3, "mode": "softmax", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
