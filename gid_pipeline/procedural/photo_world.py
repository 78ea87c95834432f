"""A photographic world for the procedural scenes, so that a model trained on them learns what moves from what it
looks like in real photos rather than from the painter's palette.

Three things change when ``generate_scene`` is given a ``PhotoWorld``:

- **Photo textures.** The painted scene types keep their geometry and their exact modal motion, but most of their
  elements take the colours of a photograph crop of their material (data.texture_bank): grass blades of grass,
  leaf clusters and leaves of foliage, flower heads of petals, stems and twigs of branches, washing of cloth, the
  trunk of bark; the sky of sky and the ground of ground. The crop is projected onto the canvas (one patch per
  material per scene), and each element keeps some of its own painted shading, so clusters still read as lit
  volumes. Only colours change: the motion, the owner map and the occlusions are those of the painted scene.
- **Scenes seen in real clips.** ``candle`` (flames swaying and stretching over still candles in a dark room lit
  by them), ``pendulum`` (an ornament or a watch swinging on a string before a still background), ``shadows``
  (leaf shadows swaying on a sunlit wall or path), ``water`` (a water surface bobbing under travelling waves below
  a still shore or sky) and ``still`` (a view of still materials only: nothing moves).
- **Camera realism.** Exposure from dim to bright, white balance, gamma, defocus, sensor noise, vignetting and
  JPEG compression, applied alike to every frame (CameraGrade).

The world changes nothing for a scene generated without it (the procedural scenes stay exactly as they were).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from . import modal
from .elements import OwnMode, Scene
from .paint import Sprite, blur_sprite, hsv, smoothstep
from .sprites import BeamStyle, beam_sprite, foliage_sprite

PAINTED_SCENE_TYPES = ("meadow", "tree", "foliage", "flowers", "cloth")
PHOTO_SCENE_TYPES = ("candle", "pendulum", "shadows", "water", "still")
# One cycle of scene types (by seed): the painted ones (photo-textured) twice as often as each new one.
WORLD_CYCLE = (*PAINTED_SCENE_TYPES, *PHOTO_SCENE_TYPES, *PAINTED_SCENE_TYPES)
# Materials an element of each kind takes its colours from.
ELEMENT_MATERIALS: dict[str, tuple[str, ...]] = {
    "grass": ("grass",),
    "leaf": ("foliage",),
    "foliage": ("foliage",),
    "flower": ("petals",),
    "stem": ("branches", "grass"),
    "branch": ("branches", "trunk"),
    "trunk": ("trunk",),
    "cloth": ("cloth",),
    "still": ("rock", "wall", "building", "trunk"),
}
SKY, GROUND = ("sky",), ("ground", "rock")
BACKDROPS = ("wall", "building", "rock", "ground", "trunk", "sky")
# Per-scene motion strength of the photographic world: the 95th percentile of the RMS displacement of moving
# pixels at 256x160, log-uniform over this range (pixels). Real clips move 1-7 px (DESIGN.md, section 8).
AMPLITUDE_RANGE_PX = (0.4, 6.0)
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


class TextureSource(Protocol):
    """What the world needs of a texture bank (data.texture_bank.TextureBank)."""

    def sample(
        self, rng: np.random.Generator, materials: Sequence[str], height: int, width: int
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class PhotoWorld:
    """The photographic world (module docstring).

    textures: the texture bank; texture_probability: chance that an element (or the sky, or the ground) of a
    painted scene type takes a photo texture; cycle: scene types in the order seeds cycle through them.
    """

    textures: TextureSource
    texture_probability: float = 0.85
    cycle: tuple[str, ...] = WORLD_CYCLE

    def scene_type(self, seed: int) -> str:
        return self.cycle[seed % len(self.cycle)]

    def builder(self, scene_type: str) -> Callable[[Scene, PhotoWorld], None] | None:
        """The builder of one of PHOTO_SCENE_TYPES; None for a painted type (procedural builds it)."""
        return PHOTO_BUILDERS.get(scene_type)

    def texture(self, rng: np.random.Generator, materials: Sequence[str], height: int, width: int) -> np.ndarray:
        """(height, width, 3) float32 in [0, 1] from the bank."""
        return self.textures.sample(rng, materials, height, width).astype(np.float32)


# ------------------------------------------------------------------------------------------------------------
# Photo textures for the painted scene types


def _retextured(sprite: Sprite, texture: np.ndarray, keep_shading: float) -> Sprite:
    """The sprite with the colours of ``texture`` (canvas-sized (Hc, Wc, 3)) under it, times a share
    ``keep_shading`` of its own relative shading; alpha (its shape) unchanged."""
    rgba = sprite.rgba
    alpha = rgba[..., 3:]
    straight = rgba[..., :3] / np.maximum(alpha, 1e-6)
    luma = straight @ _LUMA
    mean = float((luma * alpha[..., 0]).sum() / max(float(alpha.sum()), 1e-6))
    shading = np.clip(luma / max(mean, 1e-3), 0.25, 2.5)
    patch = texture[sprite.y0 : sprite.y0 + sprite.height, sprite.x0 : sprite.x0 + sprite.width]
    rgb = np.clip(patch * (1.0 - keep_shading + keep_shading * shading)[..., None], 0.0, 1.0)
    return Sprite(np.concatenate([rgb * alpha, alpha], axis=-1).astype(np.float32), sprite.x0, sprite.y0)


def texture_painted_scene(sc: Scene, world: PhotoWorld) -> None:
    """Give a painted scene's elements, sky and ground photo textures (module docstring), in place."""
    rng = sc.rng
    width, height = sc.canvas_size
    projected: dict[tuple[str, ...], np.ndarray] = {}

    def texture_of(materials: tuple[str, ...]) -> np.ndarray:
        if materials not in projected:
            projected[materials] = world.texture(rng, materials, height, width)
        return projected[materials]

    keep_shading = float(rng.uniform(0.3, 0.8))
    for element in sc.elements:
        materials = ELEMENT_MATERIALS.get(element.kind)
        if materials is not None and rng.random() < world.texture_probability:
            element.sprite = _retextured(element.sprite, texture_of(materials), keep_shading)
    horizon = getattr(sc, "horizon", None)
    rows = np.arange(height, dtype=np.float32)[:, None, None]
    if horizon is None:  # a bokeh backdrop: sometimes a blurred still view instead
        if rng.random() < 0.5 * world.texture_probability:
            view = world.texture(rng, BACKDROPS, height, width)
            sc.background = cv2.GaussianBlur(view, (0, 0), sc.uniform(3.0, 8.0) * sc.unit)
        return
    soft = max(2.0 * sc.unit, 1.0)
    below = smoothstep(-soft, soft, rows - horizon)
    if rng.random() < world.texture_probability:
        sky = world.texture(rng, SKY, height, width)
        sc.background = sc.background * below + sky * (1.0 - below)
    if rng.random() < 0.5 * world.texture_probability:
        ground = world.texture(rng, GROUND, height, width)
        sc.background = sc.background * (1.0 - below) + ground * below


