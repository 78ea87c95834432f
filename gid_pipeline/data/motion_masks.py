"""The rough motion masks training shows the model (the format: gid_pipeline.motion.mask).

Training draws masks from the true moving region of each sample (``random_motion_mask``): often none at all, and
otherwise the region exact, eroded, dilated, partial (a few boxes of it) or as scribbles, because people paint
roughly; sometimes also a "stays still" mask of the still region, never overlapping the "moves" one.

A painted mask must win over what the photo looks like, and a procedural scene's true mask never disagrees with
its looks. So training may also edit the target to disagree (``edit_for_mask``): "override" paints part of what
moves "stays still" and stills it in the target; "transplant" copies the motion, shifted, onto still parts of the
frame and paints it "moves" there.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch

from ..errors import GIDInputError

# A pixel of a true spectral volume moves when its RMS displacement exceeds this fraction of the sample's 99th
# percentile (and MIN_MOVING_PX): exact procedural motion is exactly zero on still elements, while optical flow
# of a real clip has a noise floor; what barely moves (a grass blade at its root) is left unpainted.
MOVING_RELATIVE, MIN_MOVING_PX = 0.02, 0.005
MASK_STYLES = ("exact", "eroded", "dilated", "partial", "scribble")
EDITS = ("override", "transplant")


def moving_region(spectrum: torch.Tensor) -> torch.Tensor:
    """(K, 4, H, W) spectral volume in pixels -> (H, W) bool: where it moves (module constants)."""
    power = spectrum[1:].square().sum(dim=1)  # (K-1, H, W): |S_k|^2 of x and y
    amplitude = (2.0 * power.sum(dim=0)).sqrt()
    flat = amplitude.flatten()
    reference = float(torch.quantile(flat[:: max(1, flat.numel() // 100_000)].float(), 0.99))
    return amplitude > max(MIN_MOVING_PX, MOVING_RELATIVE * reference)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _scribble(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few thick strokes through random points of a (H, W) bool region: (H, W) bool, spilling over its edges
    a little as a brush does."""
    height, width = region.shape
    ys, xs = np.nonzero(region)
    out = np.zeros((height, width), np.uint8)
    if len(ys) == 0:
        return out.astype(bool)
    thickness = max(1, round(min(height, width) * rng.uniform(0.02, 0.08)))
    for _ in range(int(rng.integers(1, 7))):
        chosen = rng.integers(len(ys), size=int(rng.integers(2, 6)))
        points = np.stack([xs[chosen], ys[chosen]], axis=1).astype(np.int32)
        cv2.polylines(out, [points], isClosed=False, color=1, thickness=thickness)
    return out.astype(bool)


