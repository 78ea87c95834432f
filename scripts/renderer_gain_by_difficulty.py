"""Where does a learned renderer gain over pixel softmax splatting? Its PSNR gain per frame, grouped by how hard
the frame is for pixel splatting (its PSNR band), on held-out procedural scenes with exact motion.

    python scripts/renderer_gain_by_difficulty.py --renderer assets/gid-default/renderer --scenes 16

A loss aimed at pixel means (L1) can buy large gains on hard frames with small losses on easy ones; the
evaluation's mean PSNR counts both alike, and this table shows the trade.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from gid_pipeline.evaluation.metrics import psnr
from gid_pipeline.evaluation.rendering import LEARNED, SOFTMAX, procedural_render_cases, renderers
from gid_pipeline.models.renderer import SplatRenderer

BANDS = ((0, 30), (30, 35), (35, 40), (40, 45), (45, 101))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--renderer", type=Path, required=True, help="SplatRenderer folder")
    parser.add_argument("--scenes", type=int, default=16, help="held-out procedural scenes (16)")
    args = parser.parse_args()
    methods = renderers(SplatRenderer.from_pretrained(args.renderer))
    learned, pixel = [], []
    for case in procedural_render_cases(args.scenes):
        learned.append(psnr(methods[LEARNED](case, case.flows).clamp(0, 1), case.targets))
        pixel.append(psnr(methods[SOFTMAX](case, case.flows).clamp(0, 1), case.targets))
    learned_psnr, pixel_psnr = torch.cat(learned), torch.cat(pixel)
    print(f"mean PSNR: learned {learned_psnr.mean():.2f} dB, pixel softmax {pixel_psnr.mean():.2f} dB")
    print("pixel softmax PSNR band | frames | mean gain of the learned renderer (dB)")
    for low, high in BANDS:
        inside = (pixel_psnr >= low) & (pixel_psnr < high)
        if inside.any():
            gain = (learned_psnr[inside] - pixel_psnr[inside]).mean()
            print(f"{low}-{high} dB | {int(inside.sum())} | {gain:+.2f}")


if __name__ == "__main__":
    main()