# ------------------------------------------------------------------------------------------------------------
# Sprite painters of the new scene types


def _grid(x0: int, y0: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    return np.meshgrid(np.arange(x0, x0 + width, dtype=np.float32), np.arange(y0, y0 + height, dtype=np.float32))


def _box(centre_x: float, top: float, bottom: float, half_width: float, canvas: tuple[int, int]) -> tuple[int, ...]:
    x0, y0 = max(math.floor(centre_x - half_width) - 2, 0), max(math.floor(top) - 2, 0)
    x1 = min(math.ceil(centre_x + half_width) + 3, canvas[0])
    y1 = min(math.ceil(bottom) + 3, canvas[1])
    return x0, y0, x1, y1


def flame_sprite(base: np.ndarray, height: float, half_width: float, warmth: float, canvas: tuple[int, int]):
    """A candle flame rising from base (x, y): a teardrop, white-yellow at its core, orange to red at its rim
    and tip, soft-edged. Returns a Sprite or None when off the canvas."""
    x0, y0, x1, y1 = _box(float(base[0]), float(base[1]) - height, float(base[1]) + 0.2 * half_width, half_width,
                          canvas)  # fmt: skip
    if x1 <= x0 or y1 <= y0:
        return None
    gx, gy = _grid(x0, y0, x1 - x0, y1 - y0)
    v = (base[1] - gy) / height  # 0 at the base, 1 at the tip
    profile = np.clip(v + 0.08, 0.0, 1.0) ** 0.45 * np.clip(1.0 - v, 0.0, 1.0) ** 0.8 * 1.6
    u = np.abs(gx - base[0]) / half_width
    coverage = np.clip((profile - u) * half_width + 0.5, 0.0, 1.0) * (v > -0.1)
    core = np.clip(1.0 - u / np.maximum(profile, 1e-3), 0.0, 1.0) * np.clip(1.0 - v * 1.3, 0.0, 1.0)
    rim = np.array([1.0, 0.35 + 0.2 * warmth, 0.08], np.float32)
    white = np.array([1.0, 0.97, 0.85], np.float32)
    rgb = np.minimum(rim + (white - rim) * core[..., None] ** 0.6, 1.0) * 1.2  # brighter than the room
    blue = np.clip(0.25 - v, 0.0, 0.25) * 2.0 * (u > 0.4)  # the blue base of a flame
    rgb = rgb * (1.0 - blue[..., None]) + np.array([0.3, 0.4, 1.0], np.float32) * blue[..., None]
    alpha = coverage * (0.85 + 0.15 * core)
    return Sprite(np.concatenate([rgb * alpha[..., None], alpha[..., None]], axis=-1).astype(np.float32), x0, y0)


def cylinder_sprite(
    centre_x: float, top: float, bottom: float, half_width: float, albedo: np.ndarray, light_x: float,
    canvas: tuple[int, int], texture: np.ndarray | None = None,
) -> Sprite | None:  # fmt: skip
    """An upright cylinder (a candle, a cup) from top to bottom (canvas rows), lit from canvas column light_x and
    from its own top (a glowing candle). texture: an optional canvas-sized (Hc, Wc, 3) albedo modulation."""
    x0, y0, x1, y1 = _box(centre_x, top - 0.3 * half_width, bottom, half_width, canvas)
    if x1 <= x0 or y1 <= y0:
        return None
    gx, gy = _grid(x0, y0, x1 - x0, y1 - y0)
    lateral = (gx - centre_x) / half_width
    cap = 0.3 * half_width
    inside_top = ((gy - top) / cap) ** 2 + lateral**2 <= 1.0
    coverage = np.clip((1.0 - np.abs(lateral)) * half_width + 0.5, 0.0, 1.0)
    coverage = coverage * (((gy >= top) & (gy <= bottom)) | inside_top)
    normal_x = np.clip(lateral, -1.0, 1.0)
    facing = np.sqrt(np.clip(1.0 - normal_x**2, 0.0, 1.0))
    side = np.clip(0.5 + 0.5 * normal_x * np.sign(light_x - centre_x), 0.0, 1.0)
    glow = np.exp(-np.clip(gy - top, 0.0, None) / max(bottom - top, 1.0) * 3.0)
    shading = 0.25 + 0.5 * facing * side + 0.6 * glow
    colour = albedo[None, None, :] * shading[..., None]
    if texture is not None:
        patch = texture[y0:y1, x0:x1]
        colour = colour * (0.7 + 0.6 * patch / max(float(patch.mean()), 1e-3))
    colour = np.clip(colour, 0.0, 1.0)
    return Sprite(np.concatenate([colour * coverage[..., None], coverage[..., None]], axis=-1).astype(np.float32),
                  x0, y0)  # fmt: skip


def disc_sprite(
    centre: np.ndarray, radius: float, texture: np.ndarray, metal: float, canvas: tuple[int, int]
) -> Sprite | None:
    """A shiny sphere or disc (an ornament, a watch) of the given radius: the texture's colours under sphere
    shading and a specular highlight, more mirror-like with metal in [0, 1]."""
    x0, y0, x1, y1 = _box(float(centre[0]), float(centre[1]) - radius, float(centre[1]) + radius, radius, canvas)
    if x1 <= x0 or y1 <= y0:
        return None
    gx, gy = _grid(x0, y0, x1 - x0, y1 - y0)
    dx, dy = (gx - centre[0]) / radius, (gy - centre[1]) / radius
    rho = np.hypot(dx, dy)
    coverage = np.clip((1.0 - rho) * radius + 0.5, 0.0, 1.0)
    nz = np.sqrt(np.clip(1.0 - rho**2, 0.0, 1.0))
    diffuse = 0.35 + 0.65 * np.clip(-0.4 * dx - 0.5 * dy + 0.75 * nz, 0.0, 1.0)
    highlight = np.exp(-((dx + 0.35) ** 2 + (dy + 0.4) ** 2) / 0.02) * (0.4 + 0.6 * metal)
    rgb = np.clip(texture[y0:y1, x0:x1] * diffuse[..., None] + highlight[..., None], 0.0, 1.0)
    return Sprite(np.concatenate([rgb * coverage[..., None], coverage[..., None]], axis=-1).astype(np.float32),
                  x0, y0)  # fmt: skip


def shadow_sprite(caster: Sprite, darkness: float, penumbra: float) -> Sprite:
    """A cast shadow with the caster's shape: black at ``darkness`` opacity, blurred by a penumbra of that sigma."""
    alpha = caster.rgba[..., 3:] * darkness
    return blur_sprite(Sprite(np.concatenate([np.zeros_like(caster.rgba[..., :3]), alpha], axis=-1), caster.x0,
                              caster.y0), penumbra)  # fmt: skip


# ------------------------------------------------------------------------------------------------------------
# The new scene types


def _backdrop(sc: Scene, world: PhotoWorld, materials: Sequence[str], gain: float) -> None:
    """A canvas-sized still view of one of the materials, times gain, as the scene's background."""
    width, height = sc.canvas_size
    sc.background = world.texture(sc.rng, tuple(materials), height, width) * np.float32(gain)


def _candle(sc: Scene, world: PhotoWorld) -> None:
    """One to three candles in a dark room: still candle bodies (bare, or in a glass), swaying flames, the warm
    light they cast falling off into the dark."""
    rng = sc.rng
    width, height = sc.canvas_size
    _backdrop(sc, world, ("wall", "building", "rock", "trunk", "ground"), sc.uniform(0.0, 0.15) ** 1.5)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float32)
    light = np.zeros((height, width), np.float32)
    count = int(rng.choice([1, 1, 1, 2, 3]))
    for index in range(count):
        centre_x = sc.x(sc.uniform(0.15, 0.85) if count == 1 else (index + sc.uniform(0.3, 0.7)) / count)
        bottom = sc.y(sc.uniform(0.8, 1.3))
        body_height = sc.height * sc.uniform(0.12, 0.6)
        top = bottom - body_height
        half_width = sc.width * sc.uniform(0.02, 0.14) / math.sqrt(count)
        albedo = hsv(*(rng.choice([(0.1, 0.15, 0.95), (0.0, 0.8, 0.75), (0.12, 0.3, 0.9), (0.08, 0.05, 0.98)])))
        texture = world.texture(rng, ("wall", "rock", "cloth"), height, width) if rng.random() < 0.5 else None
        sc.add(cylinder_sprite(centre_x, top, bottom, half_width, albedo, centre_x, sc.canvas_size, texture),
               5.0 + index, "still")  # fmt: skip
        if rng.random() < 0.25:  # a glass holder around the candle: faint, with bright rims
            glass = cylinder_sprite(centre_x, top - 0.2 * body_height, bottom, half_width * sc.uniform(1.3, 2.0),
                                    hsv(sc.uniform(0, 1), 0.1, 0.9), centre_x, sc.canvas_size)  # fmt: skip
            if glass is not None:
                glass.rgba[...] *= sc.uniform(0.15, 0.35)
                sc.add(glass, 7.0 + index, "still")
        flame_height = sc.height * sc.uniform(0.08, 0.45) / math.sqrt(count)
        base = np.array([centre_x + sc.uniform(-0.1, 0.1) * half_width, top - 0.1 * flame_height])
        flame = sc.add(flame_sprite(base, flame_height, flame_height * sc.uniform(0.15, 0.28), sc.uniform(0, 1),
                                    sc.canvas_size), 6.0 + index, "flame", sc.dof_blur(0.5, 0.5))  # fmt: skip
        light += np.exp(-((columns - base[0]) ** 2 + (rows - base[1] + 0.5 * flame_height) ** 2)
                        / (2.0 * (flame_height * sc.uniform(0.7, 2.5)) ** 2))  # fmt: skip
        if flame is None:
            continue
        tip = base - np.array([0.0, flame_height])
        f1 = sc.uniform(0.8, 2.6)
        sc.beam_modes(flame, base, tip, [f1, f1 * 2.4, f1 * 4.1], sc.uniform(0.05, 0.2), 1.0)
        stretch = sc.modes.add(min(f1 * sc.uniform(1.1, 1.6), 2.9), sc.uniform(0.05, 0.2), 0.5, tip,
                               np.array([0.0, 1.0]))  # fmt: skip
        flame.own.append(_own_mode(stretch, "stretch", base, tip - base))
    warm = np.array([1.0, 0.62, 0.3], np.float32) * sc.uniform(0.02, 0.3)
    sc.background = sc.background * (1.0 + 4.0 * light[..., None]) + warm * light[..., None]


