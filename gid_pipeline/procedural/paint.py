"""Painting primitives for the procedural scenes: premultiplied RGBA sprites, lighting and Lambert shading,
fractal noise, colours, compositing and defocus blur. Colours are float32 RGB in [0, 1] (display-referred, roughly
sRGB); a sprite is a premultiplied (h, w, 4) patch placed at an integer top-left corner of the canvas; pixel (i, j)
covers the unit square centred on x = j, y = i. All randomness comes from the numpy Generator passed in."""

from __future__ import annotations

import colorsys
import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass
class Sprite:
    """A premultiplied RGBA patch: rgba float32 (h, w, 4) whose top-left pixel sits at canvas (x0, y0)."""

    rgba: np.ndarray
    x0: int
    y0: int

    @property
    def height(self) -> int:
        return self.rgba.shape[0]

    @property
    def width(self) -> int:
        return self.rgba.shape[1]


@dataclass(frozen=True)
class Light:
    """Scene lighting.

    sun: unit 3-vector towards the sun in image axes (x right, y down, z towards the camera; z < 0 is
        backlight).
    sun_rgb, ambient_rgb: (3,) radiance multipliers of the albedo. sky_top, sky_horizon, haze: (3,) colours.
    """

    sun: np.ndarray
    sun_rgb: np.ndarray
    ambient_rgb: np.ndarray
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    haze: np.ndarray
    clouds: float  # cloud cover in [0, 1]
    name: str


def pick_light(rng: np.random.Generator) -> Light:
    """A random time of day / weather: clear day, golden hour, overcast or hazy morning."""
    name = str(rng.choice(["day", "day", "golden", "overcast", "morning"]))
    azimuth = rng.uniform(-1.0, 1.0)
    elevation = {"day": rng.uniform(0.6, 1.1), "golden": rng.uniform(0.1, 0.35)}.get(
        name, rng.uniform(0.3, 0.8)
    )
    depth = rng.uniform(-0.7, 0.8) if name != "golden" else rng.uniform(-0.9, 0.2)
    sun = np.array([azimuth, -math.sin(elevation), depth])
    sun /= np.linalg.norm(sun)
    presets = {
        # sun, ambient, zenith, horizon
        "day": ((1.0, 0.97, 0.9), (0.46, 0.5, 0.6), (0.22, 0.42, 0.8), (0.68, 0.8, 0.93)),
        "golden": ((1.05, 0.78, 0.5), (0.4, 0.38, 0.44), (0.32, 0.45, 0.72), (0.98, 0.78, 0.55)),
        "overcast": ((0.4, 0.41, 0.42), (0.74, 0.76, 0.8), (0.62, 0.65, 0.7), (0.82, 0.84, 0.86)),
        "morning": ((0.9, 0.92, 0.95), (0.5, 0.54, 0.62), (0.42, 0.58, 0.82), (0.82, 0.86, 0.9)),
    }
    sun_rgb, ambient, top, horizon = presets[name]
    jitter = rng.uniform(0.93, 1.07, 3)
    clouds = {"overcast": 1.0, "day": rng.uniform(0.0, 0.7)}.get(name, rng.uniform(0.0, 0.4))
    return Light(
        sun=sun,
        sun_rgb=np.array(sun_rgb) * jitter,
        ambient_rgb=np.array(ambient) * rng.uniform(0.92, 1.08),
        sky_top=np.array(top) * rng.uniform(0.9, 1.1, 3),
        sky_horizon=np.array(horizon),
        haze=np.array(horizon) * 0.95,
        clouds=float(clouds),
        name=name,
    )


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """(3,) float RGB of a hue in turns, saturation and value in [0, 1]."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0)))


def jitter_colour(
    rng: np.random.Generator, rgb: np.ndarray, hue: float, sat: float, val: float
) -> np.ndarray:
    """Perturb a colour's hue (turns), saturation and value by uniform amounts up to the given spreads."""
    h, s, v = colorsys.rgb_to_hsv(*np.clip(rgb, 0.0, 1.0))
    return hsv(
        h + rng.uniform(-hue, hue), s * rng.uniform(1 - sat, 1 + sat), v * rng.uniform(1 - val, 1 + val)
    )


