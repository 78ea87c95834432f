"""Look at procedural scenes: a contact sheet of frame 0 beside its motion amplitude, plus a few videos.

    python scripts/preview_procedural.py --out /tmp/procedural_preview --count 12 --videos 3

Writes DIR/contact_sheet.png (each tile: frame 0 | RMS displacement over the clip, turbo colour map from 0 to
the sheet's --amplitude-max pixels), DIR/scene_<seed>.mp4 for the first --videos seeds (render_frames=True),
and DIR/scene_<seed>_frame<t>.png stills of each video's frame 0 and of the frame where it moves most.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import torch

from gid_pipeline.media.writer import write_video
from gid_pipeline.procedural import SCENE_TYPES, generate_scene
from gid_pipeline.spectral.transform import amplitude


def amplitude_map(spectrum: torch.Tensor, maximum: float) -> np.ndarray:
    """(K, 4, H, W) spectrum -> (H, W, 3) uint8 RGB turbo map of the per-pixel RMS displacement (pixels)."""
    rms = (2.0 * amplitude(spectrum[1:]).square().sum(dim=0)).sqrt().numpy()
    level = np.clip(rms / maximum * 255.0, 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(level, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)


def label(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    cv2.putText(out, text, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(out, text, (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument("--count", type=int, default=12, help="scenes on the contact sheet")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--videos", type=int, default=3, help="how many of the scenes to render as mp4")
    parser.add_argument("--columns", type=int, default=3, help="image/amplitude pairs per sheet row")
    parser.add_argument(
        "--amplitude-max", type=float, default=3.0, help="pixels of RMS motion at the top colour"
    )
    parser.add_argument("--scene-type", choices=SCENE_TYPES, default=None, help="only this scene type")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    tiles = []
    for i in range(args.count):
        seed = args.first_seed + i
        render = i < args.videos
        sample = generate_scene(seed, render_frames=render, scene_type=args.scene_type)
        meta = sample.meta
        peak = sample.displacements.norm(dim=1).amax().item()
        text = f"{seed} {meta['scene_type']} {meta['lighting']} max {peak:.1f}px"
        tiles.append(
            np.concatenate([label(sample.image, text), amplitude_map(sample.spectrum, args.amplitude_max)], 1)
        )
        print(text, f"elements {meta['num_elements']} modes {meta['num_modes']}", flush=True)
        if render:
            assert sample.frames is not None
            write_video(args.out / f"scene_{seed}.mp4", sample.frames, meta["fps"])
            t_max = int(sample.displacements.norm(dim=1).flatten(1).amax(dim=1).argmax())
            for t in (0, t_max):
                frame = cv2.cvtColor(sample.frames[t], cv2.COLOR_RGB2BGR)
                cv2.imwrite(str(args.out / f"scene_{seed}_frame{t:03d}.png"), frame)
    blank = np.zeros_like(tiles[0])
    rows = [
        np.concatenate(
            tiles[r : r + args.columns] + [blank] * (args.columns - len(tiles[r : r + args.columns])), 1
        )
        for r in range(0, len(tiles), args.columns)
    ]
    sheet = np.concatenate(rows, 0)
    cv2.imwrite(str(args.out / "contact_sheet.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out / 'contact_sheet.png'}")


if __name__ == "__main__":
    main()
