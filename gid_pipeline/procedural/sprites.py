"""Sprite painters of the scene generator: tapered strips (blades, stems, branches, leaves), leaf clusters, flower
heads, hanging cloth and rocks, each textured, shaded and anti-aliased (conventions: procedural.paint)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .paint import (
    Light,
    Sprite,
    fbm,
    grid,
    hsv,
    jitter_colour,
    sample_texture,
    shade,
    smoothstep,
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
    gx, gy = grid(x0, y0, x1 - x0, y1 - y0)
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
        ridges = sample_texture(streak, u, v)
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
    ridges = sample_texture(streak, s * (streak.shape[1] - 1), (lateral + 1) * 1.5)
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
    gx, gy = grid(x0, y0, x1 - x0, y1 - y0)
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
    gx, gy = grid(x0, y0, x1 - x0, y1 - y0)
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
    gx, gy = grid(x0, y0, x1 - x0, y1 - y0)
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