def _pendulum(sc: Scene, world: PhotoWorld) -> None:
    """An ornament or a watch swinging on a string from a pivot at or above the top of the frame."""
    rng = sc.rng
    width, height = sc.canvas_size
    _backdrop(sc, world, BACKDROPS, sc.uniform(0.3, 1.3))
    if rng.random() < 0.5:
        sc.background = cv2.GaussianBlur(sc.background, (0, 0), sc.uniform(1.0, 5.0) * sc.unit)
    if rng.random() < 0.3:  # a plain, bright studio wall
        sc.background = sc.background * 0.2 + np.float32(sc.uniform(0.6, 0.9))
    pivot = np.array([sc.x(sc.uniform(0.25, 0.75)), sc.y(sc.uniform(-0.6, 0.1))])
    bob_centre = np.array([pivot[0] + sc.uniform(-0.08, 0.08) * sc.width, sc.y(sc.uniform(0.45, 0.85))])
    radius = sc.height * sc.uniform(0.03, 0.16)
    metal = sc.uniform(0.0, 1.0)
    string_rgb = hsv(sc.uniform(0.08, 0.15), sc.uniform(0.2, 0.7), sc.uniform(0.3, 0.9))
    style = BeamStyle("stem", string_rgb, string_rgb)
    attach = bob_centre - (bob_centre - pivot) / np.hypot(*(bob_centre - pivot)) * radius
    string = sc.add(beam_sprite(rng, pivot, attach, 0.0, (0.6 * sc.unit, 0.6 * sc.unit), style, sc.light,
                                sc.canvas_size), 5.0, "string")  # fmt: skip
    bob = sc.add(disc_sprite(bob_centre, radius, world.texture(rng, (*BACKDROPS, "cloth", "petals"), height, width),
                             metal, sc.canvas_size), 5.1, "bob")  # fmt: skip
    length_px = float(np.hypot(*(bob_centre - pivot)))
    length_m = sc.uniform(0.1, 1.2)  # a pendulum of this length swings at sqrt(g / L) / 2 pi Hz
    frequency = float(np.clip(math.sqrt(9.81 / length_m) / (2 * math.pi), 0.35, 1.6))
    carrier = string if string is not None else bob
    if carrier is None:
        return
    sc.flutter_mode(carrier, pivot, length_px, frequency, sc.uniform(0.01, 0.06), 1.0)
    if bob is not None and string is not None:
        bob.rigid = string.attachment(bob_centre)


