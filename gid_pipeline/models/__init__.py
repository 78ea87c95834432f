"""Learned models: the spectral VAE, the frequency-coordinated denoiser, the splat renderer, and their losses."""

from .frequency_unet import FrequencyAttention, FrequencyUNet, FrequencyUNetOutput
from .losses import (
    VAELoss,
    denoising_loss,
    diffusion_target,
    kl_divergence,
    multiscale_gradient_loss,
    spectral_vae_loss,
)
from .pooling_autoencoder import PoolingSpectralAutoencoder
from .render_losses import (
    RenderLossTerms,
    VGGPerceptual,
    gradient_l1,
    log_mse,
    render_loss,
    render_loss_terms,
    ssim,
)
from .renderer import DEFAULT_SCALE_CHANNELS, SplatRenderer
from .spectral_vae import (
    SPECTRAL_VAE_CONFIG,
    decode_latents,
    encode_spectrum,
    load_spectral_autoencoder,
    make_spectral_vae,
    vae_downsampling,
)

__all__ = [
    "DEFAULT_SCALE_CHANNELS",
    "SPECTRAL_VAE_CONFIG",
    "FrequencyAttention",
    "FrequencyUNet",
    "FrequencyUNetOutput",
    "PoolingSpectralAutoencoder",
    "RenderLossTerms",
    "SplatRenderer",
    "VAELoss",
    "VGGPerceptual",
    "decode_latents",
    "denoising_loss",
    "diffusion_target",
    "encode_spectrum",
    "gradient_l1",
    "kl_divergence",
    "load_spectral_autoencoder",
    "log_mse",
    "make_spectral_vae",
    "multiscale_gradient_loss",
    "render_loss",
    "render_loss_terms",
    "spectral_vae_loss",
    "ssim",
    "vae_downsampling",
]
