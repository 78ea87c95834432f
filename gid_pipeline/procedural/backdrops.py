"""Backgrounds of the painted scenes, painted in place on (H, W, 3) float32 canvases: sky, hazy hills, a treeline,
ground in perspective, bokeh and walls."""

from __future__ import annotations

import cv2
import numpy as np

from .paint import (
    Light,
    fbm,
    hsv,
    smoothstep,
)


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
