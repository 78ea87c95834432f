"""From a built Scene to its motion and frames: modal coefficients under the wind, compositing frame 0 with the
owner map, the band spectrum of each owner's modes, the camera grade, and frames rendered by warping every moving
element with its own deformation (occlusions right in every frame)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import modal
from .elements import (
    Element,
    Scene,
)
from .paint import Sprite, composite
from .photo_world import CameraGrade

_FIXED_POINT_ITERATIONS = 4


def modal_coefficients(sc: Scene, freqs_hz: np.ndarray) -> np.ndarray:
    """(B, J) complex128 band coefficients of every modal coordinate, before amplitude normalisation."""
    m = sc.modes
    wind = modal.wind_forcing(
        sc.rng,
        np.array(m.position, np.float64),
        freqs_hz,
        speed_px_s=sc.wind_speed_px_s,
        corner_hz=sc.uniform(0.1, 0.5),
        coherence_decay=sc.uniform(1.0, 4.0),
        coherent_fraction=sc.uniform(0.5, 0.9),
        vertical_ratio=sc.uniform(0.3, 0.7),
    )
    force = np.einsum("bjc,jc->bj", wind, np.array(m.direction, np.float64))
    response = modal.modal_response(freqs_hz, np.array(m.natural_hz), np.array(m.damping))
    return np.array(m.gain)[None, :] * force * response


def compose(sc: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Sort elements into painter's order and composite frame 0.

    Returns the planar (3, Hc, Wc) float32 canvas and the (Hc, Wc) int32 owner map: the index of the topmost
    element whose coverage there is at least 1/2 (or half its peak coverage, if that is lower), or -1 for
    the background.
    """
    # Stable sort: equal depths keep their creation order (a flower head after its stem).
    sc.elements.sort(key=lambda e: e.depth)
    canvas = np.ascontiguousarray(sc.background.transpose(2, 0, 1))
    owner = np.full(canvas.shape[1:], -1, np.int32)
    for i, element in enumerate(sc.elements):
        composite(canvas, element.sprite)  # sprites are cropped to the canvas (Scene.add)
        sp = element.sprite
        alpha = sp.rgba[..., 3]
        # A strongly defocused thin element may never reach 1/2 coverage, yet it is what visibly moves there.
        covered = alpha >= min(0.5, 0.5 * float(alpha.max()))
        owner[sp.y0 : sp.y0 + sp.height, sp.x0 : sp.x0 + sp.width][covered] = i
    return canvas, owner


