"""Spectral VAE: a continuous (KL) autoencoder over one 4-channel frequency slice (paper, section 3.2).

The K slices of a normalised spectral volume (B, K, 4, H, W) are encoded independently, K folded into the batch,
to latents (B, K, 4, H/8, W/8). The network is diffusers' AutoencoderKL with a small configuration, so it saves,
loads and plugs into pipelines as any diffusers VAE; the helpers here do the folding and the latent scaling.

Latent scaling: ``encode_spectrum`` returns ``scaling_factor * z`` and ``decode_latents`` divides it back, as
diffusers pipelines do. Our default factor is 1.0, a placeholder: after training the VAE, set it to
1 / std(z) over training latents (``vae.register_to_config(scaling_factor=...)``) so that diffusion sees latents
of unit variance, and save the VAE again.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL

from ..errors import GIDInputError
from .pooling_autoencoder import PoolingSpectralAutoencoder

# Four blocks = three x2 downsamplings: 256x160 -> 32x20. Narrow, one resnet per block, because the decoder runs
# up to full resolution for each of the K slices of every sample: 4.9 GFLOP per 256x160 slice here, 19.4 with
# widths (32, 64, 128, 128). Spectra are smooth fields; widen for quality if the inference budget allows.
SPECTRAL_VAE_CONFIG = {
    "in_channels": 4,
    "out_channels": 4,
    "latent_channels": 4,
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "block_out_channels": (16, 32, 64, 64),
    "layers_per_block": 1,
    "norm_num_groups": 8,
    "scaling_factor": 1.0,
    "mid_block_add_attention": True,
}


def make_spectral_vae(**overrides) -> AutoencoderKL:
    """A freshly initialised AutoencoderKL for spectral slices: SPECTRAL_VAE_CONFIG updated with ``overrides``."""
    return AutoencoderKL(**{**SPECTRAL_VAE_CONFIG, **overrides})


def vae_downsampling(vae: AutoencoderKL | PoolingSpectralAutoencoder) -> int:
    """Spatial factor between a slice and its latent: 2 ** (number of blocks - 1) for AutoencoderKL (8 by
    default), the cell size for the pooling autoencoder."""
    if isinstance(vae, PoolingSpectralAutoencoder):
        return vae.config.downsampling
    return 2 ** (len(vae.config.block_out_channels) - 1)


# The autoencoders a checkpoint's vae/ may hold, by the class name in its config.json.
SPECTRAL_AUTOENCODERS = {cls.__name__: cls for cls in (AutoencoderKL, PoolingSpectralAutoencoder)}


def load_spectral_autoencoder(directory: str | Path) -> AutoencoderKL | PoolingSpectralAutoencoder:
    """The spectral autoencoder saved in ``directory`` (either kind), or a GIDInputError naming what is wrong."""
    config_path = Path(directory) / "config.json"
    try:
        name = json.loads(config_path.read_text()).get("_class_name")
    except (OSError, json.JSONDecodeError, AttributeError) as error:
        raise GIDInputError(f"{directory} holds no readable autoencoder config.json: {error}") from None
    if name not in SPECTRAL_AUTOENCODERS:
        raise GIDInputError(f"{config_path} names {name!r}, not one of {sorted(SPECTRAL_AUTOENCODERS)}")
    try:
        return SPECTRAL_AUTOENCODERS[name].from_pretrained(directory)
    except (OSError, ValueError, RuntimeError) as error:
        raise GIDInputError(f"cannot load the autoencoder from {directory}: {error}") from None


def encode_spectrum(
    vae: AutoencoderKL,
    spectrum: torch.Tensor,
    sample_posterior: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Encode every frequency slice of normalised spectral volumes.

    Args:
        vae: the spectral VAE.
        spectrum: (B, K, in_channels, H, W) normalised (SpectralNormalizer.normalize); H, W multiples of 8.
        sample_posterior: draw z from the posterior (diffusion training) instead of taking its mean (inference).
        generator: randomness for sample_posterior.

    Returns:
        (B, K, latent_channels, H / 8, W / 8) latents, multiplied by ``vae.config.scaling_factor``.
    """
    factor = vae_downsampling(vae)
    if spectrum.ndim != 5 or spectrum.shape[2] != vae.config.in_channels:
        raise GIDInputError(
            f"spectrum must have shape (B, K, {vae.config.in_channels}, H, W), got {tuple(spectrum.shape)}"
        )
    if spectrum.shape[-2] % factor or spectrum.shape[-1] % factor:
        raise GIDInputError(
            f"spectrum size {spectrum.shape[-2]}x{spectrum.shape[-1]} (H x W) must be a multiple of {factor}"
        )
    posterior = vae.encode(spectrum.flatten(0, 1).to(vae.dtype)).latent_dist
    latents = posterior.sample(generator=generator) if sample_posterior else posterior.mode()
    return latents.unflatten(0, spectrum.shape[:2]) * vae.config.scaling_factor


def decode_latents(vae: AutoencoderKL, latents: torch.Tensor) -> torch.Tensor:
    """(B, K, latent_channels, h, w) scaled latents -> (B, K, out_channels, 8h, 8w) normalised spectral volumes."""
    if latents.ndim != 5 or latents.shape[2] != vae.config.latent_channels:
        raise GIDInputError(
            f"latents must have shape (B, K, {vae.config.latent_channels}, h, w), got {tuple(latents.shape)}"
        )
    decoded = vae.decode(latents.flatten(0, 1).to(vae.dtype) / vae.config.scaling_factor).sample
    return decoded.unflatten(0, latents.shape[:2])