def _partial(region: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The region inside 1-3 random boxes, each centred on a pixel of it and 20-60 % of the frame's sides."""
    height, width = region.shape
    ys, xs = np.nonzero(region)
    keep = np.zeros_like(region)
    for _ in range(int(rng.integers(1, 4))):
        index = int(rng.integers(len(ys)))
        half_h, half_w = (math.ceil(side * rng.uniform(0.1, 0.3)) for side in (height, width))
        y, x = ys[index], xs[index]
        keep[max(0, y - half_h) : y + half_h, max(0, x - half_w) : x + half_w] = True
    return region & keep


def rough_region(region: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray:
    """(H, W) bool region as a person might paint it, in one of MASK_STYLES: (H, W) bool."""
    if style not in MASK_STYLES:
        raise GIDInputError(f"mask style must be one of {MASK_STYLES}, got {style!r}")
    if not region.any() or style == "exact":
        return region.copy()
    if style in ("eroded", "dilated"):
        radius = int(rng.integers(1, max(2, round(0.03 * min(region.shape)) + 1)))
        operation = cv2.erode if style == "eroded" else cv2.dilate
        return operation(region.astype(np.uint8), _disk(radius)).astype(bool)
    return _partial(region, rng) if style == "partial" else _scribble(region, rng)


def random_motion_mask(
    moving: np.ndarray, rng: np.random.Generator, still_probability: float = 0.5, forced_still: np.ndarray | None = None
) -> np.ndarray:
    """A training mask for a sample whose true moving region is ``moving`` (H, W) bool: (2, H, W) float32.

    "moves" is the region in a random style (uniform over MASK_STYLES); with still_probability, "stays still" is
    the still region in a random style too, minus what "moves" covers. ``forced_still`` (H, W) bool is painted
    "stays still" in any case (an override edit) and never "moves".
    """
    moves = rough_region(moving, MASK_STYLES[int(rng.integers(len(MASK_STYLES)))], rng)
    still = np.zeros_like(moves)
    if rng.random() < still_probability:
        still = rough_region(~moving, MASK_STYLES[int(rng.integers(len(MASK_STYLES)))], rng) & ~moves
    if forced_still is not None:
        moves &= ~forced_still
        still |= forced_still
    return np.stack([moves, still]).astype(np.float32)


def edit_for_mask(
    spectrum: torch.Tensor, moving: np.ndarray, edit: str, rng: np.random.Generator
) -> tuple[torch.Tensor, np.ndarray, np.ndarray | None]:
    """Make a sample's target disagree with its looks, as a painted mask may (one of EDITS).

    Args:
        spectrum: (K, 4, H, W) true spectral volume, pixels.
        moving: (H, W) bool, its moving region (moving_region).
        edit: "override": a part of the moving region (partial, or scribbled: strokes spill over its edges as a
            brush does) stays still, its motion set to zero;
            "transplant": the volume shifted by 20-60 % of the frame's sides (wrapping) fills the still pixels its
            moving region lands on, which then move too.

    Returns:
        The edited (K, 4, H, W) spectrum, its (H, W) bool moving region, and the (H, W) bool region that must be
        painted "stays still" (override) or None.
    """
    if edit not in EDITS:
        raise GIDInputError(f"mask edit must be one of {EDITS}, got {edit!r}")
    if not moving.any():
        return spectrum, moving, None
    if edit == "override":
        stilled = rough_region(moving, ("partial", "scribble")[int(rng.integers(2))], rng)
        keep = torch.from_numpy(~stilled).to(spectrum.device)
        return spectrum * keep.to(spectrum.dtype), moving & ~stilled, stilled
    height, width = moving.shape
    shift = tuple(round(float(rng.choice([-1, 1]) * rng.uniform(0.2, 0.6) * side)) for side in (height, width))
    landed = np.roll(moving, shift, axis=(0, 1)) & ~moving
    shifted = torch.roll(spectrum, shift, dims=(-2, -1))
    edited = torch.where(torch.from_numpy(landed).to(spectrum.device), shifted, spectrum)
    return edited, moving | landed, None


def random_motion_masks(
    spectra: torch.Tensor, probability: float, generator: torch.Generator, edit_probability: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training masks for a batch, and the targets they go with.

    Args:
        spectra: (B, K, 4, H, W) true spectral volumes, pixels.
        probability: chance that a sample gets a mask (the others get all zero: no mask, the ordinary prior).
        generator: all draws come from it, so a resumed run repeats them.
        edit_probability: chance that a masked sample's target is edited to disagree with its looks
            (edit_for_mask; the two edits equally likely).

    Returns:
        (B, 2, H, W) float32 masks and the (B, K, 4, H, W) spectra, edited where drawn (a new tensor if any is).
    """
    for name, value in (("mask probability", probability), ("mask edit probability", edit_probability)):
        if not 0.0 <= value <= 1.0:
            raise GIDInputError(f"{name} must be in [0, 1], got {value}")
    batch, _, _, height, width = spectra.shape
    masks = torch.zeros(batch, 2, height, width)
    draws = torch.rand(batch, generator=generator)
    seeds = torch.randint(2**62, (batch,), generator=generator)
    edited = list(spectra)
    for index in range(batch):  # a loop over samples; the mask ops themselves are whole-image
        if draws[index] < probability:
            rng = np.random.default_rng(int(seeds[index]))
            moving = moving_region(spectra[index]).cpu().numpy()
            forced_still = None
            if rng.random() < edit_probability:
                edit = EDITS[int(rng.integers(len(EDITS)))]
                edited[index], moving, forced_still = edit_for_mask(spectra[index], moving, edit, rng)
            masks[index] = torch.from_numpy(random_motion_mask(moving, rng, forced_still=forced_still))
    return masks, (torch.stack(edited) if edit_probability > 0 else spectra)
