"""Look at a built texture bank: one contact sheet per material, to check that every crop shows its label.

    python scripts/preview_texture_bank.py /work/texture_bank --out /tmp/texture_bank_preview

Writes DIR/<material>.png: every crop of that material (tiles of --tile px, labelled with the crop id), then a row
of --samples patches drawn by TextureBank.sample (flip, rotation, zoom, colour jitter, mirroring) at --tile px.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from gid_pipeline.procedural.texture_bank import TextureBank


def tile(image: np.ndarray, size: int, text: str) -> np.ndarray:
    """(h, w, 3) uint8 RGB -> (size + 16, size + 4, 3) tile: the image fitted in size x size, text underneath."""
    out = np.full((size + 16, size + 4, 3), 255, np.uint8)
    scale = size / max(image.shape[:2])
    fitted = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))))
    out[: fitted.shape[0], : fitted.shape[1]] = fitted
    cv2.putText(out, text[:28], (2, size + 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def grid(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    """Tiles of one shape -> rows of ``columns`` tiles (the last row padded white)."""
    blank = np.full_like(tiles[0], 255)
    tiles = tiles + [blank] * (-len(tiles) % columns)
    return np.vstack([np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bank", type=Path, help="a bank written by `gid texture-bank -o DIR`")
    parser.add_argument("--out", type=Path, required=True, help="folder for the sheets")
    parser.add_argument("--tile", type=int, default=160, help="tile size, px (160)")
    parser.add_argument("--columns", type=int, default=8, help="tiles per row (8)")
    parser.add_argument("--samples", type=int, default=8, help="sampled patches per material (8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampled patches (0)")
    args = parser.parse_args()

    bank = TextureBank.load(args.bank)
    rng = np.random.default_rng(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for material in bank.materials:
        crops = [
            tile(image, args.tile, record.id)
            for record, image in zip(bank.records, bank.images, strict=True)
            if record.material == material
        ]
        samples = [
            tile((bank.sample(rng, material, args.tile, args.tile) * 255).round().astype(np.uint8), args.tile, "sample")
            for _ in range(args.samples)
        ]
        sheet = np.vstack([grid(crops, args.columns), grid(samples, args.columns)])
        cv2.imwrite(str(args.out / f"{material}.png"), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"{material}: {len(crops)} crops -> {args.out / f'{material}.png'}")


if __name__ == "__main__":
    main()
