"""Reusable parts of the painted scene types: grass blades, flowers, leaves, still props, the sky with its distant
hills and treeline, and background blur; each adds elements with their modes to a Scene (canvas pixels)."""

from __future__ import annotations

import math

import cv2
import numpy as np

from . import modal
from .backdrops import hills, sky, treeline
from .elements import (
    Element,
    Scene,
)
from .paint import Sprite, hsv, jitter_colour
from .sprites import BeamStyle, beam_sprite, flower_sprite

GRASS_PALETTES = {
    "lush": (0.27, 0.7, 0.45),
    "spring": (0.24, 0.75, 0.6),
    "summer": (0.19, 0.6, 0.55),
    "dry": (0.12, 0.5, 0.6),
}


def grass_colours(
    rng: np.random.Generator, palette: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    h, s, v = palette
    base = hsv(h + rng.uniform(-0.03, 0.03), s * rng.uniform(0.8, 1.15), v * rng.uniform(0.55, 0.9))
    if rng.uniform() < 0.1:  # an odd dry blade
        base = hsv(rng.uniform(0.1, 0.14), rng.uniform(0.35, 0.55), v * rng.uniform(0.8, 1.1))
    tip = jitter_colour(rng, base * 1.25 + np.array([0.05, 0.04, -0.02]), 0.02, 0.1, 0.1)
    return base, tip


def add_grass_blade(
    sc: Scene,
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
    base_rgb, tip_rgb = grass_colours(rng, palette)
    style = BeamStyle("grass", base_rgb, tip_rgb, occlusion=0.55, translucency=0.9)
    sprite = beam_sprite(rng, anchor, tip, bow, (width, 0.08), style, sc.light, sc.canvas_size)
    element = sc.add(sprite, depth, "grass", blur)
    if element is None:
        return
    length_m = length_px / px_per_m
    # A blade bends about its thin axis: 0.3-0.6 mm thick, sqrt(E / rho) ~ 1000 m/s (E ~ 0.5 GPa).
    freqs = modal.beam_frequencies_hz(length_m, rng.uniform(0.3e-3, 0.6e-3), 1000.0, 0.0, 2)
    sc.beam_modes(element, anchor, tip, freqs, rng.uniform(0.08, 0.2), px_per_m)


def add_flower(
    sc: Scene,
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
        add_leaf(
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


def add_leaf(
    sc: Scene,
    parent: Element,
    base: np.ndarray,
    tip: np.ndarray,
    half_width: float,
    rgb: np.ndarray,
    depth: float,
    blur: float,
    px_per_m: float,
) -> Element | None:
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


def add_still(sc: Scene, sprite: Sprite | None, depth: float, blur: float = 0.0) -> None:
    sc.add(sprite, depth, "still", blur)


def sky_and_distance(sc: Scene, horizon: float) -> None:
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


def blur_background(sc: Scene, sigma: float) -> None:
    if sigma * sc.unit > 0.3:
        sc.background = cv2.GaussianBlur(sc.background, (0, 0), sigma * sc.unit)