def band_spectrum(sc: Scene, owner: np.ndarray, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectrum of the frame-0 pixels' displacement in the band, from each owner's modes.

    Returns (B, 2, H * W) complex64 (bins 1..B, x and y) and the (H * W,) bool moving mask.
    """
    p, w, h = sc.pad, sc.width, sc.height
    flat = owner[p : p + h, p : p + w].ravel()
    spectrum = np.zeros((coefficients.shape[0], 2, h * w), np.complex64)
    order = np.argsort(flat, kind="stable")
    starts = np.searchsorted(flat[order], np.arange(len(sc.elements) + 1))
    for i, element in enumerate(sc.elements):
        pixels = order[starts[i] : starts[i + 1]]
        if not element.moving or len(pixels) == 0:
            continue
        ys, xs = np.divmod(pixels, w)
        shapes = element.shapes(xs.astype(np.float32) + p, ys.astype(np.float32) + p)
        band = coefficients[:, element.mode_indices].astype(np.complex64) @ shapes.reshape(len(shapes), -1)
        spectrum[:, :, pixels] = band.reshape(len(band), 2, -1)
    moving_elements = np.array([e.moving for e in sc.elements] + [False])
    return spectrum, moving_elements[flat]  # the background's -1 picks the trailing False


@dataclass(frozen=True)
class Grade:
    """Camera 'development' of the canvas into an 8-bit frame: exposure, saturation, vignette, grain."""

    exposure: float
    saturation: float
    vignette: float
    grain: float
    seed: int

    @classmethod
    def pick(cls, rng: np.random.Generator) -> Grade:
        return cls(
            float(rng.uniform(0.9, 1.15)),
            float(rng.uniform(0.9, 1.2)),
            float(rng.uniform(0.0, 0.35)),
            float(rng.uniform(0.001, 0.006)),  # sensor noise: about 0.3-1.5 levels of 255
            int(rng.integers(2**62)),
        )

    def develop(self, canvas: np.ndarray, frame: int) -> np.ndarray:
        """Planar (3, H, W) float32 -> (H, W, 3) uint8; fresh grain in every frame, fixed by the seed."""
        x = np.clip(canvas.transpose(1, 2, 0), 0.0, None) * self.exposure
        x = np.where(x < 0.8, x, 0.8 + 0.2 * (1.0 - np.exp(-(x - 0.8) / 0.2)))  # soft highlight shoulder
        luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = luma[..., None] + self.saturation * (x - luma[..., None])
        h, w = x.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        x = x * (1.0 - self.vignette * 0.5 * r2)[..., None]
        x = x + np.random.default_rng([self.seed, frame]).normal(0.0, self.grain, x.shape).astype(np.float32)
        return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


@dataclass
class _WarpLayer:
    """A moving element ready to be warped: its sprite padded into the region it can reach during the clip
    (rgba (h, w, 4) at canvas (x0, y0)), its mode indices, its mode shapes there (J, h, w, 2) and the region's
    local pixel grid (two (h, w) float32 arrays, x and y)."""

    x0: int
    y0: int
    rgba: np.ndarray
    modes: list[int]
    shapes: np.ndarray
    grid: tuple[np.ndarray, np.ndarray]

    @classmethod
    def build(cls, element: Element, q: np.ndarray, canvas_size: tuple[int, int]) -> _WarpLayer:
        """q: (J_all, T) modal coordinates. The region's margin is the element's largest displacement over the
        clip (evaluated exactly on every other sprite pixel; mode shapes are smooth) plus 2 pixels."""
        sp, modes = element.sprite, element.mode_indices
        gy, gx = np.mgrid[sp.y0 : sp.y0 + sp.height : 2, sp.x0 : sp.x0 + sp.width : 2].astype(np.float32)
        motion = np.einsum("jcn,jt->tcn", element.shapes(gx.ravel(), gy.ravel()), q[modes])
        margin = math.ceil(float(np.sqrt((motion**2).sum(axis=1)).max())) + 2
        x0, y0 = max(sp.x0 - margin, 0), max(sp.y0 - margin, 0)
        x1, y1 = (
            min(sp.x0 + sp.width + margin, canvas_size[0]),
            min(sp.y0 + sp.height + margin, canvas_size[1]),
        )
        rgba = np.zeros((y1 - y0, x1 - x0, 4), np.float32)
        rgba[sp.y0 - y0 : sp.y0 - y0 + sp.height, sp.x0 - x0 : sp.x0 - x0 + sp.width] = sp.rgba
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        shapes = np.ascontiguousarray(element.shapes(gx, gy).transpose(0, 2, 3, 1))
        grid = np.meshgrid(np.arange(x1 - x0, dtype=np.float32), np.arange(y1 - y0, dtype=np.float32))
        return cls(x0, y0, rgba, modes, shapes, (grid[0], grid[1]))

    def warp(self, q: np.ndarray, t: int) -> Sprite:
        """The element in frame t: backward warp with x = u + d(u, t) inverted by the fixed-point iteration
        u <- x - d(u, t), a contraction since |grad d| << 1 (4 evaluations: error ~ |grad d|^4 |d|)."""
        disp = np.tensordot(q[self.modes, t], self.shapes, axes=1)  # (h, w, 2)
        gx, gy = self.grid
        ux, uy = gx - disp[..., 0], gy - disp[..., 1]
        for _ in range(_FIXED_POINT_ITERATIONS - 1):
            at = cv2.remap(disp, ux, uy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            ux, uy = gx - at[..., 0], gy - at[..., 1]
        warped = cv2.remap(self.rgba, ux, uy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return Sprite(warped, self.x0, self.y0)


def _merge(sprites: list[Sprite]) -> Sprite:
    """One sprite equal to compositing the given sprites in order (premultiplied 'over' is associative)."""
    x0 = min(s.x0 for s in sprites)
    y0 = min(s.y0 for s in sprites)
    x1 = max(s.x0 + s.width for s in sprites)
    y1 = max(s.y0 + s.height for s in sprites)
    rgba = np.zeros((y1 - y0, x1 - x0, 4), np.float32)
    for s in sprites:
        region = rgba[s.y0 - y0 : s.y0 - y0 + s.height, s.x0 - x0 : s.x0 - x0 + s.width]
        region *= 1.0 - s.rgba[..., 3:]
        region += s.rgba
    return Sprite(rgba, x0, y0)


def _layers(sc: Scene, q: np.ndarray) -> tuple[np.ndarray, list[Sprite | _WarpLayer]]:
    """Painter's-order layers for rendering: the planar still background with every still element below
    the first moving one baked in, then merged runs of still sprites and one warp layer per moving element."""
    base = np.ascontiguousarray(sc.background.transpose(2, 0, 1))
    layers: list[Sprite | _WarpLayer] = []
    still: list[Sprite] = []
    for element in sc.elements:
        if not element.moving:
            still.append(element.sprite)
            continue
        if still:
            if layers:
                layers.append(_merge(still))
            else:
                for sprite in still:
                    composite(base, sprite)
            still = []
        layers.append(_WarpLayer.build(element, q, sc.canvas_size))
    if still:
        layers.append(_merge(still))
    return base, layers


def render_scene_frames(sc: Scene, q: np.ndarray, grade: Grade | CameraGrade, frame0: np.ndarray) -> np.ndarray:
    """Render all frames: composite the layers in painter's order, every moving element warped by its own
    deformation, so occlusions and disocclusions are right in every frame.

    Args:
        q: (J, T) float, modal coordinates over the clip (q[:, 0] == 0).
        frame0: (H, W, 3) uint8, the already developed frame 0 (reused as frames[0]).

    Returns:
        (T, H, W, 3) uint8.
    """
    base, layers = _layers(sc, q)
    p, w, h = sc.pad, sc.width, sc.height
    frames = np.empty((q.shape[1], h, w, 3), np.uint8)
    frames[0] = frame0
    q = q.astype(np.float32)
    for t in range(1, q.shape[1]):
        canvas = base.copy()
        for layer in layers:
            composite(canvas, layer if isinstance(layer, Sprite) else layer.warp(q, t))
        frames[t] = grade.develop(canvas[:, p : p + h, p : p + w], t)
    return frames


def _band_basis(num_bins: int, num_frames: int) -> np.ndarray:
    """(T, 2B) float32 synthesis basis [2 (cos - 1) | -2 sin] of bins 1..B: motion = basis @ [Re S; Im S].

    Row 0 is exactly zero, so frame 0 has exactly zero displacement.
    """
    phase = 2 * math.pi * np.outer(np.arange(num_frames), np.arange(1, num_bins + 1)) / num_frames
    return np.concatenate([2.0 * (np.cos(phase) - 1.0), -2.0 * np.sin(phase)], axis=1).astype(np.float32)


def band_to_motion(band: np.ndarray, moving: np.ndarray, num_frames: int) -> np.ndarray:
    """(B, 2, N) complex band spectrum -> (T, 2, N) float32 displacements, synthesised on moving pixels only
    (still pixels are exactly zero)."""
    pixels = np.flatnonzero(moving)
    coeffs = np.concatenate([band.real[:, :, pixels], band.imag[:, :, pixels]], axis=0).reshape(
        2 * len(band), -1
    )
    out = np.zeros((num_frames, 2, band.shape[-1]), np.float32)
    out[:, :, pixels] = (_band_basis(len(band), num_frames) @ coeffs).reshape(num_frames, 2, -1)
    return out


def amplitude_scale(
    band: np.ndarray, moving: np.ndarray, num_frames: int, target_rms: float, cap: float
) -> float:
    """Global gain that brings the 95th percentile of per-pixel RMS motion to target_rms (pixels), lowered if
    any pixel would move further than cap from its frame-0 position.

    The cap is checked exactly on the 512 pixels with the largest amplitude bound sum_k 2 |S_k|.
    """
    if not moving.any():
        return 0.0
    power = (np.abs(band[:, :, moving]) ** 2).sum(axis=1)  # (B, n)
    reference = float(np.percentile(np.sqrt(2.0 * power.sum(axis=0)), 95))
    if reference <= 0:
        return 0.0
    bound = np.sqrt(power).sum(axis=0)
    worst = np.argsort(bound)[-512:]
    motion = band_to_motion(band[:, :, moving][:, :, worst], np.ones(len(worst), bool), num_frames)
    peak = float(np.sqrt((motion**2).sum(axis=1)).max())
    return min(target_rms / reference, cap / max(peak, 1e-12))
