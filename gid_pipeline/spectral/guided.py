"""Photo-guided resampling of spectral volumes: the guided filter (He, Sun and Tang, ECCV 2010 / TPAMI 2013) with
the photo's grey levels as guide, so that predicted motion stops at the photo's edges.

The spectral autoencoder decodes at 8x8-cell resolution (pooling_autoencoder: cell averages, bilinear up), so a
flame's or a stem's motion bleeds several pixels onto the still background around it. Within each window of the
guided filter the output is an affine function of the guide, q = a I + b, fitted by least squares to the decoded
values p with a ridge eps on a: where motion and brightness vary together (a bright flame on black) the motion
takes the photo's edge; where they do not (foliage whose texture is finer than the motion) a ~ 0 and q is p
smoothed. The filter is linear in p for a fixed guide, so it acts on the complex coefficients' real and imaginary
parts alike (phases stay consistent), maps a constant field to itself and zero to zero.

Resampling follows the fast guided filter (He and Sun, arXiv 1505.00996): a and b are fitted on a coarse grid and
resized to the output grid, where the full-resolution guide gives the edges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import GIDInputError
from .transform import resize_spectrum

LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights of R, G, B
DEFAULT_GUIDED_FILTER_EPS = 1e-3
"""The filter's default ridge: a grey-level std of about 0.03 (8 levels of 255) counts as an edge."""
DEFAULT_GUIDED_FILTER_SUBSAMPLING = 4


