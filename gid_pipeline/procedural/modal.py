"""Modal physics of swaying plants and cloth: mode shapes, natural frequencies, wind, frequency response.

Every moving scene element is a linear structure whose small motion is a sum of modes,
d(u, t) = sum_j phi_j(u) q_j(t), with phi_j a fixed displacement field (pixels per unit modal coordinate) and
q_j(t) a scalar modal coordinate. Motion is synthesised in the frequency domain as the steady-state response
of each damped mode to a stochastic, spatially coherent wind whose spectrum is band-limited to the frequencies
a spectral volume keeps, so the motion is periodic over the clip and its K-bin spectrum describes it exactly.

Units: lengths in metres where a name says ``_m``, otherwise pixels; frequencies in Hz; time in seconds.
"""

from __future__ import annotations

import math

import numpy as np

# Roots of cos(b) cosh(b) = -1: the clamped-free (cantilever) beam eigenvalues beta_n L.
CANTILEVER_BETAS = (1.8751040687119611, 4.6940911329741745, 7.8547574382376126)
# Zeros of the Bessel function J0: a hanging chain (or cloth pinned along its top edge) has modes J0(z_n
# sqrt(x)).
CHAIN_ROOTS = (2.404825557695773, 5.520078110286311, 8.653727912911013)
GRAVITY_M_S2 = 9.81
_TABLE_SIZE = 513
_S = np.linspace(0.0, 1.0, _TABLE_SIZE)


def _bessel_j0(x: np.ndarray) -> np.ndarray:
    """J0(x) = (1/pi) int_0^pi cos(x sin tau) d tau; the trapezoid rule converges fast on it (periodic)."""
    tau = np.linspace(0.0, math.pi, 97)
    values = np.cos(np.multiply.outer(x, np.sin(tau)))
    return np.trapezoid(values, tau, axis=-1) / math.pi


def _cantilever_shape(n: int) -> np.ndarray:
    """Mode n (0-based) of a uniform cantilever on s = arc length / length in [0, 1], clamped at s = 0."""
    b = CANTILEVER_BETAS[n]
    sigma = (math.cosh(b) + math.cos(b)) / (math.sinh(b) + math.sin(b))
    x = b * _S
    return np.cosh(x) - np.cos(x) - sigma * (np.sinh(x) - np.sin(x))


def _chain_shape(n: int) -> np.ndarray:
    """Mode n (0-based) of a hanging chain on s = distance from the pinned top / length; zero at the pin."""
    return _bessel_j0(CHAIN_ROOTS[n] * np.sqrt(np.clip(1.0 - _S, 0.0, 1.0)))


