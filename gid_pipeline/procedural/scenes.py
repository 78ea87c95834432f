"""Procedural nature scenes with exact ground-truth oscillating motion, for training spectral-volume models.

A scene is a painter's-order stack of elements (grass blades, flower stems and heads, trunks, branches, leaf
clusters, leaves, hanging cloth; plus still sky, ground, rocks, walls, poles), each a premultiplied RGBA
sprite painted in its frame-0 pose together with an analytic, linear deformation of its material points,
d(u, t) = sum_j phi_j(u) q_j(t) (pixels). The phi_j are cantilever bending modes along a stem's chord,
hanging-chain modes of cloth, rigid flutter rotations of leaves and flower heads, and the rigid motion a child
inherits at its attachment to a swaying parent. The modal coordinates q_j are the steady-state responses of
damped oscillators to a gusty wind that travels across the scene (see modal.py); the wind is band-limited to
(0, 3] Hz, so the motion is periodic over the clip and its spectral volume represents it exactly.

Ground truth: pixel p of frame 0 belongs to the topmost element whose coverage there is at least 1/2 (or half
the element's peak coverage, for strongly defocused thin elements); its displacement in frame t is that
element's d(p, t) (exactly zero on still elements). Frame t, when asked for, is rendered by backward-warping
every moving sprite with its own deformation (inverted by fixed-point iteration) and compositing all sprites
in painter's order, so occlusions and disocclusions are right in every frame.

Conventions: image uint8 (H, W, 3) RGB numpy; displacements float32 torch (T, 2, H, W) in pixels, channel 0 =
x; spectrum float32 torch (K, 4, H, W) as in gid_pipeline.spectral.transform.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from ..errors import GIDInputError
from . import modal
from .photo_world import AMPLITUDE_RANGE_PX, PHOTO_SCENE_TYPES, CameraGrade, PhotoWorld, texture_painted_scene
from .textures import (
    BeamStyle,
    Light,
    Sprite,
    beam_sprite,
    blur_sprite,
    bokeh,
    cloth_sprite,
    composite,
    flower_sprite,
    foliage_sprite,
    ground,
    hills,
    hsv,
    jitter_colour,
    pick_light,
    rock_sprite,
    sky,
    treeline,
    wall,
)

SCENE_TYPES = ("meadow", "tree", "foliage", "flowers", "cloth")
DEFAULT_SIZE = (256, 160)  # (width, height)
MAX_FREQUENCY_HZ = 3.0  # the wind (hence the motion) is band-limited to (0, 3] Hz, the band K = 16 bins cover
AMPLITUDE_CAP_PX = 10.0  # no pixel of a 256x160 scene moves further than this (scales with resolution)
_FIXED_POINT_ITERATIONS = 4


@dataclass(frozen=True)
class ProceduralSample:
    """One generated scene.

    Attributes:
        image: (H, W, 3) uint8 RGB, frame 0.
        displacements: (T, 2, H, W) float32 torch, pixels, x first: where each pixel of frame 0 is in frame t,
            relative to itself; displacements[0] == 0. None when generated with return_displacements=False.
        spectrum: (K, 4, H, W) float32 torch, the spectral volume of displacements
            (spectral.motion_to_spectrum).
        moving_mask: (H, W) bool torch, True where frame 0 shows a moving element.
        frames: (T, H, W, 3) uint8 RGB rendered frames (frames[0] == image), or None unless
            render_frames=True.
        meta: scene type, seed, element counts, lighting, wind and amplitude parameters (JSON-serialisable).
    """

    image: np.ndarray
    displacements: torch.Tensor | None
    spectrum: torch.Tensor
    moving_mask: torch.Tensor
    frames: np.ndarray | None
    meta: dict[str, Any]


# ------------------------------------------------------------------------------------------------------------
# Elements and their modes


@dataclass(frozen=True)
class _OwnMode:
    """A mode of an element's own, mode `order` (0-based) of one of these kinds:

    'beam' / 'chain': phi(s) along the unit normal of the chord, s = projection on the chord from origin;
    'spread': chain mode 1 times the lateral coordinate / radius, along the normal;
    'rotate': rigid rotation about origin by 1 / radius radians per unit (one pixel at that radius);
    'stretch': s along the chord (a flame lengthening and shortening; one pixel at the chord's end);
    'wave': cos (even order) or sin (odd order) of the phase chord . (u - origin), chord a wave vector in radians
        per pixel, vertical for orders 0-1 and horizontal for 2-3, fading in over ``radius`` pixels below origin
        (a water surface's waves, smaller toward its horizon).
    """

    index: int
    kind: str
    order: int
    origin: tuple[float, float]
    chord: tuple[float, float]
    radius: float = 1.0


# (mode index, tx, ty, theta, cx, cy): d(u) = (tx, ty) + theta * perp(u - c), perp(v) = (-v_y, v_x).
_Rigid = tuple[int, float, float, float, float, float]


@dataclass(eq=False)
class _Element:
    """A sprite in painter's order (larger depth is nearer, drawn later) and its linear deformation modes."""

    sprite: Sprite
    depth: float
    own: list[_OwnMode] = field(default_factory=list)
    rigid: list[_Rigid] = field(default_factory=list)
    kind: str = "still"

    @property
    def moving(self) -> bool:
        return bool(self.own or self.rigid)

    @property
    def mode_indices(self) -> list[int]:
        return [m.index for m in self.own] + [r[0] for r in self.rigid]

    def shapes(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """(J, 2, *x.shape) float32 displacement per unit modal coordinate at points (x, y), canvas pixels."""
        out = np.empty((len(self.own) + len(self.rigid), 2, *x.shape), np.float32)
        for i, m in enumerate(self.own):
            ox, oy = m.origin
            if m.kind == "rotate":
                out[i, 0] = -(y - oy) / m.radius
                out[i, 1] = (x - ox) / m.radius
                continue
            cx, cy = m.chord
            if m.kind == "wave":
                phase = cx * (x - ox) + cy * (y - oy)
                phi = (np.cos(phase) if m.order % 2 == 0 else np.sin(phase)) * np.clip((y - oy) / m.radius, 0.0, 1.0)
                out[i, 0], out[i, 1] = (0.0, phi) if m.order < 2 else (phi, 0.0)
                continue
            length2 = cx * cx + cy * cy
            s = np.clip(((x - ox) * cx + (y - oy) * cy) / length2, 0.0, 1.0)
            nx, ny = -cy / math.sqrt(length2), cx / math.sqrt(length2)
            if m.kind == "stretch":
                out[i, 0], out[i, 1] = s * cx / math.sqrt(length2), s * cy / math.sqrt(length2)
                continue
            if m.kind == "spread":
                phi = modal.sample_shape("chain", 0, s) * (((x - ox) * nx + (y - oy) * ny) / m.radius)
            else:
                phi = modal.sample_shape(m.kind, m.order, s)
            out[i, 0] = phi * nx
            out[i, 1] = phi * ny
        for i, (_, tx, ty, theta, cx, cy) in enumerate(self.rigid, start=len(self.own)):
            out[i, 0] = tx - theta * (y - cy)
            out[i, 1] = ty + theta * (x - cx)
        return out

    def attachment(self, point: np.ndarray) -> list[_Rigid]:
        """Rigid motion per mode of the material at ``point`` (x, y): what a child attached there inherits.

        Inherited rigid modes pass through; an own rotation is already rigid; a bending mode contributes its
        displacement at the point plus the rotation of its centre line there, theta = phi'(s) / length.
        """
        px, py = float(point[0]), float(point[1])
        disp = self.shapes(np.array([px]), np.array([py]))[:, :, 0]
        rigid = list(self.rigid)
        for m, (dx, dy) in zip(self.own, disp, strict=False):
            if m.kind == "rotate":
                rigid.append((m.index, 0.0, 0.0, 1.0 / m.radius, *m.origin))
                continue
            cx, cy = m.chord
            length = math.hypot(cx, cy)
            s = min(max(((px - m.origin[0]) * cx + (py - m.origin[1]) * cy) / length**2, 0.0), 1.0)
            bends = m.kind in ("beam", "chain")
            theta = modal.sample_slope(m.kind, m.order, s) / length if bends else 0.0
            rigid.append((m.index, float(dx), float(dy), theta, px, py))
        return rigid


@dataclass
class _ModeBank:
    """Per-mode physical parameters, appended as elements are created (index = position)."""

    natural_hz: list[float] = field(default_factory=list)
    damping: list[float] = field(default_factory=list)  # fraction of critical
    # Pixels of modal motion per unit wind per unit receptance (an arbitrary scale, normalised per scene).
    gain: list[float] = field(default_factory=list)
    position: list[tuple[float, float]] = field(default_factory=list)  # where the wind acts, canvas pixels
    direction: list[tuple[float, float]] = field(default_factory=list)  # unit direction of the motion there

    def add(
        self, natural_hz: float, damping: float, gain: float, position: np.ndarray, direction: np.ndarray
    ) -> int:
        self.natural_hz.append(float(natural_hz))
        self.damping.append(float(damping))
        self.gain.append(float(gain))
        self.position.append((float(position[0]), float(position[1])))
        norm = float(np.hypot(*direction)) or 1.0
        self.direction.append((float(direction[0]) / norm, float(direction[1]) / norm))
        return len(self.natural_hz) - 1

    def __len__(self) -> int:
        return len(self.natural_hz)


# An element's first natural frequency is clamped into the band, where its resonance shows (all its modes are
# scaled together, keeping their ratios).
_F_MIN_HZ, _F_MAX_HZ = 0.25, 2.9


class _Scene:
    """A scene under construction: a padded canvas (the border lets material outside the frame sway into it),
    its still background, its elements, its modes and its lighting and wind."""

    def __init__(self, rng: np.random.Generator, width: int, height: int, scene_type: str) -> None:
        self.rng = rng
        self.width, self.height = width, height
        self.scene_type = scene_type
        self.unit = math.sqrt(width * height / (DEFAULT_SIZE[0] * DEFAULT_SIZE[1]))
        self.pad = math.ceil(AMPLITUDE_CAP_PX * self.unit) + 4
        self.canvas_size = (width + 2 * self.pad, height + 2 * self.pad)  # (width, height)
        self.light: Light = pick_light(rng)
        self.background = np.zeros((self.canvas_size[1], self.canvas_size[0], 3), np.float32)
        self.elements: list[_Element] = []
        self.modes = _ModeBank()
        self.wind_sign = float(rng.choice([-1.0, 1.0]))
        # Gusts cross the frame in about 0.5-1.7 s.
        self.wind_speed_px_s = self.wind_sign * width * float(rng.uniform(0.6, 2.0))
        self.aperture = float(rng.uniform(0.0, 3.0))  # depth-of-field blur per unit of nearness error, pixels
        self.horizon: float | None = None  # canvas row of the horizon, for scene types that have one

    # -- layout helpers (canvas pixels) --
    def x(self, fraction: float) -> float:
        return self.pad + fraction * self.width

    def y(self, fraction: float) -> float:
        return self.pad + fraction * self.height

    def uniform(self, low: float, high: float) -> float:
        return float(self.rng.uniform(low, high))

    # -- element factories --
    def add(self, sprite: Sprite | None, depth: float, kind: str, blur: float = 0.0) -> _Element | None:
        if sprite is None:
            return None
        sprite = _crop(blur_sprite(sprite, blur * self.unit), self.canvas_size)
        if sprite is None:
            return None
        element = _Element(sprite, depth, kind=kind)
        self.elements.append(element)
        return element

    def beam_modes(
        self,
        element: _Element,
        anchor: np.ndarray,
        tip: np.ndarray,
        frequencies: list[float],
        damping: float,
        gain: float,
        kind: str = "beam",
    ) -> None:
        """Give an element the first len(frequencies) cantilever (or chain) modes along anchor -> tip."""
        chord = tip - anchor
        normal = np.array([-chord[1], chord[0]])
        participation = modal.PARTICIPATION[kind]
        f1 = frequencies[0]
        scale = float(np.clip(f1, _F_MIN_HZ, _F_MAX_HZ)) / f1
        for n, f in enumerate(frequencies):
            index = self.modes.add(f * scale, damping, gain * participation[n], anchor + 0.7 * chord, normal)
            element.own.append(
                _OwnMode(
                    index, kind, n, (float(anchor[0]), float(anchor[1])), (float(chord[0]), float(chord[1]))
                )
            )

    def flutter_mode(
        self,
        element: _Element,
        pivot: np.ndarray,
        radius: float,
        frequency: float,
        damping: float,
        gain: float,
    ) -> None:
        """Give an element a small rigid rotation about pivot (a leaf or a flower head on its stalk)."""
        centre = np.array(
            [element.sprite.x0 + element.sprite.width / 2, element.sprite.y0 + element.sprite.height / 2]
        )
        arm = centre - pivot
        index = self.modes.add(frequency, damping, gain, centre, np.array([-arm[1], arm[0]]))
        element.own.append(
            _OwnMode(index, "rotate", 0, (float(pivot[0]), float(pivot[1])), (0.0, 0.0), radius)
        )

    def dof_blur(self, nearness: float, focus: float) -> float:
        """Depth-of-field blur sigma (pixels at 256x160) at a nearness (1 / depth, 0 = infinitely far)."""
        return min(self.aperture * abs(nearness - focus), 4.0)


def _crop(sprite: Sprite, canvas_size: tuple[int, int]) -> Sprite | None:
    """The part of a sprite inside a canvas of (width, height), or None if nothing visible is left."""
    x0, y0 = max(sprite.x0, 0), max(sprite.y0, 0)
    x1, y1 = min(sprite.x0 + sprite.width, canvas_size[0]), min(sprite.y0 + sprite.height, canvas_size[1])
    if x1 <= x0 or y1 <= y0:
        return None
    rgba = sprite.rgba[y0 - sprite.y0 : y1 - sprite.y0, x0 - sprite.x0 : x1 - sprite.x0]
    return Sprite(np.ascontiguousarray(rgba), x0, y0) if rgba[..., 3].any() else None


def _clamp(frequency_hz: float) -> float:
    return float(np.clip(frequency_hz, _F_MIN_HZ, _F_MAX_HZ))


# ------------------------------------------------------------------------------------------------------------
# Reusable scene parts


_GRASS_PALETTES = {
    "lush": (0.27, 0.7, 0.45),
    "spring": (0.24, 0.75, 0.6),
    "summer": (0.19, 0.6, 0.55),
    "dry": (0.12, 0.5, 0.6),
}


def _grass_colours(
    rng: np.random.Generator, palette: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    h, s, v = palette
    base = hsv(h + rng.uniform(-0.03, 0.03), s * rng.uniform(0.8, 1.15), v * rng.uniform(0.55, 0.9))
    if rng.uniform() < 0.1:  # an odd dry blade
        base = hsv(rng.uniform(0.1, 0.14), rng.uniform(0.35, 0.55), v * rng.uniform(0.8, 1.1))
    tip = jitter_colour(rng, base * 1.25 + np.array([0.05, 0.04, -0.02]), 0.02, 0.1, 0.1)
    return base, tip


def _add_grass_blade(
    sc: _Scene,
    anchor: np.ndarray,
    length_px: float,
    px_per_m: float,
    palette: tuple[float, float, float],
    depth: float,
    blur: float,
) -> None:
    """A grass blade rooted at anchor (canvas pixels): a tapered strip leaning and arching downwind, with
    two cantilever modes whose frequency follows from its length in metres (length_px / px_per_m)."""
    rng = sc.rng
    lean = rng.normal(0.12 * sc.wind_sign, 0.3)
    # Arching blades: the longer and more leaning, the more the tip droops away from the chord.
    droop = abs(lean) * rng.uniform(0.2, 0.7) if rng.uniform() < 0.5 else rng.normal(0.0, 0.08)
    tip = anchor + length_px * np.array([math.sin(lean), -math.cos(lean)])
    bow = length_px * droop * math.copysign(1.0, lean)
    width = max(length_px * rng.uniform(0.01, 0.024), 0.45)
    base_rgb, tip_rgb = _grass_colours(rng, palette)
    style = BeamStyle("grass", base_rgb, tip_rgb, occlusion=0.55, translucency=0.9)
    sprite = beam_sprite(rng, anchor, tip, bow, (width, 0.08), style, sc.light, sc.canvas_size)
    element = sc.add(sprite, depth, "grass", blur)
    if element is None:
        return
    length_m = length_px / px_per_m
    # A blade bends about its thin axis: 0.3-0.6 mm thick, sqrt(E / rho) ~ 1000 m/s (E ~ 0.5 GPa).
    freqs = modal.beam_frequencies_hz(length_m, rng.uniform(0.3e-3, 0.6e-3), 1000.0, 0.0, 2)
    sc.beam_modes(element, anchor, tip, freqs, rng.uniform(0.08, 0.2), px_per_m)


def _add_flower(
    sc: _Scene,
    anchor: np.ndarray,
    length_px: float,
    px_per_m: float,
    species: str,
    head_radius: float,
    depth: float,
    blur: float,
    leaves: int = 0,
) -> None:
    """A stem with a flower head (and optional stem leaves): the head rides on the stem tip and nods."""
    rng = sc.rng
    lean = rng.normal(0.05 * sc.wind_sign, 0.15)
    tip = anchor + length_px * np.array([math.sin(lean), -math.cos(lean)])
    bow = length_px * rng.normal(0.0, 0.06)
    stem_rgb = hsv(rng.uniform(0.22, 0.3), rng.uniform(0.5, 0.75), rng.uniform(0.35, 0.5))
    style = BeamStyle("stem", stem_rgb * 0.8, stem_rgb, occlusion=0.4, translucency=0.3)
    width = max(head_radius * rng.uniform(0.06, 0.1), 0.5)
    stem = sc.add(
        beam_sprite(rng, anchor, tip, bow, (width, width * 0.8), style, sc.light, sc.canvas_size),
        depth,
        "stem",
        blur,
    )
    if stem is None:
        return
    length_m = length_px / px_per_m
    freqs = modal.beam_frequencies_hz(length_m, rng.uniform(1.5e-3, 3e-3), 1300.0, rng.uniform(0.4, 2.5), 3)
    sc.beam_modes(stem, anchor, tip, freqs, rng.uniform(0.05, 0.12), px_per_m * 0.8)
    tip_real = tip + bow * np.array([-(tip - anchor)[1], (tip - anchor)[0]]) / length_px
    for _ in range(leaves):
        s = rng.uniform(0.1, 0.55)
        base = (
            anchor
            + s * (tip - anchor)
            + bow * s * s * np.array([-(tip - anchor)[1], (tip - anchor)[0]]) / length_px
        )
        side = rng.choice([-1.0, 1.0])
        angle = -math.pi / 2 + side * rng.uniform(0.5, 1.1)
        leaf_len = head_radius * rng.uniform(1.5, 3.0)
        leaf_tip = base + leaf_len * np.array([math.cos(angle), math.sin(angle)])
        _add_leaf(
            sc,
            stem,
            base,
            leaf_tip,
            leaf_len * rng.uniform(0.12, 0.22),
            hsv(0.27, 0.6, 0.45),
            depth + rng.uniform(-0.01, 0.01),
            blur,
            px_per_m,
        )
    tilt = rng.uniform(0.0, 0.7)
    head = sc.add(
        flower_sprite(
            rng, tip_real, head_radius, species, sc.light, sc.canvas_size, tilt, rng.uniform(-0.4, 0.4)
        ),
        depth + 1e-3,
        "flower",
        blur,
    )
    if head is not None:
        head.rigid = stem.attachment(tip_real)
        sc.flutter_mode(
            head, tip_real, head_radius, rng.uniform(1.6, 2.9), rng.uniform(0.1, 0.25), px_per_m * 0.015
        )


def _add_leaf(
    sc: _Scene,
    parent: _Element,
    base: np.ndarray,
    tip: np.ndarray,
    half_width: float,
    rgb: np.ndarray,
    depth: float,
    blur: float,
    px_per_m: float,
) -> _Element | None:
    """A leaf from base to tip (canvas pixels) riding on parent at base, fluttering about its stalk."""
    rng = sc.rng
    albedo = jitter_colour(rng, rgb, 0.025, 0.15, 0.15)
    style = BeamStyle("leaf", albedo * 0.9, albedo * 1.05, occlusion=0.15, translucency=1.0, profile="leaf")
    bow = float(np.hypot(*(tip - base))) * rng.normal(0.0, 0.12)
    tilt = (float(rng.normal(0, 0.5)), float(rng.normal(-0.1, 0.5)))
    sprite = beam_sprite(rng, base, tip, bow, (half_width, half_width), style, sc.light, sc.canvas_size, tilt)
    leaf = sc.add(sprite, depth, "leaf", blur)
    if leaf is None:
        return None
    leaf.rigid = parent.attachment(base)
    length = float(np.hypot(*(tip - base)))
    sc.flutter_mode(leaf, base, length, rng.uniform(1.4, 2.9), rng.uniform(0.1, 0.25), px_per_m * 0.02)
    return leaf


def _add_still(sc: _Scene, sprite: Sprite | None, depth: float, blur: float = 0.0) -> None:
    sc.add(sprite, depth, "still", blur)


def _sky_and_distance(sc: _Scene, horizon: float) -> None:
    """Sky down to the horizon, then hazy hills and/or a woodland edge on it; the caller paints the ground."""
    rng, light = sc.rng, sc.light
    w, h = sc.canvas_size
    sc.horizon = horizon
    sc.background = sky(rng, light, w, h, horizon)
    if rng.uniform() < 0.5:
        hills(
            rng,
            sc.background,
            horizon,
            sc.height * rng.uniform(0.05, 0.2),
            hsv(rng.uniform(0.2, 0.35), 0.35, 0.5),
            light,
        )
    if rng.uniform() < 0.75:
        tree_rgb = hsv(rng.uniform(0.2, 0.33), rng.uniform(0.4, 0.7), rng.uniform(0.2, 0.4))
        treeline(
            rng,
            sc.background,
            horizon + 1,
            sc.height * rng.uniform(0.06, 0.3),
            tree_rgb,
            light,
            rng.uniform(0.1, 0.45),
        )


def _blur_background(sc: _Scene, sigma: float) -> None:
    if sigma * sc.unit > 0.3:
        sc.background = cv2.GaussianBlur(sc.background, (0, 0), sigma * sc.unit)


# ------------------------------------------------------------------------------------------------------------
# Scene types


def _meadow(sc: _Scene) -> None:
    """Low camera in a meadow: sky, distant trees or hills, grass in perspective, flowers, the odd rock."""
    rng = sc.rng
    w, h = sc.canvas_size
    horizon = sc.y(sc.uniform(0.18, 0.5))
    palette = _GRASS_PALETTES[str(rng.choice(list(_GRASS_PALETTES)))]
    _sky_and_distance(sc, horizon)
    far_rgb = hsv(palette[0] - 0.02, palette[1] * 0.6, palette[2] * 1.1)
    ground(rng, sc.background, horizon, hsv(*palette) * 0.6, far_rgb, sc.light)
    focus = sc.uniform(0.3, 1.0)
    _blur_background(sc, sc.dof_blur(0.05, focus))
    # Nearness n = (y - horizon) / (bottom - horizon) is 1 / depth up to a constant, and so are pixels/metre.
    span = h - horizon
    near_px_per_m = sc.height * sc.uniform(1.0, 2.4)
    count = int(rng.integers(200, 420))
    species = [str(rng.choice(["daisy", "poppy", "buttercup", "cornflower", "cosmos"])) for _ in range(2)]
    flowers = int(rng.integers(0, 22)) if rng.uniform() < 0.7 else 0
    for i in range(count + flowers):
        nearness = rng.uniform(0.1, 1.12) ** 0.7
        anchor = np.array([rng.uniform(-0.05, 1.05) * w, horizon + nearness * span])
        px_per_m = near_px_per_m * nearness
        blur = sc.dof_blur(nearness, focus)
        if i < count:
            length = rng.uniform(0.15, 0.5) * px_per_m
            if length >= 3.0:
                _add_grass_blade(sc, anchor, length, px_per_m, palette, float(anchor[1]), blur)
        else:
            length = rng.uniform(0.25, 0.55) * px_per_m
            if length >= 6.0:
                head = max(rng.uniform(0.018, 0.035) * px_per_m, 1.2)
                _add_flower(sc, anchor, length, px_per_m, species[i % 2], head, float(anchor[1]), blur)
    for _ in range(int(rng.integers(0, 3))):
        nearness = rng.uniform(0.2, 1.0)
        base = np.array([rng.uniform(0.05, 0.95) * w, horizon + nearness * span])
        radius = rng.uniform(0.15, 0.5) * near_px_per_m * nearness
        _add_still(
            sc,
            rock_sprite(rng, base, radius, sc.light, sc.canvas_size),
            float(base[1]) - 0.5,
            sc.dof_blur(nearness, focus),
        )


def _tree(sc: _Scene) -> None:
    """A broadleaf tree against the sky: trunk, branches and leaf clusters filling a crown, over a field."""
    rng = sc.rng
    h = sc.canvas_size[1]
    horizon = sc.y(sc.uniform(0.6, 0.88))
    _sky_and_distance(sc, horizon)
    palette = _GRASS_PALETTES[str(rng.choice(list(_GRASS_PALETTES)))]
    ground(
        rng,
        sc.background,
        horizon,
        hsv(*palette) * 0.55,
        hsv(palette[0], palette[1] * 0.6, palette[2]),
        sc.light,
    )
    _blur_background(sc, sc.uniform(0.3, 1.5))
    tree_height_px = sc.height * sc.uniform(0.65, 1.2)
    tree_height_m = sc.uniform(5.0, 14.0)
    px_per_m = tree_height_px / tree_height_m
    base = np.array([sc.x(sc.uniform(0.2, 0.8)), horizon + (h - horizon) * sc.uniform(0.05, 0.45)])
    trunk_top = base + np.array([sc.uniform(-0.08, 0.08) * tree_height_px, -0.75 * tree_height_px])
    crown = base + np.array([0.0, -0.66 * tree_height_px])
    crown_r = np.array([tree_height_px * sc.uniform(0.3, 0.5), tree_height_px * sc.uniform(0.25, 0.36)])
    bark = hsv(sc.uniform(0.05, 0.1), sc.uniform(0.15, 0.4), sc.uniform(0.25, 0.45))
    if rng.uniform() < 0.2:  # a birch
        bark = hsv(0.1, 0.05, 0.85)
    trunk_w = tree_height_px * sc.uniform(0.022, 0.04)
    style = BeamStyle("bark", bark * 0.85, bark, occlusion=0.25)
    trunk_sprite = beam_sprite(
        rng, base, trunk_top, sc.uniform(-3, 3), (trunk_w, trunk_w * 0.4), style, sc.light, sc.canvas_size
    )
    trunk = sc.add(trunk_sprite, 10.0, "trunk")
    if trunk is None:
        return
    freqs = modal.beam_frequencies_hz(
        tree_height_m * 0.75, sc.uniform(0.2, 0.5), 3000.0, sc.uniform(2.0, 5.0), 2
    )
    # Wind gains per type are drag / modal mass up to a common scale: a crown is a big sail on a heavy trunk,
    # so its top sways decimetres where grass tips move centimetres (comparable pixels at their scales).
    sc.beam_modes(trunk, base, trunk_top, freqs, sc.uniform(0.04, 0.1), px_per_m * 2.5)
    # Primary branches fan out from the upper trunk towards the crown's rim.
    limbs: list[tuple[_Element, np.ndarray, np.ndarray]] = [
        (trunk, base + 0.6 * (trunk_top - base), trunk_top)
    ]
    for b in range(int(rng.integers(5, 10))):
        start = base + sc.uniform(0.45, 0.95) * (trunk_top - base)
        angle = -math.pi / 2 + (1.0 if b % 2 else -1.0) * sc.uniform(0.3, 1.3)
        end = crown + crown_r * np.array([math.cos(angle), math.sin(angle)]) * sc.uniform(0.6, 0.95)
        length_px = float(np.hypot(*(end - start)))
        if length_px < 4:
            continue
        bw = max(trunk_w * sc.uniform(0.3, 0.5), 0.6)
        sprite = beam_sprite(
            rng,
            start,
            end,
            sc.uniform(-0.1, 0.1) * length_px,
            (bw, bw * 0.35),
            style,
            sc.light,
            sc.canvas_size,
        )
        branch = sc.add(sprite, 10.5, "branch")
        if branch is None:
            continue
        branch.rigid = trunk.attachment(start)
        length_m = length_px / px_per_m
        # Slender limbs (diameter 2-3.5 % of their length) carrying their foliage (2-6 times their mass).
        bfreqs = modal.beam_frequencies_hz(
            length_m, length_m * sc.uniform(0.02, 0.035), 3000.0, sc.uniform(2.0, 6.0), 2
        )
        sc.beam_modes(branch, start, end, bfreqs, sc.uniform(0.06, 0.15), px_per_m * 6.0)
        limbs.append((branch, start, end))
    # Leaf clusters fill the crown, each hung on the nearest point of a limb; back ones are darker and drawn
    # behind the trunk.
    leaf_rgb = hsv(sc.uniform(0.2, 0.33), sc.uniform(0.5, 0.8), sc.uniform(0.4, 0.65))
    if rng.uniform() < 0.15:  # autumn
        leaf_rgb = hsv(sc.uniform(0.05, 0.13), 0.8, 0.75)
    leaf_px = max(sc.uniform(1.2, 2.2) * sc.unit, tree_height_px * 0.01)
    for _ in range(int(rng.integers(22, 48))):
        r, a = math.sqrt(rng.uniform(0.0, 1.0)), rng.uniform(0, 2 * math.pi)
        centre = crown + crown_r * r * np.array([math.cos(a), math.sin(a)])
        parent, at = _nearest_limb(limbs, centre)
        radius = float(crown_r.max()) * sc.uniform(0.16, 0.3)
        back = rng.uniform() < 0.4
        count = int(np.clip(2.5 * radius * radius / (leaf_px * leaf_px), 12, 320))
        sprite = foliage_sprite(
            rng,
            centre,
            (radius, radius * sc.uniform(0.7, 0.95)),
            (leaf_px, leaf_px * 0.55),
            count,
            leaf_rgb * (0.8 if back else 1.0),
            sc.light,
            sc.canvas_size,
        )
        cluster = sc.add(sprite, 9.0 + rng.uniform() if back else 11.0 + rng.uniform(), "foliage")
        if cluster is not None:
            cluster.rigid = parent.attachment(at)
            sc.flutter_mode(cluster, at, radius, sc.uniform(1.2, 2.6), sc.uniform(0.15, 0.3), px_per_m * 0.02)
    _grass_strip(sc, horizon, palette, 20, 90)


def _nearest_limb(
    limbs: list[tuple[_Element, np.ndarray, np.ndarray]], point: np.ndarray
) -> tuple[_Element, np.ndarray]:
    """The limb (element, start, end) whose chord passes closest to point, and that closest chord point."""
    best = None
    for element, start, end in limbs:
        chord = end - start
        t = float(np.clip(np.dot(point - start, chord) / max(np.dot(chord, chord), 1e-9), 0.0, 1.0))
        at = start + t * chord
        distance = float(np.hypot(*(point - at)))
        if best is None or distance < best[0]:
            best = (distance, element, at)
    assert best is not None
    return best[1], best[2]


def _grass_strip(
    sc: _Scene, horizon: float, palette: tuple[float, float, float], low: int, high: int
) -> None:
    """Short grass blades along the bottom of the frame, in front of everything else."""
    rng = sc.rng
    w, h = sc.canvas_size
    for _ in range(int(rng.integers(low, high))):
        nearness = rng.uniform(0.5, 1.1)
        anchor = np.array(
            [rng.uniform(-0.05, 1.05) * w, horizon + nearness * (h - horizon) + sc.uniform(0, 4)]
        )
        px_per_m = sc.height * 0.8 * nearness
        _add_grass_blade(
            sc, anchor, sc.uniform(0.12, 0.3) * px_per_m, px_per_m, palette, 20.0 + float(anchor[1]), 0.0
        )


def _foliage(sc: _Scene) -> None:
    """Close-up of leafy branches reaching into the frame in front of an out-of-focus backdrop; the nearer,
    focused ones carry side twigs, the farther ones are blurred."""
    rng = sc.rng
    w, h = sc.canvas_size
    season = str(rng.choice(["fresh", "dark", "fresh", "autumn"]))
    leaf_rgb = {
        "fresh": hsv(sc.uniform(0.22, 0.28), sc.uniform(0.6, 0.8), sc.uniform(0.55, 0.7)),
        "dark": hsv(sc.uniform(0.26, 0.33), sc.uniform(0.5, 0.7), sc.uniform(0.35, 0.5)),
        "autumn": hsv(sc.uniform(0.03, 0.13), sc.uniform(0.7, 0.9), sc.uniform(0.6, 0.8)),
    }[season]
    backdrop = [hsv(sc.uniform(0.2, 0.35), 0.6, sc.uniform(0.2, 0.5)) for _ in range(3)] + [
        sc.light.sky_horizon
    ]
    bokeh(rng, sc.background, backdrop, sc.light, sc.uniform(4.0, 9.0) * sc.unit)
    px_per_m = sc.height / sc.uniform(0.4, 1.0)
    bark = hsv(sc.uniform(0.05, 0.1), sc.uniform(0.15, 0.4), sc.uniform(0.4, 0.6))
    leaf_len = sc.uniform(9.0, 22.0) * sc.unit
    branches = int(rng.integers(1, 4))
    for b in range(branches + int(rng.integers(0, 3))):
        focused = b < branches
        blur = 0.0 if focused else sc.uniform(1.5, 3.5)
        edge = rng.integers(0, 3)
        if edge == 0:  # from the left
            start = np.array([sc.uniform(-0.02, 0.05) * w, sc.uniform(0.1, 0.8) * h])
            heading = sc.uniform(-0.5, 0.6)
        elif edge == 1:  # from the right
            start = np.array([sc.uniform(0.95, 1.02) * w, sc.uniform(0.1, 0.8) * h])
            heading = math.pi + sc.uniform(-0.6, 0.5)
        else:  # hanging from the top
            start = np.array([sc.uniform(0.1, 0.9) * w, sc.uniform(-0.02, 0.03) * h])
            heading = math.pi / 2 + sc.uniform(-0.9, 0.9)
        length = sc.uniform(0.55, 1.0) * w
        end = start + length * np.array([math.cos(heading), math.sin(heading)])
        depth = 10.0 + b if focused else 5.0 - b
        scale = 1.0 if focused else sc.uniform(0.6, 0.85)
        tone = 1.0 if focused else 0.75
        branch = _leafy_twig(
            sc,
            None,
            start,
            end,
            sc.uniform(1.2, 2.6) * sc.unit,
            depth,
            blur,
            bark * tone,
            leaf_rgb * tone,
            leaf_len * scale,
            px_per_m,
        )
        if branch is None or not focused:
            continue
        for _ in range(int(rng.integers(1, 5))):
            at = start + sc.uniform(0.15, 0.8) * (end - start)
            turn = heading + rng.choice([-1.0, 1.0]) * sc.uniform(0.4, 1.0)
            tip = at + sc.uniform(0.2, 0.45) * length * np.array([math.cos(turn), math.sin(turn) + 0.3])
            _leafy_twig(
                sc,
                branch,
                at,
                tip,
                sc.uniform(0.6, 1.2) * sc.unit,
                depth + sc.uniform(-0.4, 0.4),
                0.0,
                bark,
                leaf_rgb,
                leaf_len * sc.uniform(0.7, 1.0),
                px_per_m,
            )


def _leafy_twig(
    sc: _Scene,
    parent: _Element | None,
    start: np.ndarray,
    end: np.ndarray,
    width: float,
    depth: float,
    blur: float,
    bark_rgb: np.ndarray,
    leaf_rgb: np.ndarray,
    leaf_len: float,
    px_per_m: float,
) -> _Element | None:
    """A woody twig (a cantilever from start, or riding on parent there) with alternate leaves along it."""
    rng = sc.rng
    length = float(np.hypot(*(end - start)))
    style = BeamStyle("bark", bark_rgb * 0.8, bark_rgb, occlusion=0.1)
    twig = sc.add(
        beam_sprite(
            rng,
            start,
            end,
            sc.uniform(-0.12, 0.12) * length,
            (width, width * 0.45),
            style,
            sc.light,
            sc.canvas_size,
        ),
        depth,
        "branch",
        blur,
    )
    if twig is None:
        return None
    if parent is not None:
        twig.rigid = parent.attachment(start)
    length_m = length / px_per_m
    # Green wood (sqrt(E / rho) ~ 3000 m/s) loaded with leaves several times its own mass.
    freqs = modal.beam_frequencies_hz(length_m, width / px_per_m * 1.5, 3000.0, sc.uniform(4.0, 15.0), 3)
    sc.beam_modes(twig, start, end, freqs, sc.uniform(0.05, 0.12), px_per_m * 1.5)
    axis = (end - start) / length
    normal = np.array([-axis[1], axis[0]])
    spacing = leaf_len * sc.uniform(0.35, 0.6)
    for k, t in enumerate(np.arange(sc.uniform(0.02, 0.15), 1.0, spacing / length)):
        at = start + t * (end - start)
        side = 1.0 if k % 2 else -1.0
        direction = axis * math.cos(0.9) + side * normal * math.sin(0.9) + np.array([0.0, 0.35])
        direction += rng.normal(0, 0.25, 2)
        direction /= np.linalg.norm(direction)
        this_len = leaf_len * sc.uniform(0.7, 1.2) * (0.55 + 0.45 * min(t * 3, 1.0))
        stalk = at + direction * this_len * 0.12
        _add_leaf(
            sc,
            twig,
            stalk,
            stalk + direction * this_len,
            this_len * sc.uniform(0.2, 0.3),
            leaf_rgb,
            depth + sc.uniform(-0.3, 0.3),
            blur,
            px_per_m,
        )
    return twig


def _flowers(sc: _Scene) -> None:
    """Flowers close up: a few tall stems with large heads and leaves, blurred grass and a bokeh backdrop."""
    rng = sc.rng
    w, h = sc.canvas_size
    species = [str(rng.choice(["daisy", "poppy", "cosmos", "cornflower", "buttercup"])) for _ in range(2)]
    backdrop = [hsv(sc.uniform(0.2, 0.33), 0.6, sc.uniform(0.25, 0.55)) for _ in range(3)] + [
        sc.light.sky_horizon * 0.8
    ]
    bokeh(rng, sc.background, backdrop, sc.light, sc.uniform(5.0, 10.0) * sc.unit)
    px_per_m = sc.height / sc.uniform(0.35, 0.7)
    palette = _GRASS_PALETTES[str(rng.choice(["lush", "spring", "summer"]))]
    for _ in range(int(rng.integers(10, 40))):  # out-of-focus grass behind
        anchor = np.array([rng.uniform(0, w), h + 2])
        _add_grass_blade(
            sc, anchor, sc.uniform(0.3, 0.9) * sc.height, px_per_m, palette, 1.0, sc.uniform(1.5, 3.0)
        )
    count = int(rng.integers(2, 8))
    for i in range(count):
        anchor = np.array([sc.x(sc.uniform(0.05, 0.95)), h + 2])
        length = sc.uniform(0.45, 1.0) * sc.height
        radius = sc.uniform(7.0, 20.0) * sc.unit
        _add_flower(
            sc,
            anchor,
            length,
            px_per_m,
            species[i % 2],
            radius,
            5.0 + rng.uniform(),
            sc.uniform(0, 0.6),
            int(rng.integers(0, 3)),
        )
    for _ in range(int(rng.integers(0, 10))):  # blurred blades right in front of the lens
        anchor = np.array([rng.uniform(0, w), h + 2])
        _add_grass_blade(
            sc, anchor, sc.uniform(0.3, 0.7) * sc.height, px_per_m, palette, 50.0, sc.uniform(2.0, 4.0)
        )


def _cloth(sc: _Scene) -> None:
    """Washing on a line between two posts, in front of a hedge, trees or a wall, grass at the bottom."""
    rng = sc.rng
    w, h = sc.canvas_size
    horizon = sc.y(sc.uniform(0.45, 0.75))
    _sky_and_distance(sc, horizon)
    if rng.uniform() < 0.45:
        wall(
            rng,
            sc.background,
            sc.y(sc.uniform(-0.1, 0.3)),
            horizon + 2,
            str(rng.choice(["plaster", "brick", "planks"])),
            sc.light,
        )
    palette = _GRASS_PALETTES[str(rng.choice(list(_GRASS_PALETTES)))]
    ground(
        rng,
        sc.background,
        horizon,
        hsv(*palette) * 0.6,
        hsv(palette[0], palette[1] * 0.6, palette[2]),
        sc.light,
    )
    _blur_background(sc, sc.uniform(0.5, 2.0))
    px_per_m = sc.height / sc.uniform(1.6, 3.2)
    line_y = sc.y(sc.uniform(0.05, 0.3))
    left, right = sc.x(sc.uniform(-0.1, 0.12)), sc.x(sc.uniform(0.88, 1.1))
    sag = sc.uniform(1.0, 6.0) * sc.unit
    wood = BeamStyle("wood", hsv(0.08, 0.3, 0.45), hsv(0.08, 0.3, 0.5), occlusion=0.2)
    post_w = sc.uniform(1.5, 3.0) * sc.unit
    ground_y = horizon + (h - horizon) * sc.uniform(0.3, 0.7)
    for x in (left, right):
        _add_still(
            sc,
            beam_sprite(
                rng,
                np.array([x, ground_y]),
                np.array([x, line_y - 6 * sc.unit]),
                0.0,
                (post_w, post_w),
                wood,
                sc.light,
                sc.canvas_size,
            ),
            1.0,
        )
    # The line sags from the post tops to a low point mid-way: two straight spans pulled by the washing.
    rope = BeamStyle("stem", hsv(0.1, 0.1, 0.8), hsv(0.1, 0.1, 0.8))
    mid = np.array([(left + right) / 2, line_y + sag])
    for start, end in ((np.array([left, line_y]), mid), (mid, np.array([right, line_y]))):
        thickness = (0.5 * sc.unit, 0.5 * sc.unit)
        span = beam_sprite(rng, start, end, 0.0, thickness, rope, sc.light, sc.canvas_size)
        _add_still(sc, span, 2.0)
    x = left + sc.uniform(0.05, 0.2) * (right - left)
    while x < right - 0.1 * (right - left):
        width = sc.uniform(0.12, 0.3) * sc.width
        height = sc.uniform(0.25, 0.6) * sc.height
        centre_x = x + width / 2
        frac = (centre_x - left) / (right - left)
        top = np.array([centre_x, line_y + sag * (1 - abs(2 * frac - 1))])
        colour = hsv(sc.uniform(0, 1), sc.uniform(0.05, 0.75), sc.uniform(0.55, 0.95))
        pattern = str(rng.choice(["solid", "solid", "stripes", "gingham", "dots"]))
        element = sc.add(
            cloth_sprite(rng, top, width, height, colour, pattern, sc.light, sc.canvas_size),
            3.0 + x / w,
            "cloth",
        )
        if element is not None:
            length_m = height / px_per_m
            freqs = modal.chain_frequencies_hz(length_m, 3)
            bottom = top + np.array([0.0, height])
            damping = sc.uniform(0.08, 0.25)
            sc.beam_modes(element, top, bottom, freqs, damping, px_per_m * 1.5, kind="chain")
            # Billowing: the hem widens and narrows as gusts belly the cloth (a heuristic, stiffer mode).
            spread = sc.modes.add(
                _clamp(freqs[0] * 1.6), damping, px_per_m * 0.4, bottom, np.array([1.0, 0.0])
            )
            element.own.append(
                _OwnMode(spread, "spread", 0, (float(top[0]), float(top[1])), (0.0, float(height)), width / 2)
            )
        x += width + sc.uniform(0.02, 0.12) * sc.width
    _grass_strip(sc, horizon, palette, 15, 70)


_BUILDERS: dict[str, Callable[[_Scene], None]] = {
    "meadow": _meadow,
    "tree": _tree,
    "foliage": _foliage,
    "flowers": _flowers,
    "cloth": _cloth,
}


# ------------------------------------------------------------------------------------------------------------
# Motion synthesis, compositing and rendering


def _modal_coefficients(sc: _Scene, freqs_hz: np.ndarray) -> np.ndarray:
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


def _compose(sc: _Scene) -> tuple[np.ndarray, np.ndarray]:
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
        composite(canvas, element.sprite)  # sprites are cropped to the canvas (_Scene.add)
        sp = element.sprite
        alpha = sp.rgba[..., 3]
        # A strongly defocused thin element may never reach 1/2 coverage, yet it is what visibly moves there.
        covered = alpha >= min(0.5, 0.5 * float(alpha.max()))
        owner[sp.y0 : sp.y0 + sp.height, sp.x0 : sp.x0 + sp.width][covered] = i
    return canvas, owner


def _band_spectrum(sc: _Scene, owner: np.ndarray, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
class _Grade:
    """Camera 'development' of the canvas into an 8-bit frame: exposure, saturation, vignette, grain."""

    exposure: float
    saturation: float
    vignette: float
    grain: float
    seed: int

    @classmethod
    def pick(cls, rng: np.random.Generator) -> _Grade:
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
    def build(cls, element: _Element, q: np.ndarray, canvas_size: tuple[int, int]) -> _WarpLayer:
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


def _layers(sc: _Scene, q: np.ndarray) -> tuple[np.ndarray, list[Sprite | _WarpLayer]]:
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


def _render_frames(sc: _Scene, q: np.ndarray, grade: _Grade | CameraGrade, frame0: np.ndarray) -> np.ndarray:
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


def _band_to_motion(band: np.ndarray, moving: np.ndarray, num_frames: int) -> np.ndarray:
    """(B, 2, N) complex band spectrum -> (T, 2, N) float32 displacements, synthesised on moving pixels only
    (still pixels are exactly zero)."""
    pixels = np.flatnonzero(moving)
    coeffs = np.concatenate([band.real[:, :, pixels], band.imag[:, :, pixels]], axis=0).reshape(
        2 * len(band), -1
    )
    out = np.zeros((num_frames, 2, band.shape[-1]), np.float32)
    out[:, :, pixels] = (_band_basis(len(band), num_frames) @ coeffs).reshape(num_frames, 2, -1)
    return out


def _amplitude_scale(
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
    motion = _band_to_motion(band[:, :, moving][:, :, worst], np.ones(len(worst), bool), num_frames)
    peak = float(np.sqrt((motion**2).sum(axis=1)).max())
    return min(target_rms / reference, cap / max(peak, 1e-12))


# ------------------------------------------------------------------------------------------------------------
# Public API


def _check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise GIDInputError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def generate_scene(
    seed: int,
    size: tuple[int, int] = DEFAULT_SIZE,
    num_frames: int = 150,
    fps: float = 30.0,
    num_frequencies: int = 16,
    render_frames: bool = False,
    return_displacements: bool = True,
    scene_type: str | None = None,
    amplitude_px: float | None = None,
    world: PhotoWorld | None = None,
) -> ProceduralSample:
    """Generate one procedural scene with exact ground-truth motion.

    Args:
        seed: non-negative integer; the same arguments give the same sample bit for bit.
        size: (width, height) in pixels, each >= 32.
        num_frames: T >= 2 frames at fps frames per second; the motion is periodic over them.
        num_frequencies: K bins of the returned spectral volume, 1 <= K <= T // 2 + 1. The motion itself
            always occupies the bins up to 3 Hz (bins 1..15 for the default 150 frames at 30 fps).
        render_frames: also render all T frames (much slower than the motion alone).
        return_displacements: build the (T, 2, H, W) displacements; False returns only the spectrum (faster).
        scene_type: one of SCENE_TYPES (or, with a world, of photo_world.PHOTO_SCENE_TYPES), or None for
            SCENE_TYPES[seed % len(SCENE_TYPES)] (with a world: world.scene_type(seed)).
        amplitude_px: motion strength, the 95th percentile over moving pixels of the RMS displacement, in
            pixels of a 256x160 frame (scaled with resolution); None draws it log-uniformly in [0.3, 2] from
            the seed (with a world: in photo_world.AMPLITUDE_RANGE_PX). No pixel moves further than
            AMPLITUDE_CAP_PX (also scaled), which may lower it.
        world: a photo_world.PhotoWorld (photo textures, more scene types, camera realism); None generates the
            painted scenes exactly as without it.

    Returns:
        a ProceduralSample. Raises GIDInputError for bad arguments.
    """
    seed = _check_int("seed", seed, 0)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise GIDInputError(f"size must be (width, height), got {size!r}")
    width, height = (_check_int(name, v, 32) for name, v in zip(("width", "height"), size, strict=True))
    num_frames = _check_int("num_frames", num_frames, 2)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise GIDInputError(f"fps must be a positive number, got {fps!r}")
    num_frequencies = _check_int("num_frequencies", num_frequencies, 1)
    if num_frequencies > num_frames // 2 + 1:
        raise GIDInputError(
            f"num_frequencies must be <= T // 2 + 1 = {num_frames // 2 + 1}, got {num_frequencies}"
        )
    freqs = modal.band_frequencies_hz(num_frames, fps, MAX_FREQUENCY_HZ)
    if len(freqs) == 0:
        raise GIDInputError(
            f"{num_frames} frames at {fps} fps resolve no frequency in (0, {MAX_FREQUENCY_HZ}] Hz below "
            "Nyquist; use a longer clip"
        )
    if amplitude_px is not None and (
        isinstance(amplitude_px, bool)
        or not isinstance(amplitude_px, (int, float))
        or not math.isfinite(amplitude_px)
        or amplitude_px < 0
    ):
        raise GIDInputError(f"amplitude_px must be a non-negative number or None, got {amplitude_px!r}")
    known = SCENE_TYPES if world is None else SCENE_TYPES + PHOTO_SCENE_TYPES
    if scene_type is not None and scene_type not in known:
        raise GIDInputError(f"scene_type must be one of {known} or None, got {scene_type!r}")

    rng = np.random.default_rng(seed)
    # Scene types cycle with the seed, so any run of consecutive seeds is balanced.
    if scene_type is not None:
        kind = scene_type
    else:
        kind = SCENE_TYPES[seed % len(SCENE_TYPES)] if world is None else world.scene_type(seed)
    sc = _Scene(rng, width, height, kind)
    photo_builder = None if world is None else world.builder(kind)
    if photo_builder is not None:
        photo_builder(sc, world)
    else:
        _BUILDERS[kind](sc)
        if world is not None:
            texture_painted_scene(sc, world)
    canvas, owner = _compose(sc)
    grade = _Grade.pick(rng) if world is None else CameraGrade.pick(rng)

    low, high = (0.3, 2.0) if world is None else AMPLITUDE_RANGE_PX
    drawn_rms = float(np.exp(rng.uniform(math.log(low), math.log(high))))  # drawn even if unused: same scene
    target_rms = sc.unit * (drawn_rms if amplitude_px is None else float(amplitude_px))
    coefficients = _modal_coefficients(sc, freqs) if len(sc.modes) else np.zeros((len(freqs), 0), complex)
    band, moving = _band_spectrum(sc, owner, coefficients)
    scale = _amplitude_scale(band, moving, num_frames, target_rms, AMPLITUDE_CAP_PX * sc.unit)
    band *= np.float32(scale)
    coefficients = coefficients * scale

    # Full band spectrum with its DC term: frame 0 is pinned, so S_0 = -sum_k 2 Re(S_k) (the clip mean).
    full = np.concatenate([-2.0 * band.real.sum(axis=0, keepdims=True), band], axis=0)
    channels = np.concatenate([full.real, full.imag], axis=1).reshape(len(full), 4, height, width)
    full_t = torch.from_numpy(np.ascontiguousarray(channels, dtype=np.float32))
    if num_frequencies <= len(full_t):
        spectrum = full_t[:num_frequencies].clone()
    else:
        spectrum = torch.cat([full_t, full_t.new_zeros(num_frequencies - len(full_t), 4, height, width)])
    displacements = None
    if return_displacements:
        displacements = torch.from_numpy(
            _band_to_motion(band, moving, num_frames).reshape(num_frames, 2, height, width)
        )

    p = sc.pad
    image = grade.develop(canvas[:, p : p + height, p : p + width], 0)
    frames = None
    if render_frames:
        q = modal.modal_time_series(coefficients, num_frames)
        frames = _render_frames(sc, q, grade, image)
    moving_elements = [e for e in sc.elements if e.moving]
    meta = {
        "scene_type": kind,
        "seed": seed,
        "size": [width, height],
        "num_frames": num_frames,
        "fps": float(fps),
        "band_hz": [float(freqs[0]), float(freqs[-1])],
        "num_elements": len(sc.elements),
        "num_moving_elements": len(moving_elements),
        "element_counts": {
            k: sum(e.kind == k for e in sc.elements) for k in sorted({e.kind for e in sc.elements})
        },
        "num_modes": len(sc.modes),
        "natural_hz": [min(sc.modes.natural_hz, default=0.0), max(sc.modes.natural_hz, default=0.0)],
        "lighting": sc.light.name,
        "wind_speed_px_s": float(sc.wind_speed_px_s),
        "target_rms_px": target_rms,
        "moving_fraction": float(moving.mean()),
        "photo_world": world is not None,
    }
    return ProceduralSample(
        image=image,
        displacements=displacements,
        spectrum=spectrum,
        moving_mask=torch.from_numpy(moving.reshape(height, width)),
        frames=frames,
        meta=meta,
    )