def luma(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, 1, H, W) grey levels in [0, 1] (Rec. 601)."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise GIDInputError(f"expected (N, 3, H, W) RGB images, got {tuple(images.shape)}")
    weights = torch.tensor(LUMA, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def _window_sums(values: torch.Tensor, radius: int, dim: int) -> torch.Tensor:
    """Sums over [i - radius, i + radius] along dim, clipped to the borders, by differences of a cumulative sum."""
    size = values.shape[dim]
    cumulative = torch.cumsum(values.double(), dim=dim)
    zero = torch.zeros_like(cumulative.narrow(dim, 0, 1))
    cumulative = torch.cat([zero, cumulative], dim=dim)  # cumulative[i] = sum of values[:i]
    index = torch.arange(size, device=values.device)
    high = (index + radius + 1).clamp(max=size)
    low = (index - radius).clamp(min=0)
    return (cumulative.index_select(dim, high) - cumulative.index_select(dim, low)).to(values.dtype)


def box_mean(values: torch.Tensor, radius: int) -> torch.Tensor:
    """(..., H, W) -> the mean over each (2 radius + 1)^2 window, windows clipped at the borders (no padding)."""
    if radius < 0:
        raise GIDInputError(f"box radius must be >= 0, got {radius}")
    height, width = values.shape[-2:]
    ones = torch.ones(height, width, dtype=values.dtype, device=values.device)
    counts = _window_sums(_window_sums(ones, radius, -1), radius, -2)
    return _window_sums(_window_sums(values, radius, -1), radius, -2) / counts


def guided_filter_coefficients(
    values: torch.Tensor, guide: torch.Tensor, radius: int, eps: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The guided filter's averaged affine coefficients: filtered = slope * guide + offset.

    Args:
        values: (N, C, H, W), the field to filter (any units).
        guide: (N, 1, H, W), grey levels in [0, 1].
        radius: window radius in pixels of this grid (windows of 2 radius + 1 pixels a side).
        eps: ridge on the slope in squared grey levels; larger keeps fewer of the guide's edges.

    Returns:
        (slope, offset), (N, C, H, W) each: slope in units of values per grey level, offset in units of values.
    """
    if values.ndim != 4 or guide.ndim != 4 or guide.shape[1] != 1 or guide.shape[0] != values.shape[0]:
        raise GIDInputError(
            f"guided filter needs values (N, C, H, W) and a guide (N, 1, H, W), got {tuple(values.shape)} and "
            f"{tuple(guide.shape)}"
        )
    if guide.shape[-2:] != values.shape[-2:]:
        raise GIDInputError(f"guide {tuple(guide.shape[-2:])} and values {tuple(values.shape[-2:])} differ in size")
    if not eps > 0:
        raise GIDInputError(f"guided filter eps must be > 0, got {eps}")
    guide = guide.to(values.dtype)
    mean_guide = box_mean(guide, radius)
    mean_values = box_mean(values, radius)
    covariance = box_mean(guide * values, radius) - mean_guide * mean_values
    variance = (box_mean(guide * guide, radius) - mean_guide * mean_guide).clamp(min=0.0)
    slope = covariance / (variance + eps)
    offset = mean_values - slope * mean_guide
    return box_mean(slope, radius), box_mean(offset, radius)


def guided_filter(values: torch.Tensor, guide: torch.Tensor, radius: int, eps: float) -> torch.Tensor:
    """(N, C, H, W) values filtered with the (N, 1, H, W) guide on the same grid (guided_filter_coefficients)."""
    slope, offset = guided_filter_coefficients(values, guide, radius, eps)
    return slope * guide.to(values.dtype) + offset


def guided_resize_spectrum(
    spectrum: torch.Tensor,
    guide: torch.Tensor,
    radius: int,
    eps: float = DEFAULT_GUIDED_FILTER_EPS,
    subsampling: int = DEFAULT_GUIDED_FILTER_SUBSAMPLING,
) -> torch.Tensor:
    """Resample spectral volumes to the guide's grid with the fast guided filter (module docstring).

    The slope and offset are fitted on the spectrum's grid subsampled by ``subsampling`` (both the spectrum and the
    guide area-averaged there; radius / subsampling cells, at least 1), then resized bilinearly to the guide's
    grid, where the full-resolution guide gives the edges. The autoencoder decodes bilinearly from 8x8 cells, so
    fitting on 4x4 cells loses nothing the decoded field has, at 1/16 of the cost.

    Args:
        spectrum: (B, K, 4, h, w), pixels of the h x w grid.
        guide: (B, 1, H, W) grey levels in [0, 1] of the photo on the output grid.
        radius: window radius in pixels of the h x w grid.
        eps: ridge on the slope, squared grey levels.
        subsampling: the fitting grid's cell, pixels of the h x w grid (1: fit on that grid).

    Returns:
        (B, K, 4, H, W), pixels of the H x W grid (displacements scaled as by resize_spectrum).
    """
    if spectrum.ndim != 5 or spectrum.shape[2] != 4:
        raise GIDInputError(f"expected spectral volumes (B, K, 4, h, w), got {tuple(spectrum.shape)}")
    if guide.ndim != 4 or guide.shape[1] != 1 or guide.shape[0] != spectrum.shape[0]:
        raise GIDInputError(f"expected a guide (B, 1, H, W) per volume, got {tuple(guide.shape)}")
    if radius < 1 or subsampling < 1:
        raise GIDInputError(f"need radius >= 1 and subsampling >= 1, got {radius} and {subsampling}")
    frequencies = spectrum.shape[1]
    height, width = spectrum.shape[-2:]
    coarse = (max(1, round(height / subsampling)), max(1, round(width / subsampling)))
    values = resize_spectrum(spectrum, coarse).flatten(1, 2)
    coarse_guide = F.interpolate(guide.to(values.dtype), size=coarse, mode="area")
    coarse_radius = max(1, round(radius * coarse[1] / width))
    slope, offset = guided_filter_coefficients(values, coarse_guide, coarse_radius, eps)
    size = tuple(guide.shape[-2:])
    slope = resize_spectrum(slope.unflatten(1, (frequencies, 4)), size)
    offset = resize_spectrum(offset.unflatten(1, (frequencies, 4)), size)
    return slope * guide.to(slope.dtype)[:, None] + offset
