"""Reconstruction losses for the learned renderer: L1, SSIM and image-gradient terms, plus a perceptual hook.

The paper adds a VGG perceptual loss; no pretrained VGG weights can be downloaded here, so ``render_loss`` takes
any perceptual term as an optional callable and has none by default.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..errors import GIDInputError

# SSIM constants for a data range of 1 (Wang et al., 2004): C1 = (0.01 L)^2, C2 = (0.03 L)^2.
SSIM_C1, SSIM_C2 = 0.01**2, 0.03**2


def gaussian_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(size,) normalised 1-D Gaussian taps centred on the middle tap."""
    offsets = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return taps / taps.sum()


def _gaussian_blur(images: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' Gaussian filtering of (B, C, H, W) -> (B, C, H - size + 1, W - size + 1), per channel."""
    channels, size = images.shape[1], taps.numel()
    rows = F.conv2d(images, taps.view(1, 1, 1, size).expand(channels, 1, 1, size), groups=channels)
    return F.conv2d(rows, taps.view(1, 1, size, 1).expand(channels, 1, size, 1), groups=channels)


def ssim(prediction: torch.Tensor, target: torch.Tensor, window_size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean structural similarity of two (B, C, H, W) images with values in [0, 1] (computed in float32).

    SSIM = (2 mu_x mu_y + C1)(2 s_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2)), the local means,
    variances and covariance taken with a Gaussian window (size ``window_size``, std ``sigma`` pixels) at every
    position where the window fits inside the image ('valid'), per channel; the result is the mean over batch,
    channels and positions, a scalar equal to 1 for identical images.
    """
    if prediction.shape != target.shape or prediction.dim() != 4 or min(prediction.shape[-2:]) < window_size:
        raise GIDInputError(
            f"ssim needs two (B, C, H, W) images of one shape, at least {window_size} pixels on each side, got "
            f"{tuple(prediction.shape)} and {tuple(target.shape)}"
        )
    x, y = prediction.float(), target.float()
    taps = gaussian_window(window_size, sigma, x.dtype, x.device)
    # One blur call for all five local moments.
    moments = _gaussian_blur(torch.cat([x, y, x * x, y * y, x * y], dim=1), taps)
    mu_x, mu_y, xx, yy, xy = moments.chunk(5, dim=1)
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov + SSIM_C2)
    denominator = (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
    return (numerator / denominator).mean()


def gradient_l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean |d_x p - d_x t| + mean |d_y p - d_y t| of (B, C, H, W) images, d the forward pixel differences."""
    error = prediction - target
    return (error[..., :, 1:] - error[..., :, :-1]).abs().mean() + (error[..., 1:, :] - error[..., :-1, :]).abs().mean()


def render_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    ssim_weight: float = 1.0,
    gradient_weight: float = 1.0,
    perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    perceptual_weight: float = 1.0,
) -> torch.Tensor:
    """Renderer training loss of (B, 3, H, W) frames in [0, 1]: a scalar, 0 when prediction equals target.

    loss = mean |p - t| + ssim_weight * (1 - ssim(p, t)) + gradient_weight * gradient_l1(p, t)
           [+ perceptual_weight * perceptual(p, t) when a perceptual callable, e.g. a VGG feature distance, is given]
    """
    if prediction.shape != target.shape:
        raise GIDInputError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")
    loss = (prediction - target).abs().mean()
    loss = loss + ssim_weight * (1.0 - ssim(prediction, target)) + gradient_weight * gradient_l1(prediction, target)
    if perceptual is not None:
        loss = loss + perceptual_weight * perceptual(prediction, target)
    return loss