def _shadows(sc: Scene, world: PhotoWorld) -> None:
    """Leaf shadows swaying on a sunlit wall, floor or path: the casters are out of the frame."""
    rng = sc.rng
    _backdrop(sc, world, ("wall", "building", "ground", "rock"), sc.uniform(0.8, 1.5))
    pale = sc.uniform(0.0, 0.85)  # sunlit plaster is often nearly white: wash the texture out toward it
    sc.background = sc.background * (1.0 - pale) + np.float32(pale * sc.uniform(0.8, 1.1))
    darkness = sc.uniform(0.3, 0.7)
    penumbra = sc.uniform(0.5, 4.0) * sc.unit
    px_per_m = sc.height * sc.uniform(0.8, 2.0)
    for _ in range(int(rng.integers(3, 12))):
        anchor = np.array([sc.x(sc.uniform(-0.3, 1.3)), sc.y(sc.uniform(-0.5, 1.5))])
        centre = np.array([sc.x(sc.uniform(0.0, 1.0)), sc.y(sc.uniform(0.0, 1.0))])
        if rng.random() < 0.4:  # a frond: a long leaf shape from the anchor
            style = BeamStyle("leaf", np.zeros(3), np.zeros(3), profile="leaf")
            caster = beam_sprite(rng, anchor, centre, float(np.hypot(*(centre - anchor))) * rng.normal(0, 0.15),
                                 (sc.height * sc.uniform(0.02, 0.1),) * 2, style, sc.light, sc.canvas_size)  # fmt: skip
        else:
            size = sc.height * sc.uniform(0.1, 0.5)
            caster = foliage_sprite(rng, centre, (size, size * sc.uniform(0.5, 1.0)),
                                    (sc.uniform(3.0, 9.0) * sc.unit, sc.uniform(1.5, 4.0) * sc.unit),
                                    int(rng.integers(20, 80)), np.zeros(3), sc.light, sc.canvas_size)  # fmt: skip
        if caster is None:
            continue
        element = sc.add(shadow_sprite(caster, darkness, penumbra), 5.0, "shadow")
        if element is None:
            continue
        length_m = float(np.hypot(*(centre - anchor))) / px_per_m
        freqs = modal.beam_frequencies_hz(max(length_m, 0.2), 0.01, 900.0, 0.0, 2)
        sc.beam_modes(element, anchor, centre, freqs, sc.uniform(0.05, 0.2), px_per_m)
        sc.flutter_mode(element, centre, max(element.sprite.width, 4) / 2, sc.uniform(1.2, 2.9), 0.15,
                        px_per_m * 0.02)  # fmt: skip


