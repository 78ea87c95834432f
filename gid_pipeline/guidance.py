"""Guidance for sampling spectral volumes: classifier-free guidance and the paper's motion self-guidance.

Pure functions of tensors; the pipeline (pipeline_gid.py) calls them inside its denoising loop.

Diffusion conventions (variance preserving, as diffusers' DDPM-family schedulers): at timestep t the noisy latent
is z_t = alpha_t x_0 + sigma_t eps with alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t), abar_t the scheduler's
``alphas_cumprod[t]``. A denoiser predicts eps ("epsilon"), x_0 ("sample") or v = alpha_t eps - sigma_t x_0
("v_prediction"); all three carry the same information given z_t, and ``to_epsilon`` / ``from_epsilon`` convert.

Motion self-guidance (paper, section 3.2, after Epstein et al.'s self-guidance): the paper adds
u * sigma_t * grad_z L_g to the guided noise estimate, with L_g = |F_T - F_1|_1 + |grad F_T - grad F_1|_1 over its
1-based frames 1..T, the first and the last frame of the loop. In our 0-based convention (spectral.spectrum_to_motion)
the frames are 0..T-1, frame T is frame 0 again, and F_0 = 0 is pinned, so the paper's pair (F_1, F_T) is our
(F_0, F_{T-1}) and

    L_g = sum_p |F_{T-1}(p) - F_0(p)|_1 + sum_p |grad F_{T-1}(p) - grad F_0(p)|_1
        = sum_p |F_{T-1}(p)|_1 + sum_p |grad F_{T-1}(p)|_1

is the size of the step across the loop's seam, from the last frame back to frame 0. The periodic inverse DFT makes
that step one ordinary step of a smooth periodic trajectory, never a jump; but a spectrum sampled from a model
trained on real, non-periodic trajectories can put a fast swing (Gibbs ringing of the clip's end-to-start jump)
just there, and L_g penalises it. Minimising it also slows the motion at frame 0: the guidance trades a little
motion around the seam for a calmer loop point.

grad_z L_g is taken through the decoder and the inverse DFT at the x_0 estimate, with the denoiser's Jacobian
replaced by alpha_t I (``latent_gradient``, no backpropagation through the U-Net); the guided step then moves the
x_0 estimate by -u sigma_t^2 grad_x0 L_g, whatever the prediction type.
"""

from __future__ import annotations

import torch

from .errors import GIDInputError
from .spectral.transform import spectrum_to_motion

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
# The paper's guidance weight w = 1.75 in (1 + w) eps_c - w eps_u, i.e. diffusers' scale s = 1 + w.
PAPER_GUIDANCE_SCALE = 2.75


def classifier_free_guidance(conditional: torch.Tensor, unconditional: torch.Tensor, scale: float) -> torch.Tensor:
    """uncond + scale * (cond - uncond), diffusers' convention: scale 1 is the conditional prediction alone.

    The paper writes (1 + w) eps(z; c) - w eps(z; null), which is this with scale = 1 + w (w = 1.75: 2.75).
    The combination is linear, so it applies to eps, v and x_0 predictions alike.

    Args:
        conditional, unconditional: predictions of the same shape, e.g. (B, K, C, h, w).
        scale: guidance scale (dimensionless).

    Returns:
        The guided prediction, same shape.
    """
    return unconditional + scale * (conditional - unconditional)


def alpha_sigma(alphas_cumprod: torch.Tensor, timestep: torch.Tensor | int | float) -> tuple[float, float]:
    """(alpha_t, sigma_t) = (sqrt(abar_t), sqrt(1 - abar_t)) of a discrete timestep (rounded to the nearest index).

    Args:
        alphas_cumprod: (N,) the scheduler's cumulative products of alphas.
        timestep: a timestep of that schedule, 0 <= t < N.

    Returns:
        Two Python floats (alpha_t^2 + sigma_t^2 = 1).
    """
    index = round(float(timestep))
    if not 0 <= index < alphas_cumprod.shape[0]:
        raise GIDInputError(f"timestep {float(timestep)} is outside the schedule's 0..{alphas_cumprod.shape[0] - 1}")
    abar = float(alphas_cumprod[index])
    return abar**0.5, (1.0 - abar) ** 0.5


