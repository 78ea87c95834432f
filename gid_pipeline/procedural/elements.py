"""The building blocks of a procedural scene: elements (premultiplied sprites in painter's order) with their linear
deformation modes, the bank of modal parameters, and the scene under construction (a padded canvas, its lighting,
wind and depth of field). Displacements are in canvas pixels; pixel (i, j) covers the unit square centred on x = j,
y = i."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import modal
from .paint import Light, Sprite, blur_sprite, pick_light

DEFAULT_SIZE = (256, 160)  # (width, height)


AMPLITUDE_CAP_PX = 10.0  # no pixel of a 256x160 scene moves further than this (scales with resolution)


@dataclass(frozen=True)
class OwnMode:
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
Rigid = tuple[int, float, float, float, float, float]


@dataclass(eq=False)
class Element:
    """A sprite in painter's order (larger depth is nearer, drawn later) and its linear deformation modes."""

    sprite: Sprite
    depth: float
    own: list[OwnMode] = field(default_factory=list)
    rigid: list[Rigid] = field(default_factory=list)
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

    def attachment(self, point: np.ndarray) -> list[Rigid]:
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
class ModeBank:
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
F_MIN_HZ, F_MAX_HZ = 0.25, 2.9


class Scene:
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
        self.elements: list[Element] = []
        self.modes = ModeBank()
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
    def add(self, sprite: Sprite | None, depth: float, kind: str, blur: float = 0.0) -> Element | None:
        if sprite is None:
            return None
        sprite = crop_sprite(blur_sprite(sprite, blur * self.unit), self.canvas_size)
        if sprite is None:
            return None
        element = Element(sprite, depth, kind=kind)
        self.elements.append(element)
        return element

    def beam_modes(
        self,
        element: Element,
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
        scale = float(np.clip(f1, F_MIN_HZ, F_MAX_HZ)) / f1
        for n, f in enumerate(frequencies):
            index = self.modes.add(f * scale, damping, gain * participation[n], anchor + 0.7 * chord, normal)
            element.own.append(
                OwnMode(
                    index, kind, n, (float(anchor[0]), float(anchor[1])), (float(chord[0]), float(chord[1]))
                )
            )

    def flutter_mode(
        self,
        element: Element,
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
            OwnMode(index, "rotate", 0, (float(pivot[0]), float(pivot[1])), (0.0, 0.0), radius)
        )

    def dof_blur(self, nearness: float, focus: float) -> float:
        """Depth-of-field blur sigma (pixels at 256x160) at a nearness (1 / depth, 0 = infinitely far)."""
        return min(self.aperture * abs(nearness - focus), 4.0)


def crop_sprite(sprite: Sprite, canvas_size: tuple[int, int]) -> Sprite | None:
    """The part of a sprite inside a canvas of (width, height), or None if nothing visible is left."""
    x0, y0 = max(sprite.x0, 0), max(sprite.y0, 0)
    x1, y1 = min(sprite.x0 + sprite.width, canvas_size[0]), min(sprite.y0 + sprite.height, canvas_size[1])
    if x1 <= x0 or y1 <= y0:
        return None
    rgba = sprite.rgba[y0 - sprite.y0 : y1 - sprite.y0, x0 - sprite.x0 : x1 - sprite.x0]
    return Sprite(np.ascontiguousarray(rgba), x0, y0) if rgba[..., 3].any() else None


def clamp_frequency(frequency_hz: float) -> float:
    return float(np.clip(frequency_hz, F_MIN_HZ, F_MAX_HZ))
