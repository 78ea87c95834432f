"""Interactive dynamics: a spectral volume read as image-space modal bases, poked, simulated, rendered.

Following Davis et al. ("Image-space modal bases for plausible manipulation of objects in video", 2015) and the
paper's section on interactive dynamics, every non-DC frequency bin k of a spectral volume is one mode of a linear
system: its complex 2-D mode shape is Phi_k(p) = S_k(p) (pixels) and its natural angular frequency is
omega_k = 2 pi k fps / T. The scene's displacement is D(p, t) = Re(sum_k Phi_k(p) q_k(t)), and each complex modal
coordinate is a damped oscillator driven by the pokes (Davis et al.'s modal force Phi_k(p)^H d, scaled by g):

    q_k'' + 2 xi w_k q_k' + w_k^2 q_k = g(p) Phi_k(p)^H d / mass,        w_k = omega_k sqrt(stiffness / mass),

for a push at point p with force vector d = (dx, dy). The system is linear in the forces: pokes superpose.

Units. A spectral volume says how far things moved in the clip, not how hard they are to push, so forces are
expressed as the drag a user makes: d is in pixels of the picture. The gain is g(p) = 1 / max(c(p), c_ref), with
c(p) = sum_k |Phi_k(p)|^2 / omega_k^2 the static compliance of the poked point (px^2 s^2) and c_ref a tenth of its
99th percentile over the picture. With stiffness = mass = 1:

- a drag (force held for ``hold`` > 0 seconds, then released) pulls the poked point, once settled, by up to |d|
  pixels along d: exactly |d| where the point moves only along d and c(p) >= c_ref, proportionally less on
  points stiffer than c_ref. Other points follow as their modes are coupled to it (a branch tip moves more than
  the branch it is pulled by). On the way the step overshoots, by up to exp(-pi xi / sqrt(1 - xi^2));
- an impulse (``hold`` = 0) is a velocity kick g Phi^H d / omega_ref(p), omega_ref(p) = sum_k c_k(p) /
  sum_k (c_k(p) / omega_k) with c_k = |Phi_k|^2 / omega_k^2, so that the modes' swings at p add up to that same
  deflection: the poked point swings by about |d| pixels (less where damping eats into the first swing or the
  modes do not peak together).

Pixels whose spectrum is zero never move, and poking them moves nothing. Two smooth saturations keep a huge
force from tearing the picture: the force's magnitude, then every pixel's displacement magnitude, go through
soft_limit with the limit L = max_displacement * (shorter image side): identity up to L / 2, then a tanh knee
that never exceeds L. Below L / 2 everything is exactly linear.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..errors import GIDInputError
from ..rendering.loop import fit_spectrum_to_image, loop_motion_magnitude, render_frames, softmax_metric
from ..rendering.splatting import DEFAULT_CHUNK_SIZE
from ..spectral.volume import SpectralVolume

# Damping ratio of every mode (amplitudes decay as exp(-xi w_k t), so faster modes settle sooner). On the tree
# clip (slowest mode 0.28 Hz) an impulse swings the foliage to one side and back four times in 6.5 s, each swing
# about half the last.
DEFAULT_DAMPING = 0.2
# Displacement limit as a fraction of the image's shorter side (16 px at 256x160).
DEFAULT_MAX_DISPLACEMENT = 0.1
# c_ref is this fraction of this percentile of the per-pixel static compliance: points at least a tenth as
# pliable as the most pliable 1% of the picture (a third of their amplitude) follow a drag fully.
COMPLIANCE_PERCENTILE = 99.0
COMPLIANCE_FRACTION = 0.1
# A frame whose largest displacement is below this many pixels is the input image itself (its pixels would
# change by under a thousandth of the image's range), so an idle or settled scene costs nothing to render.
STILL_PIXELS = 1e-3


@dataclass(frozen=True)
class ModalBasis:
    """The image-space modal bases of one photo, built once (ModalBasis.from_volume) and reused for every poke.

    Attributes:
        shapes: (M, 4, H, W) float32 contiguous, mode shapes Phi_k = S_k of the non-DC bins k = 1..M, in pixels of
            the image, channel order spectral.CHANNELS (x.real, y.real, x.imag, y.imag).
        omegas: (M,) float64 natural angular frequencies omega_k = 2 pi k fps / T, rad/s.
        metric: (1, 1, H, W) softmax log-weights of the loop's W(p), so poke frames keep the loop's occlusions.
        reference_compliance: c_ref in px^2 s^2 (module docstring); 0 only for a spectrum without any motion.
    """

    shapes: torch.Tensor
    omegas: torch.Tensor
    metric: torch.Tensor
    reference_compliance: float

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the image the basis belongs to."""
        return self.shapes.shape[-2], self.shapes.shape[-1]

    @property
    def num_modes(self) -> int:
        return self.shapes.shape[0]

    @classmethod
    def from_volume(cls, volume: SpectralVolume, height: int, width: int) -> ModalBasis:
        """Modal bases of a spectral volume for an image of height x width pixels.

        The volume is resized to the image (displacements scaled) when the aspect ratios agree, else
        GIDInputError. A bare tensor is refused: without num_frames and fps its modes have no frequencies.
        """
        if not isinstance(volume, SpectralVolume):
            raise GIDInputError(
                f"need a SpectralVolume (spectrum plus num_frames and fps), got {type(volume).__name__}; wrap a "
                f"bare tensor as SpectralVolume(spectrum, num_frames, fps) or load a saved .safetensors volume"
            )
        if volume.num_frequencies < 2:
            raise GIDInputError("the spectral volume holds only the DC term: it has no oscillating mode to poke")
        if not all(isinstance(n, numbers.Integral) and n >= 1 for n in (height, width)):
            raise GIDInputError(f"image size must be positive integers, got {width!r}x{height!r} (width x height)")
        spectrum = fit_spectrum_to_image(volume.spectrum.float(), height, width)
        shapes = spectrum[1:].contiguous()
        omegas = 2.0 * math.pi * volume.frequencies_hz[1:]
        # c(p) = sum over modes and channels of Phi^2 / omega^2, as one matmul (reducing over the channel dim of
        # (M, 4, H, W) is far slower on CPU)
        per_row = omegas.square().reciprocal().repeat_interleave(4).float()
        compliance = per_row @ shapes.view(4 * len(omegas), -1).square()
        return cls(
            shapes=shapes,
            omegas=omegas,
            metric=softmax_metric(loop_motion_magnitude(spectrum, volume.num_frames)),
            reference_compliance=COMPLIANCE_FRACTION * _percentile(compliance, COMPLIANCE_PERCENTILE),
        )

    def sample(self, x: float, y: float) -> torch.Tensor:
        """(M, 4) float64 mode shapes at image point (x, y), bilinear; (0, 0) is the top-left pixel's centre."""
        height, width = self.size
        x, y = min(max(x, 0.0), width - 1.0), min(max(y, 0.0), height - 1.0)
        x0, y0 = min(int(x), max(width - 2, 0)), min(int(y), max(height - 2, 0))
        x1, y1 = min(x0 + 1, width - 1), min(y0 + 1, height - 1)
        fx, fy = x - x0, y - y0
        corners = self.shapes[:, :, [y0, y0, y1, y1], [x0, x1, x0, x1]].double()  # (M, 4, 4 corners)
        weights = torch.tensor([(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy], dtype=torch.float64)
        return corners @ weights


@dataclass(frozen=True)
class Poke:
    """A push on the picture at (x, y) with force (dx, dy), as an impulse or a held drag.

    Attributes:
        x, y: image pixels, (0, 0) the centre of the top-left pixel; on the picture means
            -0.5 <= x <= W - 0.5 and -0.5 <= y <= H - 0.5 (checked against the basis).
        dx, dy: force in pixels of the picture (module docstring); any finite size, soft-limited.
        start: seconds after frame 0 at which the poke begins, >= 0.
        hold: seconds the drag is held before release, >= 0; 0 makes the poke an impulse.
    """

    x: float
    y: float
    dx: float
    dy: float
    start: float = 0.0
    hold: float = 0.0

    def __post_init__(self) -> None:
        values = (self.x, self.y, self.dx, self.dy, self.start, self.hold)
        if not all(_is_finite(v) for v in values):
            raise GIDInputError(f"a poke needs finite numbers for its point, force and times, got {self}")
        if self.start < 0 or self.hold < 0:
            raise GIDInputError(f"a poke's start and hold must be >= 0 seconds, got {self.start} and {self.hold}")


@dataclass(frozen=True)
class DynamicsParams:
    """Simulation parameters shared by all modes.

    Attributes:
        damping: modal damping ratio xi in [0, 1); amplitudes decay as exp(-xi w_k t). 1 or more is overdamped
            (nothing would swing) and is refused.
        stiffness: scales every modal stiffness, > 0: a stiffer scene swings faster (w_k ~ sqrt(stiffness)) and
            less far.
        mass: scales every modal mass, > 0: a heavier scene swings slower (w_k ~ 1 / sqrt(mass)) and shrugs off
            impulses (swing ~ 1 / sqrt(stiffness * mass)); a settled drag's pull does not depend on it.
        max_displacement: the displacement limit L as a fraction of the image's shorter side, in (0, 1].
    """

    damping: float = DEFAULT_DAMPING
    stiffness: float = 1.0
    mass: float = 1.0
    max_displacement: float = DEFAULT_MAX_DISPLACEMENT

    def __post_init__(self) -> None:
        if not (_is_finite(self.damping) and 0.0 <= self.damping < 1.0):
            raise GIDInputError(f"damping ratio must be in [0, 1), got {self.damping}")
        for name in ("stiffness", "mass"):
            value = getattr(self, name)
            if not (_is_finite(value) and value > 0):
                raise GIDInputError(f"{name} must be a positive number, got {value}")
        if not (_is_finite(self.max_displacement) and 0.0 < self.max_displacement <= 1.0):
            raise GIDInputError(f"max_displacement must be in (0, 1] of the shorter side, got {self.max_displacement}")

    def limit_pixels(self, size: tuple[int, int]) -> float:
        """The displacement limit L in pixels for an image of size (height, width)."""
        return self.max_displacement * min(size)


def soft_limit(magnitude: torch.Tensor, limit: float) -> torch.Tensor:
    """Smooth saturation of magnitudes >= 0 (inf allowed): identity up to limit / 2, then a tanh knee below limit.

    Continuous with its first derivative and never above limit (tanh rounds to 1 far out); its slope is at most
    1, so it cannot steepen a displacement field (no new tearing).
    """
    knee = 0.5 * limit
    return torch.where(magnitude <= knee, magnitude, knee + knee * torch.tanh((magnitude - knee) / knee))


def check_pokes(basis: ModalBasis, pokes: Sequence[Poke]) -> None:
    """Raise GIDInputError unless every poke is a Poke whose point lies on the basis's picture."""
    height, width = basis.size
    for poke in pokes:
        if not isinstance(poke, Poke):
            raise GIDInputError(f"expected Poke objects, got {type(poke).__name__}")
        if not (-0.5 <= poke.x <= width - 0.5 and -0.5 <= poke.y <= height - 0.5):
            raise GIDInputError(
                f"poke point ({poke.x:g}, {poke.y:g}) is outside the {width}x{height} image "
                f"(x in [0, {width - 1}], y in [0, {height - 1}])"
            )


def modal_inputs(basis: ModalBasis, poke: Poke, params: DynamicsParams) -> torch.Tensor:
    """(M,) complex128 input of one poke to each mode, per unit modal mass.

    For a drag, the modal force g Phi_k(p)^H d / mass in 1 / s^2; for an impulse, the velocity kick
    g Phi_k(p)^H d / (omega_ref(p) mass) in 1 / s (module docstring). |d| is soft-limited to the displacement
    limit first. Raises GIDInputError when the point lies outside the picture.
    """
    check_pokes(basis, [poke])
    scale = max(abs(poke.dx), abs(poke.dy))
    if scale == 0.0:
        return torch.zeros(basis.num_modes, dtype=torch.complex128)
    # Scaled first, so that a force near the float maximum saturates (its length may be inf) instead of
    # overflowing into NaN.
    unit = torch.tensor([poke.dx / scale, poke.dy / scale], dtype=torch.float64)
    length = float(torch.linalg.vector_norm(unit))  # in [1, sqrt(2)]
    magnitude = torch.tensor(scale * length, dtype=torch.float64)
    force = unit / length * soft_limit(magnitude, params.limit_pixels(basis.size))
    phi = basis.sample(poke.x, poke.y)  # (M, 4): x.real, y.real, x.imag, y.imag
    compliance = phi.square().sum(dim=1) / basis.omegas.square()  # (M,) c_k(p)
    total = float(compliance.sum())
    if total == 0.0:  # nothing moves here, so no mode can be driven from this point
        return torch.zeros(basis.num_modes, dtype=torch.complex128)
    # Phi^H d = (Re Phi . d) - i (Im Phi . d)
    inputs = torch.complex(phi[:, 0:2] @ force, -(phi[:, 2:4] @ force))
    inputs = inputs / (max(total, basis.reference_compliance) * params.mass)
    if poke.hold > 0:
        return inputs
    return inputs * (float((compliance / basis.omegas).sum()) / total)  # / omega_ref(p)


def _unit_responses(tau: torch.Tensor, omega: torch.Tensor, damping: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Closed-form responses of q'' + 2 xi w q' + w^2 q = u(tau) at rest before tau = 0 (0 <= xi < 1).

    Args:
        tau: seconds since the input began, broadcasting with omega; negative means not yet.
        omega: natural angular frequencies w, rad/s.

    Returns:
        impulse: q after a unit velocity kick at tau = 0, e^(-xi w tau) sin(w_d tau) / w_d, in seconds.
        step: w^2 q under a unit input from tau = 0 on, 1 - e^(-xi w tau) (cos w_d tau + xi w / w_d sin w_d tau).
    """
    tau = tau.clamp_min(0.0)  # both responses are exactly 0 at tau = 0, so this is the causal cut
    omega_d = omega * math.sqrt(1.0 - damping * damping)
    decay = torch.exp(-damping * omega * tau)
    sin, cos = torch.sin(omega_d * tau), torch.cos(omega_d * tau)
    impulse = decay * sin / omega_d
    step = 1.0 - decay * (cos + (damping * omega / omega_d) * sin)
    return impulse, step


def modal_coordinates(
    basis: ModalBasis, pokes: Sequence[Poke], times: torch.Tensor, params: DynamicsParams | None = None
) -> torch.Tensor:
    """Modal coordinates q_k(t) of the response to the pokes, exact at any times.

    Integrator: the exact solution of each damped oscillator under piecewise-constant force (an impulse is a
    velocity kick; a drag is a step of force on, then off at release), summed over pokes. Explicit Euler (the
    paper's choice) multiplies a mode's energy by about 1 - 2 xi w dt + (w dt)^2 per step, so every mode with
    w dt > 2 xi gains energy and blows up; at 30 fps and xi = 0.2 that is every mode above 2 Hz. The closed form
    is unconditionally stable, decays exactly as the continuous system does, needs no time step (poke times need
    not fall on frames), and evaluates any frame directly, vectorised over times, pokes and modes, with no state
    to warm up: the first frame costs what any frame costs, and an app can seek.

    Args:
        basis: the photo's modal bases.
        pokes: pokes with their start times; may be empty (then q = 0).
        times: (N,) seconds since frame 0.
        params: damping, stiffness, mass and displacement limit (defaults if None).

    Returns:
        (N, M) complex128 modal coordinates, dimensionless (D = Re(sum_k Phi_k q_k) is in pixels).
    """
    params = params or DynamicsParams()
    times = times.to(torch.float64).reshape(-1, 1, 1)  # (N, 1, 1)
    if not pokes:
        return torch.zeros(times.shape[0], basis.num_modes, dtype=torch.complex128)
    inputs = torch.stack([modal_inputs(basis, poke, params) for poke in pokes])  # (P, M)
    starts = torch.tensor([poke.start for poke in pokes], dtype=torch.float64).view(1, -1, 1)
    holds = torch.tensor([poke.hold for poke in pokes], dtype=torch.float64).view(1, -1, 1)
    omega = basis.omegas * math.sqrt(params.stiffness / params.mass)  # (M,)
    impulse, step_on = _unit_responses(times - starts, omega, params.damping)  # (N, P, M)
    _, step_off = _unit_responses(times - starts - holds, omega, params.damping)
    # A drag's force F gives q = F / w^2 (step_on - step_off); an impulse's kick v gives q = v * impulse.
    response = torch.where(holds > 0, (step_on - step_off) / omega.square(), impulse)
    return torch.einsum("npm,pm->nm", response.to(torch.complex128), inputs)


def modal_displacements(
    basis: ModalBasis, coordinates: torch.Tensor, params: DynamicsParams | None = None
) -> torch.Tensor:
    """Displacement fields D = Re(sum_k Phi_k q_k), every pixel's magnitude soft-limited to L.

    Args:
        basis: the photo's modal bases.
        coordinates: (N, M) complex modal coordinates (modal_coordinates).
        params: supplies the displacement limit (defaults if None).

    Returns:
        (N, 2, H, W) float32 pixels, from frame 0 of the picture to frame n.
    """
    params = params or DynamicsParams()
    height, width = basis.size
    # Channels (x.real, y.real, x.imag, y.imag) are (real, imag) x (x, y), so the rows of this view are
    # (mode, real/imag) and its columns (x/y, pixel): Re(Phi q) = Re(Phi) Re(q) - Im(Phi) Im(q) is one matmul.
    matrix = basis.shapes.view(2 * basis.num_modes, 2 * height * width)
    weights = torch.stack([coordinates.real, -coordinates.imag], dim=-1).reshape(coordinates.shape[0], -1)
    motion = (weights.to(matrix.dtype) @ matrix).view(-1, 2, height, width)
    # hypot, not linalg.vector_norm over the size-2 channel dim, which is ~100x slower on CPU
    magnitude = torch.hypot(motion[:, 0:1], motion[:, 1:2])
    limit = params.limit_pixels(basis.size)
    if float(magnitude.amax()) > 0.5 * limit:  # below the knee the factor would be exactly 1
        motion = motion * (soft_limit(magnitude, limit) / magnitude.clamp_min(1e-12))
    return motion


def iter_poke_frames(
    image: torch.Tensor,
    basis: ModalBasis,
    pokes: Sequence[Poke],
    num_frames: int,
    fps: float,
    params: DynamicsParams | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    start_time: float = 0.0,
) -> Iterator[torch.Tensor]:
    """Stream the rendered response to the pokes, simulating and rendering chunk by chunk.

    Frame n shows time start_time + n / fps. Chunks grow 1, 1, 2, 4, ... up to chunk_size frames, so the first
    frames come after one frame's work and later ones in efficient batches. A frame in which nothing moves by
    STILL_PIXELS is the image itself, e.g. every frame up to and including a poke's start (it has not moved
    anything yet). An app keeps one clock: pokes carry their start on it, and after each new poke it streams on
    from that moment with start_time. Arguments are checked here, before the first frame is asked for.

    Args:
        image: (3, H, W) float in [0, 1], the picture the basis was built for.
        basis: its modal bases (ModalBasis.from_volume).
        pokes: the pokes, with their start times in seconds.
        num_frames: frames to render, >= 1.
        fps: frames per second, > 0.
        params: damping, stiffness, mass and displacement limit (defaults if None).
        chunk_size: the most frames simulated and rendered at once, >= 1.
        start_time: seconds on the pokes' clock of frame 0, finite.

    Returns:
        An iterator of (n, 3, H, W) float32 frames in [0, 1], in order.
    """
    _check_timing(num_frames, fps)
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise GIDInputError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    if not _is_finite(start_time):
        raise GIDInputError(f"start_time must be a finite number of seconds, got {start_time!r}")
    if image.dim() != 3 or tuple(image.shape[-2:]) != basis.size:
        raise GIDInputError(
            f"image of shape {tuple(image.shape)} does not match the modal basis's {basis.size[1]}x{basis.size[0]}"
            f" (width x height); build the basis for this image"
        )
    check_pokes(basis, pokes)
    params = params or DynamicsParams()
    return _poke_chunks(image.float(), basis, list(pokes), num_frames, fps, params, chunk_size, start_time)


def _poke_chunks(
    image: torch.Tensor,
    basis: ModalBasis,
    pokes: list[Poke],
    num_frames: int,
    fps: float,
    params: DynamicsParams,
    chunk_size: int,
    start_time: float,
) -> Iterator[torch.Tensor]:
    """The generator behind iter_poke_frames (arguments already checked)."""
    start = 0
    while start < num_frames:
        stop = min(num_frames, start + min(max(start, 1), chunk_size))
        times = start_time + torch.arange(start, stop, dtype=torch.float64) / fps
        motion = modal_displacements(basis, modal_coordinates(basis, pokes, times, params), params)
        moving = torch.hypot(motion[:, 0], motion[:, 1]).flatten(1).amax(dim=1) >= STILL_PIXELS
        if bool(moving.all()):
            yield render_frames(image, motion, basis.metric, "softmax", True).clamp_(0.0, 1.0)
        else:
            frames = image.expand(stop - start, -1, -1, -1).clone()
            if bool(moving.any()):
                rendered = render_frames(image, motion[moving], basis.metric, "softmax", True)
                frames[moving] = rendered.clamp_(0.0, 1.0)
            yield frames
        start = stop


def render_poke(
    image: torch.Tensor,
    basis: ModalBasis,
    pokes: Sequence[Poke],
    num_frames: int,
    fps: float,
    params: DynamicsParams | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    start_time: float = 0.0,
) -> torch.Tensor:
    """All frames of iter_poke_frames at once: (num_frames, 3, H, W) float32 in [0, 1]."""
    chunks = iter_poke_frames(image, basis, pokes, num_frames, fps, params, chunk_size, start_time)
    return torch.cat(list(chunks))


def poke_video_frames(
    image: torch.Tensor,
    volume: SpectralVolume,
    at: tuple[float, float],
    force: tuple[float, float],
    num_frames: int,
    fps: float,
    drag_seconds: float = 0.0,
    params: DynamicsParams | None = None,
) -> Iterator[torch.Tensor]:
    """What ``gid poke`` renders: one poke at time 0 on a photo with its spectral volume, streamed.

    Args:
        image: (3, H, W) float in [0, 1].
        volume: its spectral volume, resized to the image when the aspect ratios agree.
        at: (x, y) image pixels of the poke, (0, 0) the top-left pixel.
        force: (dx, dy) in pixels of the picture (module docstring).
        num_frames: frames to render, >= 1.
        fps: frames per second of the video, > 0.
        drag_seconds: hold the force this long, then release; 0 for an impulse.
        params: damping, stiffness, mass and displacement limit (defaults if None).

    Returns:
        An iterator of (n, 3, H, W) float32 chunks in [0, 1]; bad input raises GIDInputError before it.
    """
    _check_timing(num_frames, fps)
    poke = Poke(at[0], at[1], force[0], force[1], start=0.0, hold=drag_seconds)
    basis = ModalBasis.from_volume(volume, image.shape[-2], image.shape[-1])
    return iter_poke_frames(image, basis, [poke], num_frames, fps, params)


def _is_finite(value: object) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_timing(num_frames: int, fps: float) -> None:
    """Raise GIDInputError unless num_frames is a positive integer and fps a positive finite number."""
    if isinstance(num_frames, bool) or not isinstance(num_frames, numbers.Integral) or num_frames < 1:
        raise GIDInputError(f"number of frames must be a positive integer, got {num_frames!r}")
    if not (_is_finite(fps) and fps > 0):
        raise GIDInputError(f"fps must be a positive number, got {fps!r}")


def _percentile(values: torch.Tensor, percentile: float, max_samples: int = 1_000_000) -> float:
    """Percentile of a tensor's entries, from an even subsample when large (torch.quantile has a size limit)."""
    flat = values.flatten()
    flat = flat[:: max(1, flat.numel() // max_samples)]
    return float(torch.quantile(flat, percentile / 100.0))