def to_epsilon(
    prediction: torch.Tensor, sample: torch.Tensor, alpha: float, sigma: float, prediction_type: str
) -> torch.Tensor:
    """The noise estimate equivalent to a model prediction at z_t = sample.

    epsilon: itself; v_prediction: eps = sigma z_t + alpha v; sample: eps = (z_t - alpha x_0) / sigma.

    Args:
        prediction, sample: same shape; sample is the (variance-preserving) model input z_t.
        alpha, sigma: alpha_t and sigma_t of the timestep (alpha_sigma).
        prediction_type: what the model predicts (the scheduler config's prediction_type).
    """
    if prediction_type == "epsilon":
        return prediction
    if prediction_type == "v_prediction":
        return sigma * sample + alpha * prediction
    if prediction_type == "sample":
        return (sample - alpha * prediction) / sigma
    raise GIDInputError(f"unknown prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")


def from_epsilon(
    epsilon: torch.Tensor, sample: torch.Tensor, alpha: float, sigma: float, prediction_type: str
) -> torch.Tensor:
    """Inverse of to_epsilon: the prediction of ``prediction_type`` whose noise estimate at z_t = sample is epsilon.

    epsilon: itself; v_prediction: v = (eps - sigma z_t) / alpha; sample: x_0 = (z_t - sigma eps) / alpha.
    """
    if prediction_type == "epsilon":
        return epsilon
    if prediction_type == "v_prediction":
        return (epsilon - sigma * sample) / alpha
    if prediction_type == "sample":
        return (sample - sigma * epsilon) / alpha
    raise GIDInputError(f"unknown prediction_type {prediction_type!r}; expected one of {PREDICTION_TYPES}")