def _water(sc: Scene, world: PhotoWorld) -> None:
    """A water surface bobbing under a few travelling waves, below a still shore or sky."""
    rng = sc.rng
    width, height = sc.canvas_size
    _backdrop(sc, world, ("sky", "building", "rock", "trunk", "ground"), sc.uniform(0.3, 1.1))
    horizon = sc.y(sc.uniform(-0.2, 0.55))
    night = rng.random() < 0.3
    water = world.texture(rng, ("water",), height, width) * np.float32(sc.uniform(0.05, 0.2) if night else
                                                                          sc.uniform(0.3, 1.1))  # fmt: skip
    if night:  # dark water and sky with the streaked reflections of coloured lights
        sc.background = sc.background * np.float32(0.1)
        for _ in range(int(rng.integers(3, 15))):
            column = int(rng.integers(width))
            streak = np.zeros((height, width), np.float32)
            streak[int(max(horizon, 0)) :, column] = 1.0
            streak = cv2.GaussianBlur(streak, (0, 0), sc.uniform(0.8, 3.0) * sc.unit)
            water = water + streak[..., None] * hsv(sc.uniform(0, 1), sc.uniform(0.2, 0.9), 1.0) * 4.0
    rows = np.arange(height, dtype=np.float32)[:, None]
    coverage = np.broadcast_to(np.clip(rows - horizon + 0.5, 0.0, 1.0), (height, width)).astype(np.float32)
    sparkle = (rng.random((height, width)) < 0.004).astype(np.float32)
    water = np.clip(water + cv2.GaussianBlur(sparkle, (0, 0), 0.8)[..., None] * 3.0, 0.0, 1.0)
    rgba = np.concatenate([water * coverage[..., None], coverage[..., None]], axis=-1)
    surface = sc.add(Sprite(rgba.astype(np.float32), 0, 0), 5.0, "water")
    if surface is None:
        return
    if rng.random() < 0.4:  # a still beach, quay or bank in front of the water
        shore = sc.y(sc.uniform(0.75, 1.0))
        ground = world.texture(rng, ("ground", "rock", "building"), height, width)
        front = np.clip(np.arange(height, dtype=np.float32)[:, None] - shore + 0.5, 0.0, 1.0)
        ground_rgba = np.concatenate([ground * front[..., None], np.broadcast_to(front, (height, width))[..., None]],
                                     axis=-1)  # fmt: skip
        sc.add(Sprite(ground_rgba.astype(np.float32), 0, 0), 6.0, "still")
    extent = max(height - horizon, 1.0)
    for _ in range(int(rng.integers(2, 6))):
        # Long enough that the surface's slope |grad d| stays well below 1 (the renderer inverts d by iteration).
        wavelength = sc.uniform(0.2, 0.8) * sc.width
        angle = sc.uniform(-0.6, 0.6) + math.pi / 2 * float(rng.random() < 0.3)
        k = 2.0 * math.pi / wavelength
        wave = (k * math.cos(angle), k * math.sin(angle) * 1.5)  # foreshortened: crests closer vertically
        frequency = float(np.clip(sc.uniform(0.6, 1.6) * math.sqrt(0.1 * sc.width / wavelength), 0.3, 2.9))
        damping = sc.uniform(0.05, 0.2)
        for order in range(4):  # cos / sin, vertical / horizontal: a travelling wave and its sway
            gain = 1.0 if order < 2 else sc.uniform(0.1, 0.6)
            index = sc.modes.add(frequency, damping, gain, np.array([sc.x(sc.uniform(0, 1)), horizon + extent / 2]),
                                 np.array([0.0, 1.0]))  # fmt: skip
            surface.own.append(_own_mode(index, "wave", np.array([0.0, horizon]), np.array(wave), order, extent))