def _tables(shapes: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(modes, TABLE) shapes normalised to 1 at s = 1, their d/ds, and uniform-load participation factors."""
    phi = np.stack([p / p[-1] for p in shapes]).astype(np.float64)
    dphi = np.gradient(phi, _S, axis=1, edge_order=2)
    # Participation of mode n under a uniform distributed load: int phi / int phi^2 (tip-normalised shapes).
    participation = np.trapezoid(phi, _S, axis=1) / np.trapezoid(phi**2, _S, axis=1)
    return phi, dphi, participation


CANTILEVER_PHI, CANTILEVER_DPHI, CANTILEVER_PARTICIPATION = _tables([_cantilever_shape(n) for n in range(3)])
CHAIN_PHI, CHAIN_DPHI, CHAIN_PARTICIPATION = _tables([_chain_shape(n) for n in range(3)])
SHAPE_TABLES = {"beam": (CANTILEVER_PHI, CANTILEVER_DPHI), "chain": (CHAIN_PHI, CHAIN_DPHI)}
PARTICIPATION = {"beam": CANTILEVER_PARTICIPATION, "chain": CHAIN_PARTICIPATION}
TABLE_S = _S


def sample_shape(kind: str, mode: int, s: np.ndarray) -> np.ndarray:
    """Mode shape value (tip = 1) of ``kind`` ("beam" or "chain") mode ``mode`` (0-based) at s in [0, 1]."""
    return np.interp(s, _S, SHAPE_TABLES[kind][0][mode])


def sample_slope(kind: str, mode: int, s: float) -> float:
    """d phi / d s of a mode at one arc-length fraction s (divide by the length for a slope)."""
    return float(np.interp(s, _S, SHAPE_TABLES[kind][1][mode]))


def beam_frequencies_hz(
    length_m: float, thickness_m: float, wave_speed_m_s: float, tip_mass_ratio: float, num_modes: int = 3
) -> list[float]:
    """Bending frequencies of a cantilever with a round section and a tip mass.

    f_1 = beta_1^2 / (2 pi) * sqrt(E I / (rho A)) / L^2 with sqrt(I / A) = d / 4 for a round section and
    wave_speed = sqrt(E / rho), lowered by a tip mass M = ratio * beam mass as 1 / sqrt(1 + ratio / 0.2427)
    (Rayleigh: a cantilever's effective mass is 0.2427 of its own). Longer, thinner, heavier-headed -> lower.
    Higher modes keep the uniform beam ratios (beta_n / beta_1)^2 = 6.27, 17.5.
    """
    f1 = (
        CANTILEVER_BETAS[0] ** 2
        / (2 * math.pi)
        * (thickness_m / 4)
        * wave_speed_m_s
        / length_m**2
        / math.sqrt(1.0 + tip_mass_ratio / 0.2427)
    )
    return [f1 * (CANTILEVER_BETAS[n] / CANTILEVER_BETAS[0]) ** 2 for n in range(num_modes)]


def chain_frequencies_hz(length_m: float, num_modes: int = 3) -> list[float]:
    """Pendulum modes of a hanging chain / cloth of length L: f_n = z_n / (4 pi) * sqrt(g / L)."""
    return [CHAIN_ROOTS[n] / (4 * math.pi) * math.sqrt(GRAVITY_M_S2 / length_m) for n in range(num_modes)]


def band_frequencies_hz(num_frames: int, fps: float, max_hz: float) -> np.ndarray:
    """(B,) float64 bin frequencies k * fps / T, k = 1..B: all bins up to max_hz and below Nyquist."""
    last = min(math.floor(max_hz * num_frames / fps + 1e-9), (num_frames - 1) // 2)
    return np.arange(1, last + 1, dtype=np.float64) * (fps / num_frames)


def wind_forcing(
    rng: np.random.Generator,
    positions: np.ndarray,
    freqs_hz: np.ndarray,
    speed_px_s: float,
    corner_hz: float,
    coherence_decay: float,
    coherent_fraction: float,
    vertical_ratio: float,
    num_features: int = 24,
) -> np.ndarray:
    """Fourier coefficients of a gusty wind velocity sampled at points of the image.

    The fluctuating wind is frozen turbulence carried across the scene at speed_px_s (signed: > 0 blows to
        +x), so
    each frequency arrives with a phase delay x / U: gusts visibly sweep over a meadow. Its power spectrum has
    the von Karman shape (1 + (f / corner)^2)^(-5/6). At frequency f, points decorrelate over U / (decay * f)
    pixels (Davenport's coherence model, realised here as a smooth Gaussian random field from random Fourier
    features), plus an incoherent local part of weight 1 - coherent_fraction.

    Args:
        positions: (N, 2) float, x and y in pixels.
        freqs_hz: (B,) float, the band's bin frequencies (all > 0).

    Returns:
        (B, N, 2) complex128, x and y wind components; unit variance per bin before the spectral shape.
    """
    num_bins, num_points = len(freqs_hz), len(positions)
    scale = np.abs(speed_px_s) / (coherence_decay * freqs_hz)  # (B,) coherence length in px
    wavevectors = rng.standard_normal((2, num_bins, num_features, 2)) / scale[None, :, None, None]
    weights = rng.standard_normal((2, num_bins, num_features)) + 1j * rng.standard_normal(
        (2, num_bins, num_features)
    )
    weights /= math.sqrt(2 * num_features)
    phase = np.einsum("cbfd,nd->cbfn", wavevectors, positions)
    coherent = np.einsum("cbf,cbfn->cbn", weights, np.exp(1j * phase))
    local = rng.standard_normal((2, num_bins, num_points)) + 1j * rng.standard_normal(
        (2, num_bins, num_points)
    )
    local /= math.sqrt(2)
    field = math.sqrt(coherent_fraction) * coherent + math.sqrt(1.0 - coherent_fraction) * local
    travel = np.exp(-2j * math.pi * np.outer(freqs_hz, positions[:, 0] / speed_px_s))  # (B, N)
    spectrum = (1.0 + (freqs_hz / corner_hz) ** 2) ** (-5.0 / 12.0)  # amplitude = sqrt of the power shape
    field = field * (travel * spectrum[:, None])[None]
    field[1] *= vertical_ratio
    return np.moveaxis(field, 0, -1)


def modal_response(freqs_hz: np.ndarray, natural_hz: np.ndarray, damping: np.ndarray) -> np.ndarray:
    """(B, J) complex receptance of J damped oscillators: 1 / ((2 pi f_n)^2 (1 - r^2 + 2 i zeta r)), r = f /
    f_n.

    Units: modal displacement per unit modal force per unit mass (s^2); quasi-static gain 1 / omega_n^2 below
    resonance, a peak of 1 / (2 zeta) times that at resonance, and roll-off above.
    """
    ratio = freqs_hz[:, None] / natural_hz[None, :]
    omega2 = (2 * math.pi * natural_hz[None, :]) ** 2
    return 1.0 / (omega2 * (1.0 - ratio**2 + 2j * damping[None, :] * ratio))


def modal_time_series(coefficients: np.ndarray, num_frames: int) -> np.ndarray:
    """Modal coordinates over the clip from their band coefficients, pinned to zero at frame 0.

    Args:
        coefficients: (B, J) complex, bins k = 1..B of a forward-normalised DFT over num_frames frames.

    Returns:
        (J, num_frames) float64: q(t) - q(0), q(t) = sum_k 2 Re(Q_k exp(2 pi i k t / T)).
    """
    k = np.arange(1, coefficients.shape[0] + 1, dtype=np.float64)
    phase = 2 * math.pi * np.outer(np.arange(num_frames), k) / num_frames  # (T, B)
    q = 2.0 * ((np.cos(phase) - 1.0) @ coefficients.real - np.sin(phase) @ coefficients.imag)
    return q.T