def fbm(
    rng: np.random.Generator,
    height: int,
    width: int,
    cell: float,
    octaves: int = 4,
    gain: float = 0.5,
    stretch: tuple[float, float] = (1.0, 1.0),
) -> np.ndarray:
    """Fractal value noise, float32 (height, width), zero mean and unit standard deviation.

    cell: feature size of the first octave in pixels; stretch (y, x) multiplies it per axis (streaks).
    Each octave is Gaussian noise on a coarse grid, upsampled bicubically, at half the size and gain times the
    amplitude of the previous one.
    """
    out = np.zeros((height, width), np.float32)
    amp = 1.0
    for octave in range(octaves):
        cy = max(cell * stretch[0] / 2**octave, 1.0)
        cx = max(cell * stretch[1] / 2**octave, 1.0)
        grid = rng.standard_normal((max(2, round(height / cy) + 1), max(2, round(width / cx) + 1)))
        out += amp * cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
        amp *= gain
    return (out - out.mean()) / (out.std() + 1e-6)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def shade(
    albedo: np.ndarray,
    normal: tuple[np.ndarray, np.ndarray, np.ndarray],
    light: Light,
    occlusion: np.ndarray | float = 1.0,
    translucency: float = 0.0,
) -> np.ndarray:
    """Lambert shading with ambient occlusion and (for thin leaves and blades) light transmitted from behind.

    albedo: (..., 3) colours; normal: three (...) arrays, unit surface normal in image axes (z to the camera).
    Returns (..., 3) float32 radiance.
    """
    nx, ny, nz = normal
    lx, ly, lz = (float(v) for v in light.sun)
    lambert = np.clip(nx * lx + ny * ly + nz * lz, 0.0, None)
    # Thin foliage glows when the sun is behind it (lz < 0): light through the blade, tinted by its albedo.
    through = translucency * max(-lz, 0.0) * np.clip(-(nx * lx + ny * ly + nz * lz), 0.2, 1.0)
    occlusion = np.asarray(occlusion, np.float32)[..., None]
    ambient, sun = light.ambient_rgb.astype(np.float32), light.sun_rgb.astype(np.float32)
    light_rgb = occlusion * (ambient + (lambert + through)[..., None] * sun)
    return (albedo * light_rgb).astype(np.float32)


def composite(canvas: np.ndarray, sprite: Sprite) -> None:
    """Premultiplied 'over' of a sprite onto a planar (3, H, W) float32 canvas, in place; clipped to the
    canvas.

    The canvas is planar because blending (h, w) alpha over (3, h, w) planes runs about 8x faster than over
    interleaved (h, w, 3) pixels.
    """
    h, w = canvas.shape[1:]
    x0, y0 = max(sprite.x0, 0), max(sprite.y0, 0)
    x1, y1 = min(sprite.x0 + sprite.width, w), min(sprite.y0 + sprite.height, h)
    if x1 <= x0 or y1 <= y0:
        return
    patch = sprite.rgba[y0 - sprite.y0 : y1 - sprite.y0, x0 - sprite.x0 : x1 - sprite.x0].transpose(2, 0, 1)
    region = canvas[:, y0:y1, x0:x1]
    region *= 1.0 - patch[3]
    region += patch[:3]


def blur_sprite(sprite: Sprite, sigma: float) -> Sprite:
    """Gaussian (depth-of-field) blur of a premultiplied sprite, grown by 3 sigma so nothing is cut off."""
    if sigma < 0.3:
        return sprite
    pad = math.ceil(3 * sigma)
    rgba = cv2.copyMakeBorder(sprite.rgba, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    rgba = cv2.GaussianBlur(rgba, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    return Sprite(rgba, sprite.x0 - pad, sprite.y0 - pad)


def grid(x0: int, y0: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    xs = np.arange(x0, x0 + width, dtype=np.float32)
    ys = np.arange(y0, y0 + height, dtype=np.float32)
    return np.meshgrid(xs, ys)


def sample_texture(texture: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a small (h, w) float32 texture at fractional texel coordinates (u = column)."""
    return cv2.remap(
        texture, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )
