"""Procedural textures and sprite painters for the scene generator.

Colours are float32 RGB in [0, 1] (display-referred, roughly sRGB). A sprite is a premultiplied RGBA patch,
float32 (h, w, 4), placed at an integer top-left corner of the canvas; pixel (i, j) of a canvas covers the
unit square centred on x = j, y = i. All randomness comes from the numpy Generator passed in.
"""

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


def _grid(x0: int, y0: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    xs = np.arange(x0, x0 + width, dtype=np.float32)
    ys = np.arange(y0, y0 + height, dtype=np.float32)
    return np.meshgrid(xs, ys)


def _sample_texture(texture: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear lookup of a small (h, w) float32 texture at fractional texel coordinates (u = column)."""
    return cv2.remap(
        texture, u.astype(np.float32), v.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


@dataclass(frozen=True)
class BeamStyle:
    """How a tapered curved strip is textured: 'grass', 'stem', 'bark', 'leaf', 'petal' or 'wood'.

    base_rgb / tip_rgb: albedo at s = 0 and s = 1. occlusion: darkening at the base (dense grass is dark
    inside).
    translucency: glow when backlit. profile: 'taper' (linear half width) or 'leaf' (pointed at both ends).
    """

    kind: str
    base_rgb: np.ndarray
    tip_rgb: np.ndarray
    occlusion: float = 0.0
    translucency: float = 0.0
    profile: str = "taper"


def beam_sprite(
    rng: np.random.Generator,
    anchor: np.ndarray,
    tip: np.ndarray,
    bow: float,
    half_width: tuple[float, float],
    style: BeamStyle,
    light: Light,
    canvas_size: tuple[int, int],
    tilt: tuple[float, float] = (0.0, 0.0),
) -> Sprite | None:
    """Paint a tapered, curved strip: a grass blade, stem, branch, trunk, leaf or post.

    The centre line is anchor + s * (tip - anchor) + bow * s^2 * n, s in [0, 1], n the unit normal of the
    chord (the chord rotated by +90 degrees in image axes); every pixel gets its chord coordinate s and
    lateral coordinate (signed offset / local half width), which drive the analytic anti-aliased coverage, the
    texture (sampled in strip coordinates, so it follows the strip) and the cylinder shading.

    Args:
        anchor, tip: (2,) float, x and y in canvas pixels.
        bow: sideways offset of the tip from the chord, pixels.
        half_width: half widths at the base and at the tip (or the maximum, for the 'leaf' profile), pixels.
        canvas_size: (width, height); the sprite is clipped to it. Returns None when nothing is visible.
        tilt: x, y components added to the surface normal (a leaf blade turned towards or away from the sun).
    """
    ax, ay = float(anchor[0]), float(anchor[1])
    cx, cy = float(tip[0]) - ax, float(tip[1]) - ay
    length = math.hypot(cx, cy)
    if length < 1.0:
        return None
    ux, uy = cx / length, cy / length  # chord direction
    nx, ny = -uy, ux  # its normal
    bow = float(bow)
    s_line = np.linspace(0.0, 1.0, 12)
    line_x = ax + s_line * cx + bow * s_line**2 * nx
    line_y = ay + s_line * cy + bow * s_line**2 * ny
    reach = max(half_width) + 2.0
    x0 = max(math.floor(line_x.min() - reach), 0)
    y0 = max(math.floor(line_y.min() - reach), 0)
    x1 = min(math.ceil(line_x.max() + reach) + 1, canvas_size[0])
    y1 = min(math.ceil(line_y.max() + reach) + 1, canvas_size[1])
    if x1 <= x0 or y1 <= y0:
        return None
    gx, gy = _grid(x0, y0, x1 - x0, y1 - y0)
    rx, ry = gx - ax, gy - ay
    s_raw = (rx * ux + ry * uy) / length
    s = np.clip(s_raw, 0.0, 1.0)
    offset = rx * nx + ry * ny - bow * s * s
    w0, w1 = float(half_width[0]), float(half_width[1])
    if style.profile == "leaf":
        hw = w0 * np.clip(np.sin(np.pi * s), 0.0, 1.0) ** 0.65  # clip: float32 sin(pi) is slightly negative
    else:
        hw = w0 + (w1 - w0) * s
    coverage = np.clip(hw + 0.5 - np.abs(offset), 0.0, 1.0) * np.clip(2.0 * hw, 0.0, 1.0)
    coverage *= np.clip(s_raw * length + 0.5, 0.0, 1.0) * np.clip((1.0 - s_raw) * length + 0.5, 0.0, 1.0)
    if not coverage.any():
        return None
    lateral = np.clip(offset / np.maximum(hw, 0.35), -1.0, 1.0)
    base_rgb, tip_rgb = style.base_rgb.astype(np.float32), style.tip_rgb.astype(np.float32)
    albedo = base_rgb + (tip_rgb - base_rgb) * s[..., None]
    tex, flat = _strip_texture(rng, style.kind, s, lateral, length, max(w0, w1))
    albedo = albedo * tex[..., None]
    # Surface normal of a cylinder (flattened for blades and leaves) across the strip, plus the tilt.
    across = lateral * flat
    normal_x, normal_y = across * nx + tilt[0], across * ny + tilt[1]
    normal_z = np.sqrt(np.clip(1.0 - across**2, 0.0, 1.0))
    norm = np.sqrt(normal_x**2 + normal_y**2 + normal_z**2)
    occlusion = 1.0 - style.occlusion * (1.0 - smoothstep(0.0, 0.75, s))
    rgb = shade(
        albedo, (normal_x / norm, normal_y / norm, normal_z / norm), light, occlusion, style.translucency
    )
    rgba = np.concatenate([rgb * coverage[..., None], coverage[..., None]], axis=-1)
    return Sprite(rgba.astype(np.float32, copy=False), x0, y0)


def _strip_texture(
    rng: np.random.Generator, kind: str, s: np.ndarray, lateral: np.ndarray, length: float, width: float
) -> tuple[np.ndarray, float]:
    """Albedo multiplier (h, w) of a strip in (s, lateral) coordinates, and its section's roundness (0..1)."""
    if kind in ("bark", "wood"):
        # Ridged bark: streaks along the strip, a few dark fissures, coarse blotches.
        rows = max(4, round(2 * width))
        streak = fbm(rng, rows, max(4, round(length / 2.5)), 2.0, octaves=3, stretch=(0.6, 2.5))
        u, v = s * (streak.shape[1] - 1), (lateral + 1) * 0.5 * (rows - 1)
        ridges = _sample_texture(streak, u, v)
        fissure = 1.0 - 0.35 * smoothstep(0.9, 1.6, np.abs(ridges))
        tex = (1.0 + 0.16 * ridges) * fissure
        return tex, 0.95
    if kind == "leaf":
        # Midrib, paired side veins slanting to the tip, a lighter and a darker half.
        veins = np.cos(2 * np.pi * (s * max(4.0, length / 5.0) - 0.6 * np.abs(lateral)))
        tex = 1.0 - 0.1 * smoothstep(0.7, 1.0, veins) * (np.abs(lateral) > 0.15)
        tex = tex + 0.18 * np.exp(-((lateral / 0.12) ** 2)) + 0.06 * np.sign(lateral)
        tex = tex * (1.0 - 0.18 * np.abs(lateral) ** 3)
        return tex, 0.35
    if kind == "petal":
        return 1.0 - 0.12 * (1.0 - s) - 0.06 * np.abs(lateral), 0.3
    # Grass and stems: fine streaks along the strip and a light midrib.
    streak = fbm(rng, 4, max(4, round(length / 4)), 2.0, octaves=2, stretch=(0.7, 3.0))
    ridges = _sample_texture(streak, s * (streak.shape[1] - 1), (lateral + 1) * 1.5)
    tex = 1.0 + 0.1 * ridges
    if kind == "grass":
        tex = tex + 0.12 * np.exp(-((lateral / 0.2) ** 2)) - 0.08 * np.clip(lateral, 0.0, 1.0)
        return tex, 0.45
    return tex, 0.9


def foliage_sprite(
    rng: np.random.Generator,
    center: np.ndarray,
    radii: tuple[float, float],
    leaf_size: tuple[float, float],
    count: int,
    rgb: np.ndarray,
    light: Light,
    canvas_size: tuple[int, int],
    hue_spread: float = 0.03,
    droop: float = 0.0,
) -> Sprite | None:
    """Paint a clump of small leaves (a tree crown cluster, a bush, a lavender spike).

    Leaves are anti-aliased ellipses scattered over the front of an ellipsoid of the given radii (pixels),
    drawn back to front, each lit by the ellipsoid normal (plus a random tilt) so the clump reads as a lit
    volume with a
    shadowed underside and inner gaps. leaf_size: (length, width) in pixels. droop: mean leaf angle towards
        +y.
    """
    rx, ry = radii
    length, width = leaf_size
    reach = max(length, width) + 2
    x0 = max(math.floor(center[0] - rx - reach), 0)
    y0 = max(math.floor(center[1] - ry - reach), 0)
    x1 = min(math.ceil(center[0] + rx + reach) + 1, canvas_size[0])
    y1 = min(math.ceil(center[1] + ry + reach) + 1, canvas_size[1])
    if x1 <= x0 or y1 <= y0:
        return None
    # Points on the ellipsoid's front: inner ones (small z) are drawn first and are in shadow.
    u = rng.normal(size=(count, 3))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    u[:, 2] = np.abs(u[:, 2])
    depth = rng.uniform(0.3, 1.0, count) ** 0.5
    pos = u * depth[:, None]
    order = np.argsort(pos[:, 2] + 0.3 * depth)
    pos, u, depth = pos[order], u[order], depth[order]
    tilt = rng.normal(scale=0.45, size=(count, 3))
    normals = u + tilt
    normals[:, 2] = np.abs(normals[:, 2]) + 0.3
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    # Per-leaf colour: brightness and a warm/cool shift (hue_spread ~ turns of hue).
    warm = rng.uniform(-4.0, 4.0, (count, 1)) * hue_spread
    albedo = rgb[None] * rng.uniform(0.8, 1.2, (count, 1)) * (1.0 + warm * np.array([0.6, 0.15, -0.5]))
    occlusion = 0.35 + 0.65 * smoothstep(0.55, 1.0, depth)
    occlusion *= 1.0 - 0.25 * np.clip(pos[:, 1], 0.0, 1.0)  # underside in the clump's own shadow
    colours = shade(albedo, (normals[:, 0], normals[:, 1], normals[:, 2]), light, occlusion, translucency=0.6)
    colours8 = np.clip(colours * 255.0, 0, 255)
    image = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    alpha = np.zeros((y1 - y0, x1 - x0), np.uint8)
    centres = center[None] + pos[:, :2] * np.array([rx, ry])[None] - np.array([x0, y0])[None]
    angles = np.degrees(np.arctan2(pos[:, 1] + droop, pos[:, 0])) + rng.normal(scale=35.0, size=count)
    sizes = rng.uniform(0.7, 1.25, count)
    # cv2 drawing takes pixel centres at integers with 4 fractional bits (shift) for sub-pixel placement.
    shift = 4
    for i in range(count):
        centre = (round(centres[i, 0] * 16), round(centres[i, 1] * 16))
        axes = (max(round(length * sizes[i] * 8), 8), max(round(width * sizes[i] * 8), 6))
        cv2.ellipse(
            image, centre, axes, float(angles[i]), 0, 360, colours8[i].tolist(), -1, cv2.LINE_AA, shift
        )
        cv2.ellipse(alpha, centre, axes, float(angles[i]), 0, 360, 255, -1, cv2.LINE_AA, shift)
    if not alpha.any():
        return None
    rgba = np.concatenate([image, alpha[..., None]], axis=-1).astype(np.float32) / 255.0
    return Sprite(rgba, x0, y0)


def flower_sprite(
    rng: np.random.Generator,
    center: np.ndarray,
    radius: float,
    species: str,
    light: Light,
    canvas_size: tuple[int, int],
    tilt: float = 0.0,
    roll: float = 0.0,
) -> Sprite | None:
    """Paint a flower head seen at an angle: petals as a polar profile r(theta), a textured disc in the
    centre.

    species: 'daisy', 'poppy', 'buttercup', 'cornflower' or 'cosmos'. tilt in [0, 1): how much the head is
        turned
    away (squashes it vertically); roll: rotation in radians.
    """
    reach = radius + 2
    x0 = max(math.floor(center[0] - reach), 0)
    y0 = max(math.floor(center[1] - reach), 0)
    x1 = min(math.ceil(center[0] + reach) + 1, canvas_size[0])
    y1 = min(math.ceil(center[1] + reach) + 1, canvas_size[1])
    if x1 <= x0 or y1 <= y0:
        return None
    gx, gy = _grid(x0, y0, x1 - x0, y1 - y0)
    dx, dy = gx - center[0], gy - center[1]
    c, s = math.cos(roll), math.sin(roll)
    px, py = c * dx + s * dy, (-s * dx + c * dy) / (1.0 - 0.6 * tilt)
    rho = np.hypot(px, py)
    theta = np.arctan2(py, px) + rng.uniform(0, 2 * np.pi)
    spec = {
        # petals, sharpness (higher = thinner petals), disc fraction, petal colour, disc colour
        "daisy": (rng.integers(13, 22), 0.35, 0.3, hsv(0.15, 0.05, 0.97), hsv(0.13, 0.95, 0.95)),
        "poppy": (4, 0.08, 0.18, hsv(rng.uniform(-0.01, 0.03), 0.9, 0.92), hsv(0.7, 0.3, 0.12)),
        "buttercup": (5, 0.15, 0.25, hsv(0.14, 0.95, 0.98), hsv(0.12, 0.9, 0.8)),
        "cornflower": (rng.integers(7, 10), 0.25, 0.2, hsv(0.62, 0.7, 0.85), hsv(0.72, 0.6, 0.4)),
        "cosmos": (
            8,
            0.12,
            0.22,
            hsv(rng.choice([0.92, 0.95, 0.0]), rng.uniform(0.2, 0.7), 0.95),
            hsv(0.13, 0.9, 0.9),
        ),
    }[species]
    petals, sharp, disc, petal_rgb, disc_rgb = spec
    petal_rgb = jitter_colour(rng, petal_rgb, 0.01, 0.1, 0.05)
    wave = np.abs(np.cos(petals * theta / 2.0)) ** sharp
    if species == "cornflower":
        wave = wave * (0.85 + 0.15 * np.abs(np.cos(4 * petals * theta)))  # fringed petal ends
    edge = radius * (0.25 + 0.75 * wave)
    coverage = np.clip(edge + 0.5 - rho, 0.0, 1.0)
    if not coverage.any():
        return None
    r = rho / radius
    petal_shading = (0.75 + 0.25 * np.clip(r / 0.8, 0, 1)) * (1.0 - 0.15 * (1.0 - wave))
    albedo = petal_rgb * petal_shading[..., None]
    disc_mask = smoothstep(disc * 1.05, disc * 0.85, r)
    dots = fbm(rng, *rho.shape, max(radius * 0.12, 1.0), octaves=2)
    disc_albedo = disc_rgb * (0.75 + 0.25 * np.clip(1 - r / disc, 0, 1) + 0.1 * dots)[..., None]
    albedo = albedo * (1 - disc_mask[..., None]) + disc_albedo * disc_mask[..., None]
    # The head is a shallow bowl facing the camera, leaning with its tilt.
    nz = np.full_like(r, 0.9)
    rgb = shade(albedo, (0.35 * px / radius * c, (0.35 * py / radius - 0.4 * tilt), nz), light, 1.0, 0.5)
    rgba = np.concatenate([rgb * coverage[..., None], coverage[..., None]], axis=-1).astype(np.float32)
    return Sprite(rgba, x0, y0)


def cloth_sprite(
    rng: np.random.Generator,
    top_centre: np.ndarray,
    width: float,
    height: float,
    base_rgb: np.ndarray,
    pattern: str,
    light: Light,
    canvas_size: tuple[int, int],
) -> Sprite | None:
    """Paint a cloth (towel, sheet, shirt) hanging from its top edge, with two pegs.

    Local coordinates: a = -1..1 across, b = 0..1 down. The hem waves a little, the sides flare slightly
        towards the
    bottom, vertical folds radiate from the pegs and deepen downwards. pattern: 'solid', 'stripes', 'gingham'
        or
    'dots'. Sizes in pixels.
    """
    reach = width * 0.56 + 3
    x0 = max(math.floor(top_centre[0] - reach), 0)
    y0 = max(math.floor(top_centre[1] - 3), 0)
    x1 = min(math.ceil(top_centre[0] + reach) + 1, canvas_size[0])
    y1 = min(math.ceil(top_centre[1] + height * 1.06 + 2) + 1, canvas_size[1])
    if x1 <= x0 or y1 <= y0:
        return None
    gx, gy = _grid(x0, y0, x1 - x0, y1 - y0)
    b = (gy - top_centre[1]) / height
    half = 0.5 * width * (1.0 + 0.05 * np.clip(b, 0, 1))
    a = (gx - top_centre[0]) / half
    phase = rng.uniform(0, 2 * np.pi, 3)
    hem = height * (1.0 + 0.025 * np.sin(3.0 * a + phase[0]) + 0.012 * np.sin(7.0 * a + phase[1]))
    coverage = np.clip(half + 0.5 - np.abs(gx - top_centre[0]), 0.0, 1.0)
    coverage *= np.clip(gy - top_centre[1] + 0.5, 0.0, 1.0) * np.clip(
        hem + top_centre[1] - gy + 0.5, 0.0, 1.0
    )
    if not coverage.any():
        return None
    u, v = (a + 1.0) * 0.5 * width, b * height  # fabric coordinates in pixels
    if pattern == "stripes":
        period = rng.uniform(4.0, 12.0)
        second = jitter_colour(rng, hsv(rng.uniform(0, 1), 0.5, 0.9), 0.0, 0.0, 0.0)
        band = smoothstep(-0.15, 0.15, np.sin(2 * np.pi * (v if rng.uniform() < 0.5 else u) / period))
        albedo = base_rgb + (second - base_rgb) * band[..., None]
    elif pattern == "gingham":
        period = rng.uniform(3.0, 7.0)
        checks = smoothstep(-0.1, 0.1, np.sin(2 * np.pi * u / period)) + smoothstep(
            -0.1, 0.1, np.sin(2 * np.pi * v / period)
        )
        albedo = base_rgb * (1.0 - 0.3 * checks[..., None]) + 0.3 * checks[..., None] * hsv(0, 0, 0.97)
    elif pattern == "dots":
        period = rng.uniform(5.0, 9.0)
        du = (u / period) % 1.0 - 0.5
        dv = ((v / period) + 0.5 * np.floor(u / period)) % 1.0 - 0.5
        dot = smoothstep(0.26, 0.18, np.hypot(du, dv))
        albedo = base_rgb + (hsv(0, 0, 0.95) - base_rgb) * dot[..., None]
    else:
        albedo = np.broadcast_to(base_rgb, (*u.shape, 3)).copy()
    weave = fbm(rng, *u.shape, 1.5, octaves=1)
    albedo = albedo * (1.0 + 0.04 * weave)[..., None]
    # Folds: a sum of sines across the width whose depth grows with distance from the pegs.
    folds = np.sin(2 * np.pi * 2.5 * a + phase[2]) * 0.6 + np.sin(2 * np.pi * 5.3 * a + 2 * phase[0]) * 0.4
    folds *= 0.15 + 0.85 * smoothstep(0.0, 0.5, b)
    slope = 0.45 * folds
    normal = (slope, np.full_like(slope, -0.1), np.ones_like(slope))
    norm = np.sqrt(normal[0] ** 2 + normal[1] ** 2 + 1.0)
    occlusion = 0.85 + 0.15 * folds
    rgb = shade(albedo, (normal[0] / norm, normal[1] / norm, normal[2] / norm), light, occlusion, 0.25)
    # Wooden pegs a quarter of the way in from each side.
    peg = hsv(0.08, 0.45, 0.75)
    for side in (-0.6, 0.6):
        px = top_centre[0] + side * 0.5 * width
        inside = (np.abs(gx - px) < max(1.0, width * 0.02)) & (gy - top_centre[1] < max(3.0, height * 0.07))
        rgb[inside] = peg * (light.ambient_rgb + 0.6 * light.sun_rgb)
        coverage = np.where(inside, 1.0, coverage)
    rgba = np.concatenate([rgb * coverage[..., None], coverage[..., None]], axis=-1).astype(np.float32)
    return Sprite(rgba, x0, y0)


def rock_sprite(
    rng: np.random.Generator, base: np.ndarray, radius: float, light: Light, canvas_size: tuple[int, int]
) -> Sprite | None:
    """Paint a half-buried boulder of about the given radius (pixels), its bottom edge at base (x, y)."""
    reach = radius * 1.3 + 2
    x0 = max(math.floor(base[0] - reach), 0)
    y0 = max(math.floor(base[1] - reach), 0)
    x1 = min(math.ceil(base[0] + reach) + 1, canvas_size[0])
    y1 = min(math.ceil(base[1]) + 2, canvas_size[1])
    if x1 <= x0 or y1 <= y0:
        return None
    gx, gy = _grid(x0, y0, x1 - x0, y1 - y0)
    squash = rng.uniform(0.5, 0.85)
    dx, dy = (gx - base[0]) / radius, (gy - base[1]) / (radius * squash)
    theta = np.arctan2(dy, dx)
    lobes = sum(rng.uniform(0.03, 0.1) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    rho = np.hypot(dx, dy) / (1.0 + lobes)
    coverage = np.clip((1.0 - rho) * radius * squash + 0.5, 0.0, 1.0) * np.clip(base[1] - gy + 0.5, 0.0, 1.0)
    if not coverage.any():
        return None
    bumps = fbm(rng, *gx.shape, max(radius / 4, 1.0), octaves=3)
    nx, ny = dx * 0.8 + 0.08 * bumps, dy * 0.8 - 0.2
    nz = np.sqrt(np.clip(1.0 - nx**2 - ny**2, 0.05, 1.0))
    grey = jitter_colour(rng, hsv(rng.uniform(0.05, 0.15), rng.uniform(0.05, 0.25), 0.55), 0.02, 0.2, 0.15)
    albedo = grey * (1.0 + 0.07 * fbm(rng, *gx.shape, 2.5, octaves=2) + 0.1 * bumps)[..., None]
    moss = smoothstep(0.8, 1.6, fbm(rng, *gx.shape, max(radius / 3, 1.0), octaves=2) - ny) * rng.uniform(
        0.0, 0.8
    )
    albedo = albedo * (1 - moss[..., None]) + moss[..., None] * hsv(0.22, 0.45, 0.35)
    occlusion = 0.55 + 0.45 * smoothstep(0.0, 0.6, -dy)
    rgb = shade(albedo, (nx, ny, nz), light, occlusion)
    rgba = np.concatenate([rgb * coverage[..., None], coverage[..., None]], axis=-1).astype(np.float32)
    return Sprite(rgba, x0, y0)


def sky(rng: np.random.Generator, light: Light, width: int, height: int, horizon: float) -> np.ndarray:
    """(height, width, 3) sky: a zenith-to-horizon gradient, a sun glow when the sun is ahead, fBm clouds."""
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    t = np.clip((horizon - y) / max(horizon, 1.0), 0.0, 1.0) ** 0.6
    out = light.sky_horizon + (light.sky_top - light.sky_horizon) * t[..., None]
    out = np.broadcast_to(out, (height, width, 3)).astype(np.float32)
    lx, ly, lz = light.sun
    sun_x, sun_y = width * (0.5 + 0.6 * lx), horizon + ly * horizon * 1.3
    glow = np.exp(-((x - sun_x) ** 2 + (y - sun_y) ** 2) / (2 * (0.35 * width) ** 2)) * max(-lz, 0.15)
    out = out + 0.35 * glow[..., None] * light.sun_rgb
    if light.clouds > 0:
        density = fbm(rng, height, width, width / 3.0, octaves=5, stretch=(0.45, 1.4))
        cover = smoothstep(1.3 - 2.2 * light.clouds, 2.2 - 2.2 * light.clouds, density)
        cover = cover * smoothstep(horizon + 2, horizon - 0.2 * horizon, y)  # thin out towards the horizon
        lit = np.clip(np.gradient(density, axis=0), -1.0, 1.0)  # brighter tops, greyer bellies
        cloud = (0.85 + 0.35 * lit[..., None]) * (0.55 * light.sun_rgb + 0.75 * light.ambient_rgb)
        out = out * (1 - cover[..., None]) + cloud * cover[..., None]
    return out.astype(np.float32)


def hills(
    rng: np.random.Generator, canvas: np.ndarray, ridge: float, relief: float, rgb: np.ndarray, light: Light
) -> None:
    """Paint a distant hill range in place: a hazy, softly textured fBm ridge around y = ridge (pixels)."""
    height, width = canvas.shape[:2]
    profile = fbm(rng, 1, width, width / 2.5, octaves=4)[0]
    top = ridge - relief * (0.5 + 0.35 * profile)
    y = np.arange(height, dtype=np.float32)[:, None]
    coverage = np.clip(y - top[None, :] + 0.5, 0.0, 1.0)
    texture = 1.0 + 0.1 * fbm(rng, height, width, 6.0, octaves=3)
    colour = rgb * (light.ambient_rgb + 0.7 * light.sun_rgb) * texture[..., None]
    colour = colour * 0.55 + light.haze * 0.45
    canvas[:] = canvas * (1 - coverage[..., None]) + colour * coverage[..., None]


def treeline(
    rng: np.random.Generator,
    canvas: np.ndarray,
    base: float,
    height: float,
    rgb: np.ndarray,
    light: Light,
    haze: float,
) -> None:
    """Paint a distant woodland edge in place: rounded crowns on y = base, up to `height` pixels tall."""
    rows, width = canvas.shape[:2]
    x = np.arange(width, dtype=np.float32)
    top = np.full(width, base - 0.25 * height, np.float32)
    centre = 0.0
    while centre < width + height:
        radius = height * rng.uniform(0.2, 0.45)
        crown = base - height * rng.uniform(0.6, 1.0) + radius
        inside = np.clip(1.0 - ((x - centre) / radius) ** 2, 0.0, None)
        top = np.minimum(top, np.where(inside > 0, crown - radius * np.sqrt(inside), np.inf))
        centre += radius * rng.uniform(0.35, 0.8)
    # Smooth the crowns' junctions, then fray the edge into leafy bumps.
    top = cv2.GaussianBlur(top[None], (0, 0), max(height * 0.04, 0.5))[0]
    top = top + 1.0 * fbm(rng, 1, width, 1.5, octaves=2)[0] + 1.5 * fbm(rng, 1, width, 5.0, octaves=1)[0]
    y = np.arange(rows, dtype=np.float32)[:, None]
    coverage = np.clip(y - top[None, :] + 0.5, 0.0, 1.0)
    leafy = fbm(rng, rows, width, 2.5, octaves=3)
    lit = smoothstep(6.0, 0.0, y - top[None, :]) * 0.25 + 0.1 * leafy
    colour = rgb[None, None] * (light.ambient_rgb + (0.45 + lit)[..., None] * light.sun_rgb)
    colour = colour * (1 - haze) + light.haze * haze
    canvas[:] = canvas * (1 - coverage[..., None]) + colour * coverage[..., None]


def ground(
    rng: np.random.Generator,
    canvas: np.ndarray,
    horizon: float,
    near_rgb: np.ndarray,
    far_rgb: np.ndarray,
    light: Light,
    stroke: float = 10.0,
) -> None:
    """Paint a grassy ground plane below y = horizon in place, its texture in perspective.

    The texture is a stack of vertical-stroke noise layers at stroke sizes one octave apart; each row blends
    the layers whose size brackets its perspective stroke size (stroke pixels at the bottom, shrinking
    linearly to 0 at the horizon), so blades of grass shrink and merge into haze with distance.
    """
    height, width = canvas.shape[:2]
    y = np.arange(height, dtype=np.float32)[:, None]
    near = np.clip((y - horizon) / max(height - horizon, 1.0), 1e-3, None)  # 1 / depth, up to a constant
    target = np.log2(np.clip(stroke * near, 0.5, None))  # (rows, 1) log2 stroke size per row
    texture = np.zeros((height, width), np.float32)
    for level in range(-1, 5):
        layer = fbm(rng, height, width, 2.0**level, octaves=2, stretch=(3.0, 0.7))
        gaps = smoothstep(0.6, 1.8, -layer)  # dark slits between blades
        weight = np.clip(1.0 - np.abs(target - level), 0.0, 1.0)
        texture += weight * (0.8 * layer - 1.2 * gaps)
    texture *= np.clip(near * 4.0, 0.0, 1.0)  # detail below the pixel scale averages out in the distance
    patches = fbm(rng, height, width, width / 5.0, octaves=3, stretch=(0.5, 1.0))
    mix = np.clip(near, 0.0, 1.0) ** 0.6
    albedo = far_rgb + (near_rgb - far_rgb) * mix[..., None]
    albedo = albedo * (1.0 + 0.18 * texture + 0.12 * patches)[..., None]
    colour = albedo * (light.ambient_rgb + 0.75 * max(-light.sun[1], 0.3) * light.sun_rgb)
    haze = np.exp(-near * 8.0)[..., None] * 0.6
    colour = colour * (1 - haze) + light.haze * haze
    below = np.clip(y - horizon + 0.5, 0.0, 1.0)[..., None]
    canvas[:] = canvas * (1 - below) + colour * below


def bokeh(
    rng: np.random.Generator, canvas: np.ndarray, palette: list[np.ndarray], light: Light, blur: float
) -> None:
    """Replace the canvas with an out-of-focus backdrop: soft masses of the palette colours, bright discs."""
    height, width = canvas.shape[:2]
    field = np.zeros_like(canvas)
    weights = np.zeros((height, width, 1), np.float32)
    for rgb in palette:
        w = np.exp(1.8 * fbm(rng, height, width, width / 4.0, octaves=2))[..., None]
        field += w * rgb
        weights += w
    field = field / weights * (light.ambient_rgb + 0.6 * light.sun_rgb)
    discs = np.zeros((height, width), np.float32)
    for _ in range(int(rng.integers(5, 30))):
        centre = (int(rng.uniform(0, width)), int(rng.uniform(0, height)))
        cv2.circle(
            discs,
            centre,
            int(rng.uniform(2, 6) * blur / 3 + 1),
            float(rng.uniform(0.15, 0.5)),
            -1,
            cv2.LINE_AA,
        )
    field = field + discs[..., None] * light.sun_rgb
    canvas[:] = cv2.GaussianBlur(field, (0, 0), blur)


def wall(
    rng: np.random.Generator, canvas: np.ndarray, top: float, bottom: float, kind: str, light: Light
) -> None:
    """Paint a wall between rows top and bottom in place: 'plaster' (stained render), 'brick' or 'planks'."""
    height, width = canvas.shape[:2]
    y = np.arange(height, dtype=np.float32)[:, None]
    x = np.arange(width, dtype=np.float32)[None, :]
    stains = fbm(rng, height, width, width / 6.0, octaves=4)
    if kind == "brick":
        course = rng.uniform(3.0, 5.0)
        row = np.floor(y / course)
        bx = x + (row % 2) * course * 1.5
        brick = np.floor(bx / (course * 3.0)) * 7.31 + row * 3.17
        tone = 1.0 + 0.12 * np.sin(brick * 12.9898) * np.cos(brick * 4.1414)
        mortar = np.maximum(
            smoothstep(0.8, 0.95, (y / course) % 1.0), smoothstep(0.9, 0.97, (bx / (course * 3.0)) % 1.0)
        )
        albedo = (
            hsv(rng.uniform(0.02, 0.07), rng.uniform(0.45, 0.7), rng.uniform(0.45, 0.65)) * tone[..., None]
        )
        albedo = albedo * (1 - mortar[..., None]) + hsv(0.1, 0.1, 0.7) * mortar[..., None]
    elif kind == "planks":
        plank = rng.uniform(5.0, 9.0)
        seam = smoothstep(0.88, 0.97, (x / plank) % 1.0)
        grain = fbm(rng, height, width, 3.0, octaves=3, stretch=(6.0, 0.4))
        albedo = (
            hsv(rng.uniform(0.05, 0.1), rng.uniform(0.2, 0.5), rng.uniform(0.35, 0.6))
            * (1 + 0.1 * grain)[..., None]
        )
        albedo = np.broadcast_to(albedo, (height, width, 3)) * (1 - 0.5 * seam[..., None])
    else:
        albedo = hsv(rng.uniform(0.05, 0.15), rng.uniform(0.05, 0.3), rng.uniform(0.7, 0.9))
        albedo = albedo * (1 + 0.03 * fbm(rng, height, width, 1.0, octaves=2))[..., None]
    albedo = albedo * (1.0 + 0.08 * stains)[..., None]
    colour = albedo * (light.ambient_rgb + 0.7 * max(light.sun[2], 0.2) * light.sun_rgb)
    inside = (np.clip(y - top + 0.5, 0.0, 1.0) * np.clip(bottom - y + 0.5, 0.0, 1.0))[..., None]
    canvas[:] = canvas * (1 - inside) + colour * inside