def _still(sc: Scene, world: PhotoWorld) -> None:
    """A view of still materials: sky over a building, a wall, rocks or a path; nothing moves."""
    rng = sc.rng
    width, height = sc.canvas_size
    _backdrop(sc, world, ("building", "wall", "rock", "ground", "trunk", "water"), sc.uniform(0.5, 1.3))
    if rng.random() < 0.6:
        horizon = sc.y(sc.uniform(0.15, 0.6))
        sky = world.texture(rng, SKY, height, width) * np.float32(sc.uniform(0.7, 1.3))
        rows = np.arange(height, dtype=np.float32)[:, None, None]
        below = smoothstep(-1.5, 1.5, rows - horizon)
        sc.background = sc.background * below + sky * (1.0 - below)


def _own_mode(index: int, kind: str, origin: np.ndarray, chord: np.ndarray, order: int = 0, radius: float = 1.0):
    return OwnMode(index, kind, order, (float(origin[0]), float(origin[1])), (float(chord[0]), float(chord[1])),
                    radius)  # fmt: skip


PHOTO_BUILDERS: dict[str, Callable[[Scene, PhotoWorld], None]] = {
    "candle": _candle,
    "pendulum": _pendulum,
    "shadows": _shadows,
    "water": _water,
    "still": _still,
}


