"""What the photo-guided resampling of a spectral volume costs (spectral.guided.guided_resize_spectrum) beside the
plain bilinear resize (spectral.transform.resize_spectrum), on 2 CPU threads.

A K = 16 volume on the model's 256x160 grid resampled to output grids from 256x160 to 1024x640, guided by a photo
(assets/examples/meadow.jpg) at that size: bilinear, guided with the default 4x subsampled fit, and guided fitted
on the full model grid (subsampling 1: the plain guided filter, what the fast version saves). Times are the best of
--repeats runs; ratios are to bilinear in the same run. Results go to benchmarks/results/guided_resize.json.

Run: python benchmarks/bench_guided_resize.py [--radius R] [--repeats 5] [--threads 2]
(--radius defaults to the shipped checkpoint's guided_filter_radius)
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gid_pipeline.spectral.guided import DEFAULT_GUIDED_FILTER_EPS, guided_resize_spectrum, luma
from gid_pipeline.spectral.transform import resize_spectrum

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
SIZES = ((160, 256), (320, 512), (640, 1024))
SHIPPED = ROOT / "assets" / "gid-default" / "model_index.json"


def best_time(run: Callable[[], torch.Tensor], repeats: int) -> float:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radius", type=int, default=json.loads(SHIPPED.read_text())["guided_filter_radius"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    spectrum = torch.randn(1, 16, 4, 160, 256, generator=torch.Generator().manual_seed(0))
    photo = np.asarray(Image.open(ROOT / "assets/examples/meadow.jpg").convert("RGB"), np.float32) / 255.0
    photo = torch.from_numpy(photo).permute(2, 0, 1)[None]
    rows = []
    for height, width in SIZES:
        guide = luma(F.interpolate(photo, size=(height, width), mode="bilinear", antialias=True))
        variants = {
            "bilinear": partial(resize_spectrum, spectrum, (height, width)),
            "guided": partial(guided_resize_spectrum, spectrum, guide, args.radius, DEFAULT_GUIDED_FILTER_EPS),
            "guided_full_fit": partial(guided_resize_spectrum, spectrum, guide, args.radius,
                                       DEFAULT_GUIDED_FILTER_EPS, subsampling=1),
        }  # fmt: skip
        times = {name: best_time(run, args.repeats) for name, run in variants.items()}
        row = {"output": f"{width}x{height}", "seconds": times,
               "ratio_to_bilinear": {name: value / times["bilinear"] for name, value in times.items()}}  # fmt: skip
        rows.append(row)
        print(f"{width}x{height}: " + ", ".join(f"{name} {value * 1e3:.1f} ms ({row['ratio_to_bilinear'][name]:.1f}x)"
                                                for name, value in times.items()))  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    report = {"radius": args.radius, "num_frequencies": 16, "threads": args.threads, "rows": rows}
    (RESULTS / "guided_resize.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS / 'guided_resize.json'}")


if __name__ == "__main__":
    main()
