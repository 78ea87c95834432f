"""Spectral volumes: the frequency-domain representation of oscillating motion.

A motion texture is a stack of displacement fields F_t, t = 0..T-1, each (2, H, W) in pixels, x first, holding the
displacement of every pixel of frame 0 to its position in frame t. Its spectral volume keeps the K lowest temporal
frequencies of the DFT over t:

    S_k(p) = (1/T) * sum_t F_t(p) * exp(-2 pi i k t / T),        k = 0..K-1

stored as a real tensor (..., K, 4, H, W) with channel order CHANNELS = (x.real, y.real, x.imag, y.imag), in pixels
of the array the motion lives on. The 1/T ("forward") normalisation makes coefficients independent of T: a cosine
of amplitude A at bin k has |S_k| = A / 2. Because the motion is real, bins k and T-k are conjugate, so the K
lowest bins determine a band-limited motion that is periodic in T, which is what makes rendered videos loop.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import GIDInputError

CHANNELS = ("x.real", "y.real", "x.imag", "y.imag")
DEFAULT_NUM_FREQUENCIES = 16
# The paper normalises each frequency by the 95th percentile of |coefficient| over the training set.
DEFAULT_PERCENTILE = 95.0



def min_loop_frames(num_frequencies: int) -> int:
    """Fewest frames a loop period of K frequencies can have without aliasing them: 2 (K - 1) (and at least 2)."""
    return max(2, 2 * (num_frequencies - 1))

def complex_to_channels(spectrum: torch.Tensor) -> torch.Tensor:
    """(..., K, 2, H, W) complex -> (..., K, 4, H, W) real in CHANNELS order."""
    return torch.cat([spectrum.real, spectrum.imag], dim=-3)


def channels_to_complex(spectrum: torch.Tensor) -> torch.Tensor:
    """(..., K, 4, H, W) real in CHANNELS order -> (..., K, 2, H, W) complex."""
    if spectrum.shape[-3] != 4:
        raise GIDInputError(f"a spectral volume has 4 channels per frequency, got shape {tuple(spectrum.shape)}")
    return torch.complex(spectrum[..., 0:2, :, :].float(), spectrum[..., 2:4, :, :].float())


def motion_to_spectrum(displacements: torch.Tensor, num_frequencies: int = DEFAULT_NUM_FREQUENCIES) -> torch.Tensor:
    """Spectral volume of a motion texture.

    Args:
        displacements: (..., T, 2, H, W) float, pixels; displacement from frame 0 to frame t.
        num_frequencies: K, the number of lowest DFT bins kept (DC included); K <= T // 2 + 1.

    Returns:
        (..., K, 4, H, W) float32 in CHANNELS order, pixels (forward-normalised DFT, see module docstring).
    """
    num_frames = displacements.shape[-4]
    if not 1 <= num_frequencies <= num_frames // 2 + 1:
        raise GIDInputError(
            f"num_frequencies must be between 1 and T // 2 + 1 = {num_frames // 2 + 1} for T = {num_frames} "
            f"frames, got {num_frequencies}"
        )
    # rfft returns exactly the non-negative frequencies; the negative ones are their conjugates.
    spectrum = torch.fft.rfft(displacements.float(), dim=-4, norm="forward")[..., :num_frequencies, :, :, :]
    return complex_to_channels(spectrum)


def spectrum_to_motion(
    spectrum: torch.Tensor,
    num_frames: int,
    pin_first_frame: bool = True,
    frame_indices: torch.Tensor | None = None,
) -> torch.Tensor:
    """Motion texture of a spectral volume, through conjugate symmetry.

    F_t = Re(S_0) + sum_{k>=1} 2 Re(S_k exp(2 pi i k t / T)), evaluated at T = num_frames equally spaced times over
    one period, so the result is periodic in num_frames (frame num_frames equals frame 0). Evaluating the same
    spectrum with another num_frames resamples the loop in time: it changes the video's speed, not its shape.

    Args:
        spectrum: (..., K, 4, H, W) real, CHANNELS order, pixels.
        num_frames: samples per period, T >= 1.
        pin_first_frame: subtract F_0 so that frame 0 is the input image (its DC term then cancels).
        frame_indices: optional (N,) times in frames (may be fractional or >= T) to evaluate instead of 0..T-1.

    Returns:
        (..., N, 2, H, W) float32 displacements in pixels, N = num_frames or len(frame_indices).
    """
    if num_frames < 1:
        raise GIDInputError(f"num_frames must be >= 1, got {num_frames}")
    if spectrum.shape[-3] != 4:
        raise GIDInputError(f"a spectral volume has 4 channels per frequency, got shape {tuple(spectrum.shape)}")
    num_frequencies = spectrum.shape[-4]
    t = torch.arange(num_frames, dtype=torch.float64) if frame_indices is None else frame_indices.double().cpu()
    k = torch.arange(num_frequencies, dtype=torch.float64)
    phase = 2.0 * math.pi * torch.outer(t, k) / num_frames  # (N, K)
    cos, sin = torch.cos(phase), torch.sin(phase)
    if pin_first_frame:
        cos = cos - 1.0  # exp(i phase) - exp(0): F_0 is exactly zero and the DC term drops out
    # Hermitian weights: DC counted once, every other kept bin twice (it stands for itself and its conjugate).
    weights = torch.full((num_frequencies,), 2.0, dtype=torch.float64)
    weights[0] = 1.0
    dtype = spectrum.dtype if spectrum.is_floating_point() else torch.float32
    cos = (cos * weights).to(device=spectrum.device, dtype=dtype)
    sin = (sin * weights).to(device=spectrum.device, dtype=dtype)
    # Re(S e^{i phase}) = Re(S) cos - Im(S) sin, as two real (N, K) x (..., K, 2HW) products.
    real = spectrum[..., 0:2, :, :].flatten(-3)
    imag = spectrum[..., 2:4, :, :].flatten(-3)
    motion = torch.matmul(cos, real) - torch.matmul(sin, imag)
    return motion.unflatten(-1, (2, *spectrum.shape[-2:]))


def fit_loop_spectrum(
    displacements: torch.Tensor, num_frequencies: int = DEFAULT_NUM_FREQUENCIES, taper: float = 0.2
) -> torch.Tensor:
    """Spectral volume of a clip's motion fitted for looping: least squares with the clip's ends down-weighted.

    A real clip's trajectory does not end where it started, and truncating its DFT spreads that jump into ringing
    around the loop's seam: on tests/data/tree.avi the step from the last frame back to frame 0 is 0.70 px against
    at most 0.46 px anywhere else. Here the K - 1 non-DC harmonics of period T are fitted by weighted least
    squares to the pinned trajectory (F_0 = 0), with a Tukey window that fades the first and last ``taper``
    fraction of frames out, so the model eases through the seam instead of chasing the jump (tree.avi: 0.55 px at
    the seam, 0.55 px largest elsewhere). A band-limited periodic motion is recovered exactly, as by the DFT.

    Args:
        displacements: (..., T, 2, H, W) pixels, frame 0 -> t, F_0 = 0.
        num_frequencies: K, with 2 (K - 1) <= T.
        taper: fraction of frames faded at each end, in [0, 0.5).

    Returns:
        (..., K, 4, H, W) float32 in CHANNELS order; its DC term pins F_0 = 0.
    """
    num_frames = displacements.shape[-4]
    if not 0.0 <= taper < 0.5:
        raise GIDInputError(f"taper must be in [0, 0.5), got {taper}")
    if not 1 <= num_frequencies or 2 * (num_frequencies - 1) > num_frames:
        raise GIDInputError(
            f"fitting {num_frequencies} frequencies needs at least {2 * (num_frequencies - 1)} frames, got {num_frames}"
        )
    t = torch.arange(num_frames, dtype=torch.float64)
    k = torch.arange(1, num_frequencies, dtype=torch.float64)
    phase = 2.0 * math.pi * torch.outer(t, k) / num_frames
    # F_t = sum_k 2 Re(S_k (e^{i phase} - 1)) = sum_k 2 a_k (cos - 1) - 2 b_k sin, with S_k = a_k + i b_k.
    design = torch.cat([2.0 * (torch.cos(phase) - 1.0), -2.0 * torch.sin(phase)], dim=1)  # (T, 2K - 2)
    weights = torch.ones(num_frames, dtype=torch.float64)
    ramp_length = int(taper * num_frames)
    if ramp_length:
        ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(ramp_length, dtype=torch.float64) + 0.5) / ramp_length)
        weights[:ramp_length] = ramp
        weights[-ramp_length:] = torch.minimum(weights[-ramp_length:], ramp.flip(0))
    weighted = design * weights[:, None]
    gram = design.T @ weighted
    # A tiny ridge keeps the normal equations solvable when the faded frames leave a harmonic poorly observed.
    gram += 1e-9 * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=torch.float64)
    # Solve once for the (2K - 2, T) projection, then apply it to every pixel in the motion's own precision.
    projection = torch.linalg.solve(gram, weighted.T).to(displacements.dtype).to(displacements.device)
    solution = projection @ displacements.movedim(-4, 0).reshape(num_frames, -1)  # (2K - 2, ... * 2 * H * W)
    lead = displacements.shape[:-4]
    real = solution[: num_frequencies - 1].reshape(num_frequencies - 1, *lead, *displacements.shape[-3:])
    imag = solution[num_frequencies - 1 :].reshape(num_frequencies - 1, *lead, *displacements.shape[-3:])
    dc = -2.0 * real.sum(dim=0, keepdim=True)  # makes F_0 = Re(S_0) + sum 2 Re(S_k) exactly zero
    spectrum = torch.complex(torch.cat([dc, real]).float(), torch.cat([torch.zeros_like(dc), imag]).float())
    return complex_to_channels(spectrum.movedim(0, -4))


def frequencies_hz(num_frequencies: int, num_frames: int, fps: float) -> torch.Tensor:
    """(K,) float64 frequency of each kept bin in Hz: k * fps / T (T = 150 at 30 fps gives 0, 0.2, ..., Hz)."""
    if num_frames < 1 or fps <= 0:
        raise GIDInputError(f"need num_frames >= 1 and fps > 0, got {num_frames} and {fps}")
    return torch.arange(num_frequencies, dtype=torch.float64) * (fps / num_frames)


def amplitude(spectrum: torch.Tensor) -> torch.Tensor:
    """(..., K, 4, H, W) -> (..., K, H, W): |S_k(p)| in pixels, the 2-D complex vector norm per frequency."""
    spectrum = spectrum.float()
    # Elementwise hypot instead of a reduction over the size-4 channel dim, which is far slower on CPU.
    real = torch.hypot(spectrum[..., 0, :, :], spectrum[..., 1, :, :])
    imag = torch.hypot(spectrum[..., 2, :, :], spectrum[..., 3, :, :])
    return torch.hypot(real, imag)


def resize_spectrum(spectrum: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resample a spectral volume to another resolution, scaling displacements by the size ratio.

    Args:
        spectrum: (..., K, 4, H, W), pixels of the H x W grid.
        size: (height, width) of the target grid.

    Returns:
        (..., K, 4, height, width), pixels of the target grid: x channels scaled by width / W, y by height / H.
    """
    height, width = size
    if height < 1 or width < 1:
        raise GIDInputError(f"target size must be positive, got {size}")
    h, w = spectrum.shape[-2:]
    lead = spectrum.shape[:-3]
    flat = spectrum.reshape(-1, 4, h, w).float()
    # Area averaging when shrinking keeps fine motion from aliasing; bilinear when enlarging.
    antialias = height < h or width < w
    resized = F.interpolate(flat, size=(height, width), mode="bilinear", align_corners=False, antialias=antialias)
    scale = torch.tensor([width / w, height / h, width / w, height / h], dtype=resized.dtype, device=resized.device)
    return (resized * scale.view(1, 4, 1, 1)).reshape(*lead, 4, height, width)


