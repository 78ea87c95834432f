"""The painted scene types (meadow, tree, foliage, flowers, cloth): each builder lays out a Scene's background and
elements with their modes; procedural.scenes.generate_scene turns the scene into a sample."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from . import modal
from .backdrops import bokeh, ground, wall
from .elements import (
    Element,
    OwnMode,
    Scene,
    clamp_frequency,
)
from .paint import hsv
from .painted_parts import (
    GRASS_PALETTES,
    add_flower,
    add_grass_blade,
    add_leaf,
    add_still,
    blur_background,
    sky_and_distance,
)
from .sprites import BeamStyle, beam_sprite, cloth_sprite, foliage_sprite, rock_sprite


def _meadow(sc: Scene) -> None:
    """Low camera in a meadow: sky, distant trees or hills, grass in perspective, flowers, the odd rock."""
    rng = sc.rng
    w, h = sc.canvas_size
    horizon = sc.y(sc.uniform(0.18, 0.5))
    palette = GRASS_PALETTES[str(rng.choice(list(GRASS_PALETTES)))]
    sky_and_distance(sc, horizon)
    far_rgb = hsv(palette[0] - 0.02, palette[1] * 0.6, palette[2] * 1.1)
    ground(rng, sc.background, horizon, hsv(*palette) * 0.6, far_rgb, sc.light)
    focus = sc.uniform(0.3, 1.0)
    blur_background(sc, sc.dof_blur(0.05, focus))
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
                add_grass_blade(sc, anchor, length, px_per_m, palette, float(anchor[1]), blur)
        else:
            length = rng.uniform(0.25, 0.55) * px_per_m
            if length >= 6.0:
                head = max(rng.uniform(0.018, 0.035) * px_per_m, 1.2)
                add_flower(sc, anchor, length, px_per_m, species[i % 2], head, float(anchor[1]), blur)
    for _ in range(int(rng.integers(0, 3))):
        nearness = rng.uniform(0.2, 1.0)
        base = np.array([rng.uniform(0.05, 0.95) * w, horizon + nearness * span])
        radius = rng.uniform(0.15, 0.5) * near_px_per_m * nearness
        add_still(
            sc,
            rock_sprite(rng, base, radius, sc.light, sc.canvas_size),
            float(base[1]) - 0.5,
            sc.dof_blur(nearness, focus),
        )


def _tree(sc: Scene) -> None:
    """A broadleaf tree against the sky: trunk, branches and leaf clusters filling a crown, over a field."""
    rng = sc.rng
    h = sc.canvas_size[1]
    horizon = sc.y(sc.uniform(0.6, 0.88))
    sky_and_distance(sc, horizon)
    palette = GRASS_PALETTES[str(rng.choice(list(GRASS_PALETTES)))]
    ground(
        rng,
        sc.background,
        horizon,
        hsv(*palette) * 0.55,
        hsv(palette[0], palette[1] * 0.6, palette[2]),
        sc.light,
    )
    blur_background(sc, sc.uniform(0.3, 1.5))
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
    limbs: list[tuple[Element, np.ndarray, np.ndarray]] = [
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
    limbs: list[tuple[Element, np.ndarray, np.ndarray]], point: np.ndarray
) -> tuple[Element, np.ndarray]:
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
    sc: Scene, horizon: float, palette: tuple[float, float, float], low: int, high: int
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
        add_grass_blade(
            sc, anchor, sc.uniform(0.12, 0.3) * px_per_m, px_per_m, palette, 20.0 + float(anchor[1]), 0.0
        )


def _foliage(sc: Scene) -> None:
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
    sc: Scene,
    parent: Element | None,
    start: np.ndarray,
    end: np.ndarray,
    width: float,
    depth: float,
    blur: float,
    bark_rgb: np.ndarray,
    leaf_rgb: np.ndarray,
    leaf_len: float,
    px_per_m: float,
) -> Element | None:
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
        add_leaf(
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


def _flowers(sc: Scene) -> None:
    """Flowers close up: a few tall stems with large heads and leaves, blurred grass and a bokeh backdrop."""
    rng = sc.rng
    w, h = sc.canvas_size
    species = [str(rng.choice(["daisy", "poppy", "cosmos", "cornflower", "buttercup"])) for _ in range(2)]
    backdrop = [hsv(sc.uniform(0.2, 0.33), 0.6, sc.uniform(0.25, 0.55)) for _ in range(3)] + [
        sc.light.sky_horizon * 0.8
    ]
    bokeh(rng, sc.background, backdrop, sc.light, sc.uniform(5.0, 10.0) * sc.unit)
    px_per_m = sc.height / sc.uniform(0.35, 0.7)
    palette = GRASS_PALETTES[str(rng.choice(["lush", "spring", "summer"]))]
    for _ in range(int(rng.integers(10, 40))):  # out-of-focus grass behind
        anchor = np.array([rng.uniform(0, w), h + 2])
        add_grass_blade(
            sc, anchor, sc.uniform(0.3, 0.9) * sc.height, px_per_m, palette, 1.0, sc.uniform(1.5, 3.0)
        )
    count = int(rng.integers(2, 8))
    for i in range(count):
        anchor = np.array([sc.x(sc.uniform(0.05, 0.95)), h + 2])
        length = sc.uniform(0.45, 1.0) * sc.height
        radius = sc.uniform(7.0, 20.0) * sc.unit
        add_flower(
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
        add_grass_blade(
            sc, anchor, sc.uniform(0.3, 0.7) * sc.height, px_per_m, palette, 50.0, sc.uniform(2.0, 4.0)
        )


def _cloth(sc: Scene) -> None:
    """Washing on a line between two posts, in front of a hedge, trees or a wall, grass at the bottom."""
    rng = sc.rng
    w, h = sc.canvas_size
    horizon = sc.y(sc.uniform(0.45, 0.75))
    sky_and_distance(sc, horizon)
    if rng.uniform() < 0.45:
        wall(
            rng,
            sc.background,
            sc.y(sc.uniform(-0.1, 0.3)),
            horizon + 2,
            str(rng.choice(["plaster", "brick", "planks"])),
            sc.light,
        )
    palette = GRASS_PALETTES[str(rng.choice(list(GRASS_PALETTES)))]
    ground(
        rng,
        sc.background,
        horizon,
        hsv(*palette) * 0.6,
        hsv(palette[0], palette[1] * 0.6, palette[2]),
        sc.light,
    )
    blur_background(sc, sc.uniform(0.5, 2.0))
    px_per_m = sc.height / sc.uniform(1.6, 3.2)
    line_y = sc.y(sc.uniform(0.05, 0.3))
    left, right = sc.x(sc.uniform(-0.1, 0.12)), sc.x(sc.uniform(0.88, 1.1))
    sag = sc.uniform(1.0, 6.0) * sc.unit
    wood = BeamStyle("wood", hsv(0.08, 0.3, 0.45), hsv(0.08, 0.3, 0.5), occlusion=0.2)
    post_w = sc.uniform(1.5, 3.0) * sc.unit
    ground_y = horizon + (h - horizon) * sc.uniform(0.3, 0.7)
    for x in (left, right):
        add_still(
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
        add_still(sc, span, 2.0)
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
                clamp_frequency(freqs[0] * 1.6), damping, px_per_m * 0.4, bottom, np.array([1.0, 0.0])
            )
            element.own.append(
                OwnMode(spread, "spread", 0, (float(top[0]), float(top[1])), (0.0, float(height)), width / 2)
            )
        x += width + sc.uniform(0.02, 0.12) * sc.width
    _grass_strip(sc, horizon, palette, 15, 70)


BUILDERS: dict[str, Callable[[Scene], None]] = {
    "meadow": _meadow,
    "tree": _tree,
    "foliage": _foliage,
    "flowers": _flowers,
    "cloth": _cloth,
}