# ------------------------------------------------------------------------------------------------------------
# Camera realism


@dataclass(frozen=True)
class CameraGrade:
    """A camera's development of the canvas into 8-bit frames, drawn per scene and applied alike to every frame:
    exposure (dim rooms to bright days), white balance, gamma, saturation, defocus, vignetting, sensor noise
    (fresh in every frame, fixed by the seed) and JPEG compression (quality 0 = none)."""

    exposure: float
    white_balance: tuple[float, float, float]
    gamma: float
    saturation: float
    defocus: float
    vignette: float
    noise: float
    jpeg_quality: int
    seed: int

    @classmethod
    def pick(cls, rng: np.random.Generator) -> CameraGrade:
        tint = rng.normal(0.0, 0.06, 3)
        return cls(
            exposure=float(np.exp(rng.uniform(math.log(0.5), math.log(1.6)))),
            white_balance=tuple(float(v) for v in np.exp(tint - tint.mean())),
            gamma=float(np.exp(rng.uniform(math.log(0.75), math.log(1.35)))),
            saturation=float(rng.uniform(0.6, 1.3)),
            defocus=float(rng.uniform(0.0, 1.2)) if rng.random() < 0.35 else 0.0,
            vignette=float(rng.uniform(0.0, 0.5)),
            noise=float(np.exp(rng.uniform(math.log(0.002), math.log(0.02)))),
            jpeg_quality=int(rng.integers(35, 96)) if rng.random() < 0.7 else 0,
            seed=int(rng.integers(2**62)),
        )

    def develop(self, canvas: np.ndarray, frame: int) -> np.ndarray:
        """Planar (3, H, W) float32 linear-ish radiance -> (H, W, 3) uint8 RGB."""
        x = np.clip(canvas.transpose(1, 2, 0), 0.0, None) * self.exposure * np.asarray(self.white_balance, np.float32)
        x = np.where(x < 0.8, x, 0.8 + 0.2 * (1.0 - np.exp(-(x - 0.8) / 0.2)))  # soft highlight shoulder
        x = np.clip(x, 0.0, 1.0) ** np.float32(self.gamma)
        luma = x @ _LUMA
        x = luma[..., None] + self.saturation * (x - luma[..., None])
        if self.defocus > 0.3:
            x = cv2.GaussianBlur(x, (0, 0), self.defocus)
        h, w = x.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        x = x * (1.0 - self.vignette * 0.5 * (((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2))[..., None]
        x = x + np.random.default_rng([self.seed, frame]).normal(0.0, self.noise, x.shape).astype(np.float32)
        image = np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)
        if self.jpeg_quality:
            ok, data = cv2.imencode(".jpg", image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            image = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]) if ok else image
        return image