@dataclass(frozen=True)
class SpectralNormalizer:
    """Adaptive per-frequency normalisation (paper, section 3.1): S' = sign(S) * sqrt(|S| / s_k).

    s_k is a high percentile of |coefficient| at frequency k over a data set, so every frequency slice reaches
    a similar range (about [-1, 1]) and the sqrt spreads the many small coefficients. Exactly invertible.

    Attributes:
        scales: (K,) float, s_k in pixels at the model resolution; positive.
        percentile: the percentile the scales were fitted at (kept for provenance).
    """

    scales: tuple[float, ...]
    percentile: float = DEFAULT_PERCENTILE

    def __post_init__(self) -> None:
        if not self.scales or any(not math.isfinite(s) or s <= 0 for s in self.scales):
            raise GIDInputError(f"normalisation scales must be positive and finite, got {self.scales}")

    @property
    def num_frequencies(self) -> int:
        return len(self.scales)

    def _scale_tensor(self, spectrum: torch.Tensor) -> torch.Tensor:
        if spectrum.shape[-4] != self.num_frequencies:
            raise GIDInputError(
                f"spectral volume has K = {spectrum.shape[-4]} frequencies, the normaliser was fitted for "
                f"K = {self.num_frequencies}"
            )
        return torch.tensor(self.scales, dtype=spectrum.dtype, device=spectrum.device).view(-1, 1, 1, 1)

    def scaled(self, factor: float) -> SpectralNormalizer:
        """The same statistics with every s_k times factor (> 0): its denormalize gives factor times the
        displacements (pixels) of this one's for the same normalised input."""
        if factor == 1.0:
            return self
        return SpectralNormalizer(tuple(float(s) * factor for s in self.scales), self.percentile)

    def normalize(self, spectrum: torch.Tensor) -> torch.Tensor:
        """(..., K, 4, H, W) pixels -> same shape, normalised (dimensionless)."""
        scaled = spectrum / self._scale_tensor(spectrum)
        return torch.sign(scaled) * scaled.abs().sqrt()

    def denormalize(self, normalized: torch.Tensor) -> torch.Tensor:
        """Inverse of normalize: (..., K, 4, H, W) normalised -> pixels."""
        return torch.sign(normalized) * normalized.square() * self._scale_tensor(normalized)

    @classmethod
    def fit(
        cls,
        spectra: Iterable[torch.Tensor],
        percentile: float = DEFAULT_PERCENTILE,
        max_values_per_frequency: int = 2_000_000,
        generator: torch.Generator | None = None,
    ) -> SpectralNormalizer:
        """Fit s_k as the percentile of |coefficient| per frequency over an iterable of (..., K, 4, H, W) spectra.

        Memory stays bounded with bottom-k sampling: every value gets a uniform random priority and only the
        max_values_per_frequency lowest priorities are kept, which is a uniform sample of all values seen, however
        the data arrives in batches.
        """
        if not 0 < percentile <= 100:
            raise GIDInputError(f"percentile must be in (0, 100], got {percentile}")
        kept: torch.Tensor | None = None
        priorities: torch.Tensor | None = None
        for spectrum in spectra:
            values = spectrum.detach().float().abs().movedim(-4, 0).reshape(spectrum.shape[-4], -1).cpu()
            rank = torch.rand(values.shape, generator=generator)
            if kept is not None:
                values, rank = torch.cat([kept, values], dim=1), torch.cat([priorities, rank], dim=1)
            if values.shape[1] > max_values_per_frequency:
                rank, index = torch.topk(rank, max_values_per_frequency, dim=1, largest=False)
                values = torch.gather(values, 1, index)
            kept, priorities = values, rank
        if kept is None or kept.numel() == 0:
            raise GIDInputError("cannot fit normalisation statistics from an empty data set")
        scales = torch.quantile(kept.double(), percentile / 100.0, dim=1)
        # A frequency with no motion anywhere would give s_k = 0; keep it invertible with a tiny floor.
        scales = scales.clamp_min(1e-6)
        return cls(scales=tuple(float(s) for s in scales), percentile=float(percentile))

    def to_dict(self) -> dict:
        return {"scales": list(self.scales), "percentile": self.percentile}

    @classmethod
    def from_dict(cls, config: dict) -> SpectralNormalizer:
        try:
            return cls(scales=tuple(float(s) for s in config["scales"]), percentile=float(config["percentile"]))
        except (KeyError, TypeError, ValueError) as error:
            raise GIDInputError(f"invalid normalisation statistics {config!r}: {error}") from error

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> SpectralNormalizer:
        try:
            config = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise GIDInputError(f"cannot read normalisation statistics from {path}: {error}") from error
        return cls.from_dict(config)
