"""Training losses of the learned models, as pure functions of tensors.

All terms are means over elements, so their weights do not depend on the resolution, K or the batch size. Inputs
are normalised spectra (SpectralNormalizer.normalize) and their latents, never pixels.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..errors import GIDInputError


class VAELoss(NamedTuple):
    """The spectral VAE loss and its unweighted terms (0-d tensors), for logging."""

    total: torch.Tensor
    l1: torch.Tensor
    gradient: torch.Tensor
    kl: torch.Tensor


def multiscale_gradient_loss(prediction: torch.Tensor, target: torch.Tensor, num_scales: int = 4) -> torch.Tensor:
    """Multi-scale gradient matching loss (as in MegaDepth, Li and Snavely 2018).

    With the residual R = prediction - target and R_s its 2^s x 2^s average pooling (stride 2^s),

        L = sum_{s=0}^{S-1} ( mean |R_s[..., i, j+1] - R_s[..., i, j]| + mean |R_s[..., i+1, j] - R_s[..., i, j]| ),

    the L1 norm of the difference between predicted and target finite-difference gradients, in x and in y, at S
    scales; each mean runs over all elements of that difference map. Coarser scales compare the gradients of local
    averages, so smooth large-scale errors are penalised as well as edges.

    Args:
        prediction, target: (..., H, W), same shape, dimensionless (normalised spectra); H, W >= 2^S.
        num_scales: S >= 1.

    Returns:
        0-d tensor.
    """
    if prediction.shape != target.shape:
        raise GIDInputError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    if num_scales < 1 or min(prediction.shape[-2:]) < 2**num_scales:
        raise GIDInputError(
            f"{num_scales} gradient scales need num_scales >= 1 and H, W >= {2**num_scales}, got "
            f"{tuple(prediction.shape[-2:])}"
        )
    residual = (prediction - target).reshape(-1, *prediction.shape[-2:])
    loss = residual.new_zeros(())
    for scale in range(num_scales):
        pooled = F.avg_pool2d(residual, 2**scale) if scale else residual
        loss = loss + pooled.diff(dim=-1).abs().mean() + pooled.diff(dim=-2).abs().mean()
    return loss


def kl_divergence(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean over elements of KL(N(mean, exp(logvar)) || N(0, 1)) = 0.5 (mean^2 + exp(logvar) - 1 - logvar).

    Args:
        mean, logvar: the posterior, any shape (diffusers' DiagonalGaussianDistribution .mean and .logvar).

    Returns:
        0-d tensor, nats per latent element.
    """
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).mean()


def spectral_vae_loss(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    gradient_weight: float = 0.2,
    kl_weight: float = 1e-6,
    num_scales: int = 4,
) -> VAELoss:
    """The paper's VAE objective: L1 + 0.2 * multi-scale gradient + 1e-6 * KL, on normalised spectra.

    Args:
        reconstruction, target: (N, 4, H, W) decoded and input slices (any leading dims), normalised.
        mean, logvar: the encoder's posterior over the latents of those slices.
        gradient_weight, kl_weight: weights of the gradient and KL terms.
        num_scales: scales of the gradient term, see multiscale_gradient_loss.

    Returns:
        VAELoss(total, l1, gradient, kl): l1 is the mean absolute error, kl per latent element.
    """
    if reconstruction.shape != target.shape:
        raise GIDInputError(
            f"reconstruction {tuple(reconstruction.shape)} and target {tuple(target.shape)} differ in shape"
        )
    l1 = (reconstruction - target).abs().mean()
    gradient = multiscale_gradient_loss(reconstruction, target, num_scales)
    kl = kl_divergence(mean, logvar)
    return VAELoss(l1 + gradient_weight * gradient + kl_weight * kl, l1, gradient, kl)


def diffusion_target(
    scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """What the denoiser learns to predict, from the scheduler's config.prediction_type.

    Args:
        scheduler: a diffusers noise scheduler (DDPMScheduler, ...); its config carries prediction_type.
        latents: clean latents x_0, (B, K, 4, h, w).
        noise: the Gaussian noise added to them, same shape.
        timesteps: (B,) integer diffusion steps.

    Returns:
        noise ("epsilon"), the velocity alpha_t noise - sigma_t x_0 ("v_prediction") or x_0 ("sample").
    """
    prediction_type = scheduler.config.prediction_type
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    if prediction_type == "sample":
        return latents
    raise GIDInputError(f"unknown scheduler prediction_type {prediction_type!r}")


def denoising_loss(
    prediction: torch.Tensor, scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """Mean squared error between the denoiser's prediction and diffusion_target (same arguments); a 0-d tensor."""
    target = diffusion_target(scheduler, latents, noise, timesteps)
    if prediction.shape != target.shape:
        raise GIDInputError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
    return F.mse_loss(prediction, target)
