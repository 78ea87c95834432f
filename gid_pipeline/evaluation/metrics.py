"""Small, pure metrics for judging predicted motion and rendered frames (DESIGN.md, section 7).

Motion amplitude. The amplitude of a pixel is its RMS displacement over one period about its mean position,
    A(p) = sqrt(2 * sum_{k>=1} |S_k(p)|^2)                                            (pixels)
(Parseval for the forward-normalised DFT of spectral.py: bins k and T - k both hold |S_k|). Unlike sum_k |S_k|, it
does not depend on the frequency spacing fps / T for broadband motion, so a ground truth measured on a short clip
(38 frames at 15 fps: 0.39 Hz bins) and a prediction on the model's time base (150 frames at 30 fps: 0.2 Hz bins)
are comparable. A cosine of amplitude a has A = a / sqrt(2).

Moving mask (written down once, here): a pixel of a *true* spectral volume moves when
    A(p) > max(MOVING_MIN_PX, MOVING_RELATIVE * percentile_99(A)),
i.e. when it moves at least a quarter as much as the scene's strongly moving pixels, and at least 0.1 px. The
relative part keeps the mask on what visibly moves: real clips have an optical-flow noise floor (about 0.3 px RMS on
tests/data/tree.avi at 256x160, even on its still window frame), while procedural scenes with exact motion can move
by only 0.3 px overall. Pixels are pixels of the evaluation grid.

Per-frequency profile. Over the pixels of a mask, the amplitude spectral density at frequency f_k = k fps / T,
    D_k = sqrt(2 * mean_p |S_k(p)|^2 / df),   df = fps / T,                          (pixels / sqrt(Hz))
reported as log10(max(D_k, PROFILE_FLOOR)). Dividing by the bin width makes profiles of different spacings agree
(sum_k D_k^2 df = mean A^2 over the mask); profiles are compared in Hz (profile_error).

Band profile (the headline "how it moves" number). Bins are grouped into octave bands of BAND_EDGES_HZ (0.2-0.4,
0.4-0.8, 0.8-1.6, 1.6-3 Hz; a bin belongs to the band holding its frequency), and over the pixels of a mask
    R_b = sqrt(mean_p 2 sum_{k in b} |S_k(p)|^2)                                       (pixels)
is the RMS motion in band b: by Parseval it does not depend on the bin spacing for broadband motion, so a 4 s clip
at 25 fps (0.25 Hz bins) and the model's 150 frames at 30 fps (0.2 Hz bins) compare band by band. The band error is
the mean over the bands both volumes resolve of |log10(max(R_pred, BAND_FLOOR_PX) / max(R_true, BAND_FLOOR_PX))|:
0 for a prediction equal to the truth, log10(2) for one twice as large in every band. The floor (a thousandth of a
pixel) keeps a still prediction finite and sets no_motion's value.

Spearman. The rank correlation of predicted and true amplitude maps (average ranks for ties): threshold-free, it
asks whether the prediction orders the pixels by how much they move, whatever its scale.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import GIDInputError
from ..models.render_losses import ssim
from ..spectral.transform import amplitude

MOVING_MIN_PX = 0.1
MOVING_RELATIVE = 0.25
MOVING_PERCENTILE = 99.0
# log10 profiles are floored here (pixels / sqrt(Hz)): a still prediction's profile sits at -4.
PROFILE_FLOOR = 1e-4
# Bands of the band-profile error, Hz: octaves from the model's lowest bin (0.2 Hz: 150 frames at 30 fps) up to
# its top frequency (3 Hz).
BAND_EDGES_HZ = (0.2, 0.4, 0.8, 1.6, 3.0)
BAND_FLOOR_PX = 1e-3
# PSNR is capped at 100 dB (MSE floored at 1e-10) so that identical frames give a finite number.
PSNR_MSE_FLOOR = 1e-10
# Percentiles of larger maps are taken on an even subsample of at most this many values.
_QUANTILE_SAMPLES = 1_000_000


def motion_amplitude(
    spectrum: torch.Tensor, frequencies_hz: torch.Tensor | None = None, max_hz: float | None = None
) -> torch.Tensor:
    """RMS displacement of each pixel over one period (module docstring).

    Args:
        spectrum: (K, 4, H, W) spectral volume, pixels.
        frequencies_hz: (K,) frequency of each bin in Hz; needed only with max_hz.
        max_hz: keep only bins with 0 < f_k <= max_hz (+1e-6 Hz), e.g. the band two volumes share.

    Returns:
        (H, W) float32 amplitude in pixels.
    """
    power = amplitude(spectrum)[1:].square()
    if max_hz is not None:
        if frequencies_hz is None:
            raise GIDInputError("motion_amplitude needs frequencies_hz to band-limit to max_hz")
        keep = (frequencies_hz[1:] <= max_hz + 1e-6).to(power.dtype).to(power.device)
        power = power * keep.view(-1, 1, 1)
    return (2.0 * power.sum(dim=0)).sqrt()


def quantile(values: torch.Tensor, q: float) -> float:
    """The q-quantile (q in [0, 1]) of any tensor's values, on an even subsample of at most 1e6 values."""
    flat = values.flatten().float()
    flat = flat[:: max(1, flat.numel() // _QUANTILE_SAMPLES)]
    return float(torch.quantile(flat, q))


def moving_threshold(true_amplitude: torch.Tensor) -> float:
    """The moving-mask threshold of a true amplitude map (H, W) in pixels (module docstring), in pixels."""
    return max(MOVING_MIN_PX, MOVING_RELATIVE * quantile(true_amplitude, MOVING_PERCENTILE / 100.0))


def moving_mask(true_amplitude: torch.Tensor) -> torch.Tensor:
    """(H, W) bool, True where the true amplitude (H, W) in pixels exceeds moving_threshold."""
    return true_amplitude > moving_threshold(true_amplitude)


def auroc(score: torch.Tensor, mask: torch.Tensor) -> float:
    """Area under the ROC curve of a per-pixel score against a boolean mask (Mann-Whitney U / (n_pos n_neg)).

    The probability that a random pixel of the mask scores higher than a random pixel outside it, ties counting
    one half (average ranks), so a constant score gives 0.5, a score that separates the mask perfectly 1.0, and any
    strictly increasing transform of the score the same value. Sorting makes it O(N log N), no thresholds.

    Args:
        score: any shape, float (e.g. (H, W) predicted amplitude in pixels).
        mask: bool of the same shape, with at least one True and one False.

    Returns:
        AUROC in [0, 1].
    """
    if score.shape != mask.shape:
        raise GIDInputError(f"score {tuple(score.shape)} and mask {tuple(mask.shape)} differ in shape")
    values, positive = score.detach().flatten().double().cpu(), mask.detach().flatten().bool().cpu()
    if not bool(torch.isfinite(values).all()):
        raise GIDInputError("auroc: the score contains NaN or infinite values")
    num_positive = int(positive.sum())
    num_negative = positive.numel() - num_positive
    if num_positive == 0 or num_negative == 0:
        raise GIDInputError(f"auroc needs both classes; the mask has {num_positive} of {positive.numel()} True")
    rank_sum = float(average_ranks(values)[positive].sum())
    u_statistic = rank_sum - num_positive * (num_positive + 1) / 2.0
    return u_statistic / (num_positive * num_negative)


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """1-based ranks of a 1-D tensor's values, ties given their average rank: (N,) float64. O(N log N)."""
    ordered, order = torch.sort(values)
    _, group, counts = torch.unique_consecutive(ordered, return_inverse=True, return_counts=True)
    # 1-based rank of each tie group's last member, and the group's average rank.
    group_rank = torch.cumsum(counts, 0).double() - (counts.double() - 1.0) / 2.0
    ranks = torch.empty(values.numel(), dtype=torch.float64, device=values.device)
    ranks[order] = group_rank[group]
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None) -> float:
    """Spearman's rank correlation of two maps over the masked pixels: the Pearson correlation of their average
    ranks (ties averaged), in [-1, 1]; invariant to strictly increasing transforms of either map.

    Args:
        a, b: float maps of one shape (e.g. (H, W) predicted and true amplitudes, pixels).
        mask: bool of that shape, the pixels to use (None: all).

    Returns:
        The correlation, or NaN when either map is constant over the mask (no ranking) or fewer than 2 pixels.
    """
    if a.shape != b.shape or (mask is not None and mask.shape != a.shape):
        raise GIDInputError(f"spearman needs maps of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    x, y = a.detach().flatten().double().cpu(), b.detach().flatten().double().cpu()
    if mask is not None:
        keep = mask.detach().flatten().bool().cpu()
        x, y = x[keep], y[keep]
    if not bool(torch.isfinite(x).all() and torch.isfinite(y).all()):
        raise GIDInputError("spearman: the maps contain NaN or infinite values")
    if x.numel() < 2:
        return float("nan")
    rank_x, rank_y = average_ranks(x), average_ranks(y)
    rank_x, rank_y = rank_x - rank_x.mean(), rank_y - rank_y.mean()
    norm = float(rank_x.square().sum().sqrt() * rank_y.square().sum().sqrt())
    return float((rank_x * rank_y).sum()) / norm if norm > 0 else float("nan")


def amplitude_density_profile(
    spectrum: torch.Tensor, mask: torch.Tensor, num_frames: int, fps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frequency log10 amplitude spectral density over the masked pixels (module docstring).

    Args:
        spectrum: (K, 4, H, W) pixels, K >= 2.
        mask: (H, W) bool, at least one True.
        num_frames, fps: the volume's time base (bin spacing fps / num_frames Hz).

    Returns:
        frequencies: (K - 1,) float64 Hz of bins 1..K-1 (DC is pinned by looping, not motion).
        profile: (K - 1,) float64 log10 of pixels / sqrt(Hz), floored at log10(PROFILE_FLOOR).
    """
    if spectrum.shape[0] < 2:
        raise GIDInputError("a profile needs at least two frequencies (DC and one oscillation)")
    if mask.shape != spectrum.shape[-2:] or not bool(mask.any()):
        raise GIDInputError(f"profile mask must be a non-empty (H, W) = {tuple(spectrum.shape[-2:])} bool map")
    spacing = fps / num_frames
    power = amplitude(spectrum)[1:][:, mask.to(spectrum.device)].double().square().mean(dim=1)  # (K-1,) px^2
    density = (2.0 * power / spacing).sqrt().clamp_min(PROFILE_FLOOR)
    frequencies = np.arange(1, spectrum.shape[0], dtype=np.float64) * spacing
    return frequencies, density.log10().cpu().numpy()


def profile_error(
    frequencies_a: np.ndarray, profile_a: np.ndarray, frequencies_b: np.ndarray, profile_b: np.ndarray
) -> float:
    """Mean absolute difference of two log10 profiles (log10 units: 0.3 is a factor of 2), compared in Hz.

    Both profiles are interpolated linearly in Hz onto the bins of the coarser one (the larger spacing) that lie in
    the frequency range both cover; equal grids compare bin by bin.

    Args:
        frequencies_a, frequencies_b: (Ka,), (Kb,) increasing frequencies in Hz.
        profile_a, profile_b: (Ka,), (Kb,) log10 values at those frequencies.
    """
    low, high = max(frequencies_a[0], frequencies_b[0]), min(frequencies_a[-1], frequencies_b[-1])
    if high < low - 1e-9:
        raise GIDInputError(
            f"the profiles share no frequencies: {frequencies_a[0]:.3g}-{frequencies_a[-1]:.3g} Hz and "
            f"{frequencies_b[0]:.3g}-{frequencies_b[-1]:.3g} Hz"
        )
    # Bin spacing of each grid, counting from 0 Hz so that a one-bin profile has one too.
    spacing_a, spacing_b = (float(np.diff(f, prepend=0.0).mean()) for f in (frequencies_a, frequencies_b))
    coarse = frequencies_a if spacing_a >= spacing_b else frequencies_b
    grid = coarse[(coarse >= low - 1e-9) & (coarse <= high + 1e-9)]
    a = np.interp(grid, frequencies_a, profile_a)
    b = np.interp(grid, frequencies_b, profile_b)
    return float(np.abs(a - b).mean())


def band_indices(frequencies_hz: np.ndarray) -> np.ndarray:
    """(K,) int64 band of each bin frequency (Hz): b where BAND_EDGES_HZ[b] <= f < BAND_EDGES_HZ[b + 1] (the last
    band includes its top edge), -1 outside all bands; edges compared with a 1e-6 Hz tolerance."""
    frequencies = np.asarray(frequencies_hz, dtype=np.float64)
    edges = np.asarray(BAND_EDGES_HZ)
    index = np.searchsorted(edges, frequencies + 1e-6, side="right") - 1
    index = np.minimum(index, len(edges) - 2)
    index[frequencies > edges[-1] + 1e-6] = -1
    return index


def band_rms(spectrum: torch.Tensor, mask: torch.Tensor, frequencies_hz: torch.Tensor | np.ndarray) -> np.ndarray:
    """RMS motion in each band of BAND_EDGES_HZ over the masked pixels (module docstring), pixels.

    Args:
        spectrum: (K, 4, H, W) pixels. mask: (H, W) bool, non-empty. frequencies_hz: (K,) Hz of the bins.

    Returns:
        (len(BAND_EDGES_HZ) - 1,) float64 R_b = sqrt(mean_p 2 sum_{k in b} |S_k(p)|^2); NaN for a band that holds
        none of the volume's bins.
    """
    if mask.shape != spectrum.shape[-2:] or not bool(mask.any()):
        raise GIDInputError(f"band mask must be a non-empty (H, W) = {tuple(spectrum.shape[-2:])} bool map")
    power = amplitude(spectrum)[:, mask.to(spectrum.device)].double().square().mean(dim=1).cpu().numpy()  # (K,)
    index = band_indices(np.asarray(frequencies_hz, dtype=np.float64))
    num_bands = len(BAND_EDGES_HZ) - 1
    inside = index >= 0
    totals = np.bincount(index[inside], weights=2.0 * power[inside], minlength=num_bands)
    counts = np.bincount(index[inside], minlength=num_bands)
    return np.where(counts > 0, np.sqrt(totals), np.nan)


def band_error(predicted: np.ndarray, true: np.ndarray) -> float:
    """Mean |log10| ratio of predicted to true band RMS (band_rms), both floored at BAND_FLOOR_PX, over the bands
    both volumes resolve (log10 units: 0.3 is a factor of 2); NaN when they share no band."""
    both = np.isfinite(predicted) & np.isfinite(true)
    if not both.any():
        return float("nan")
    ratio = np.maximum(predicted[both], BAND_FLOOR_PX) / np.maximum(true[both], BAND_FLOOR_PX)
    return float(np.abs(np.log10(ratio)).mean())


def amplitude_calibration(predicted: torch.Tensor, true: torch.Tensor, mask: torch.Tensor) -> float:
    """median(predicted amplitude) / median(true amplitude) over the masked pixels; 1.0 is ideal, 0 is still.

    Args:
        predicted, true: (H, W) amplitudes in pixels (motion_amplitude).
        mask: (H, W) bool, the true moving mask (non-empty, with a positive true median).
    """
    if not bool(mask.any()):
        raise GIDInputError("amplitude calibration needs a non-empty moving mask")
    true_median = float(true[mask].median())
    if not true_median > 0:
        raise GIDInputError("amplitude calibration needs a positive true amplitude in the moving mask")
    return float(predicted[mask].median()) / true_median


def psnr(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB, of (B, C, H, W) images in [0, 1] (peak 1).

    Returns:
        (B,) float32 10 * log10(1 / MSE), MSE floored at PSNR_MSE_FLOOR (at most 100 dB).
    """
    if prediction.shape != target.shape or prediction.dim() != 4:
        raise GIDInputError(f"psnr needs two (B, C, H, W) images of one shape, got {tuple(prediction.shape)} and "
                            f"{tuple(target.shape)}")  # fmt: skip
    mse = (prediction.float() - target.float()).square().mean(dim=(1, 2, 3))
    return -10.0 * torch.log10(mse.clamp_min(PSNR_MSE_FLOOR))


def ssim_per_image(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image of (B, C, H, W) images in [0, 1], sides >= 11 px: (B,) float32.

    models.render_losses.ssim (11-tap Gaussian window, sigma 1.5, 'valid') mapped over the batch.
    """
    if prediction.shape != target.shape or prediction.dim() != 4:
        raise GIDInputError(f"ssim needs two (B, C, H, W) images of one shape, got {tuple(prediction.shape)} and "
                            f"{tuple(target.shape)}")  # fmt: skip
    return torch.func.vmap(lambda p, t: ssim(p.unsqueeze(0), t.unsqueeze(0)))(prediction, target)


def mean_std(values: list[float] | np.ndarray) -> dict[str, float | int | None]:
    """{"mean", "std" (sample std, None for fewer than 2 values), "n"} of the finite values (NaN are dropped)."""
    array = np.asarray(values, dtype=np.float64)
    array = array[np.isfinite(array)]
    if array.size == 0:
        return {"mean": None, "std": None, "n": 0}
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return {"mean": float(array.mean()), "std": std, "n": int(array.size)}