def predicted_sample(epsilon: torch.Tensor, sample: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
    """x_0 estimate (z_t - sigma_t eps) / alpha_t, same shape as sample."""
    return (sample - sigma * epsilon) / alpha


def seam_step(spectrum: torch.Tensor, num_frames: int) -> torch.Tensor:
    """F_{T-1} - F_0 of a loop: the displacement step across the seam, differentiable in the spectrum.

    With F_0 pinned to zero (spectral.spectrum_to_motion) this is F_{T-1} itself; the motion then goes from
    F_{T-1} to F_T = F_0 = 0 in one frame.

    Args:
        spectrum: (..., K, 4, H, W) spectral volume in pixels (CHANNELS order).
        num_frames: T, frames in one period of the loop, T >= 2.

    Returns:
        (..., 2, H, W) displacement in pixels, x first, in the spectrum's floating dtype.
    """
    if num_frames < 2:
        raise GIDInputError(f"a loop needs num_frames >= 2 to have a seam, got {num_frames}")
    last = torch.tensor([num_frames - 1], dtype=torch.float64)
    return spectrum_to_motion(spectrum, num_frames, frame_indices=last).squeeze(-4)


def self_guidance_loss(spectrum: torch.Tensor, num_frames: int) -> torch.Tensor:
    """The paper's motion self-guidance loss L_g per sample, in our convention (module docstring).

    L_g = sum_p |D(p)|_1 + sum_p (|d/dx D(p)|_1 + |d/dy D(p)|_1), D = F_{T-1} - F_0 the seam step; |.|_1 sums
    the x and y components, d/dx and d/dy are forward differences between neighbouring pixels. Sums over pixels
    (the L1 norms the paper writes) rather than means: each latent element then gets a gradient of the same size
    at any sampling resolution, so one guidance scale u means the same everywhere.

    Args:
        spectrum: (B, K, 4, H, W) spectral volumes in pixels (H, W >= 2).
        num_frames: T, frames in one period of the loop.

    Returns:
        (B,) losses: pixels (first term) plus pixels per pixel (second term), summed over the H x W pixels.
    """
    if spectrum.ndim != 5 or spectrum.shape[2] != 4:
        raise GIDInputError(f"spectrum must have shape (B, K, 4, H, W), got {tuple(spectrum.shape)}")
    step = seam_step(spectrum, num_frames)  # (B, 2, H, W)
    displacement = step.abs().sum(dim=(-3, -2, -1))
    grad_x = step.diff(dim=-1).abs().sum(dim=(-3, -2, -1))
    grad_y = step.diff(dim=-2).abs().sum(dim=(-3, -2, -1))
    return displacement + grad_x + grad_y


def latent_gradient(sample_gradient: torch.Tensor, alpha: float) -> torch.Tensor:
    """grad_z L from grad_x0 L at the x_0 estimate: (d x0_hat / d z_t)^T grad_x0 L with d x0_hat / d z_t = alpha_t I.

    alpha_t I is the Jacobian of the posterior-mean denoiser for unit-variance Gaussian latents,
    x0_hat = alpha_t z_t / (alpha_t^2 + sigma_t^2) = alpha_t z_t, which is what the autoencoder's scaling_factor
    aims the latents at. Holding the predicted eps fixed instead gives 1 / alpha_t: at the first step of the default
    schedule (alpha_t = 0.068) that multiplies the x_0 change by 1 / alpha_t^2 = 216, and sampling diverged (u = 100
    on the provisional checkpoint gave displacements of 1e9 px).

    Args:
        sample_gradient: grad_x0 L, (B, K, C, h, w).
        alpha: alpha_t of the timestep.
    """
    return alpha * sample_gradient


def self_guided_epsilon(
    epsilon: torch.Tensor, gradient: torch.Tensor, sigma: float, scale: float
) -> torch.Tensor:
    """eps_guided = eps + u * sigma_t * grad_z L_g (paper, section 3.2).

    Raising eps by a multiple of grad_z L_g lowers the x_0 estimate (z_t - sigma_t eps) / alpha_t along that
    gradient, so sampling drifts toward spectral volumes with a small L_g; with grad_z from latent_gradient the
    estimate moves by -u sigma_t^2 grad_x0 L_g.

    Args:
        epsilon: (B, ...) noise estimate (after classifier-free guidance).
        gradient: grad_z L_g (latent_gradient), same shape.
        sigma: sigma_t of the timestep.
        scale: u >= 0, the self-guidance scale (the paper uses 200, for its own latents and normalisation).
    """
    return epsilon + (scale * sigma) * gradient


def motion_step_statistics(spectrum: torch.Tensor, num_frames: int) -> dict[str, float]:
    """How seamless a loop is: seam step against ordinary steps, for reports and benchmarks (not differentiable).

    Args:
        spectrum: (K, 4, H, W) or (B, K, 4, H, W) spectral volume(s) in pixels.
        num_frames: T, frames in one period.

    Returns:
        seam_step: mean_p |F_{T-1} - F_0|_2, px; median_step and max_step: median and largest over t = 0..T-2 of
        mean_p |F_{t+1} - F_t|_2, px; amplitude: mean_p of mean_t |F_t|_2, px. Means also run over the batch.
    """
    with torch.no_grad():
        motion = spectrum_to_motion(spectrum.float(), num_frames)  # (..., T, 2, H, W), F_0 = 0
        steps = torch.linalg.vector_norm(motion.diff(dim=-4), dim=-3)  # (..., T-1, H, W)
        per_step = steps.mean(dim=(-2, -1)).reshape(-1, num_frames - 1).mean(dim=0)  # (T-1,)
        seam = torch.linalg.vector_norm(motion[..., -1, :, :, :], dim=-3).mean()
        amplitude = torch.linalg.vector_norm(motion, dim=-3).mean()
    return {
        "seam_step": float(seam),
        "median_step": float(per_step.median()),
        "max_step": float(per_step.max()),
        "amplitude": float(amplitude),
    }
