"""Reconstruction losses for the learned renderer: L1, SSIM, image-gradient and log-MSE terms, plus an optional
perceptual one.

The log-MSE term is the mean over frames of log10(MSE), i.e. -PSNR / 10: the renderer evaluation averages PSNR over
frames, and a pixel-mean loss such as L1 lets small errors on nearly still, easy frames (40-45 dB) cost almost
nothing, although they cost as many dB there as large errors on hard frames.

The paper adds a VGG perceptual loss. Pretrained VGG weights cannot be downloaded at run time, so the term is
optional: ``VGGPerceptual.from_file`` builds it from a local safetensors file of torchvision's VGG-16 ``features``
weights (keys ``features.N.weight`` / ``features.N.bias``, or ``N.weight`` / ``N.bias``), and without one the loss
has no perceptual term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

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


# MSE floor of the log-MSE term: 100 dB, as the evaluation's PSNR cap.
LOG_MSE_FLOOR = 1e-10


def log_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of log10(per-image MSE) of (B, C, H, W) images in [0, 1] (= -mean PSNR / 10 in dB);
    the MSE is floored at LOG_MSE_FLOOR."""
    mse = (prediction - target).square().flatten(1).mean(1)
    return torch.log10(mse.clamp_min(LOG_MSE_FLOOR)).mean()


@dataclass(frozen=True)
class RenderLossTerms:
    """The renderer loss and its unweighted terms, each a 0-d tensor (perceptual is None without that term)."""

    total: torch.Tensor
    l1: torch.Tensor
    ssim: torch.Tensor
    gradient: torch.Tensor
    perceptual: torch.Tensor | None
    log_mse: torch.Tensor


def render_loss_terms(
    prediction: torch.Tensor,
    target: torch.Tensor,
    ssim_weight: float = 1.0,
    gradient_weight: float = 1.0,
    perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    perceptual_weight: float = 1.0,
    log_mse_weight: float = 0.0,
) -> RenderLossTerms:
    """render_loss with its terms (for logging); the SSIM term is reported as SSIM itself, 1 = identical."""
    if prediction.shape != target.shape:
        raise GIDInputError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")
    l1 = (prediction - target).abs().mean()
    similarity, gradient = ssim(prediction, target), gradient_l1(prediction, target)
    logarithmic = log_mse(prediction, target)
    total = l1 + ssim_weight * (1.0 - similarity) + gradient_weight * gradient
    if log_mse_weight:
        total = total + log_mse_weight * logarithmic
    distance = None
    if perceptual is not None:
        distance = perceptual(prediction, target)
        total = total + perceptual_weight * distance
    return RenderLossTerms(total, l1, similarity, gradient, distance, logarithmic)


def render_loss(
    prediction: torch.Tensor,
    target: torch.Tensor,
    ssim_weight: float = 1.0,
    gradient_weight: float = 1.0,
    perceptual: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    perceptual_weight: float = 1.0,
    log_mse_weight: float = 0.0,
) -> torch.Tensor:
    """Renderer training loss of (B, 3, H, W) frames in [0, 1]: a scalar, minimal when prediction equals target.

    loss = mean |p - t| + ssim_weight * (1 - ssim(p, t)) + gradient_weight * gradient_l1(p, t)
           + log_mse_weight * log_mse(p, t)
           [+ perceptual_weight * perceptual(p, t) when a perceptual callable, e.g. VGGPerceptual, is given]

    Without the log-MSE term (weight 0, the default) the minimum is 0; log_mse is negative (down to -10).
    """
    return render_loss_terms(
        prediction, target, ssim_weight, gradient_weight, perceptual, perceptual_weight, log_mse_weight
    ).total


# VGG-16 ``features`` up to relu3_3: conv widths, "M" = 2x2 max pooling. Indices match torchvision's Sequential.
_VGG16_LAYERS: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256)
_VGG_TAPS = (3, 8, 15)  # relu1_2, relu2_2, relu3_3
_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class VGGPerceptual(nn.Module):
    """Mean L1 distance of VGG-16 features (relu1_2, relu2_2, relu3_3) of two (B, 3, H, W) images in [0, 1].

    Frozen; build it with ``from_file`` from locally stored weights (none can be downloaded here).
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for spec in _VGG16_LAYERS:
            if spec == "M":
                layers.append(nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, int(spec), 3, padding=1), nn.ReLU()]
                channels = int(spec)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | Path) -> VGGPerceptual:
        """Load torchvision-style VGG-16 ``features`` weights from a safetensors file (extra layers are ignored)."""
        path = Path(path)
        if not path.is_file():
            raise GIDInputError(f"VGG weights {path} do not exist (the perceptual term needs a local file)")
        state = {key.removeprefix("features."): value for key, value in load_file(path).items()}
        model = cls()
        wanted = model.features.state_dict()
        missing = sorted(set(wanted) - set(state))
        if missing:
            raise GIDInputError(f"{path} is not VGG-16 features weights: it lacks {', '.join(missing[:4])}")
        for key, value in wanted.items():
            if state[key].shape != value.shape:
                shapes = f"{tuple(state[key].shape)}, VGG-16 has {tuple(value.shape)}"
                raise GIDInputError(f"{path}: {key} has shape {shapes}")
        model.features.load_state_dict({key: state[key] for key in wanted})
        return model.eval()

    def forward(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # One pass over both images; features in float32 whatever autocast says (the distances are small).
        hidden = (torch.cat([prediction, target]).float() - self.mean) / self.std
        distance = hidden.new_zeros(())
        for index, layer in enumerate(self.features):
            hidden = layer(hidden)
            if index in _VGG_TAPS:
                ours, theirs = hidden.chunk(2)
                distance = distance + (ours - theirs).abs().mean()
        return distance / len(_VGG_TAPS)
