"""A fixed (untrained) autoencoder for spectral slices: area pooling down, bilinear interpolation up.

It stands in for the learned spectral VAE (``spectral_vae``) where training one is out of reach. On the CPU this
project's default checkpoint was trained on, the KL VAE did not learn within the budget: after 500 steps of
batch 32 (64x64 crops), its reconstruction L1 on normalised procedural spectra was 0.13 against 0.12 for
predicting zero everywhere, and the correlation of reconstructed and true amplitude maps was 0.00. Spectral
volumes of natural motion are smooth fields (real optical flow is), so their 8x-pooled version keeps what a
motion prior has to get right (where things move, how much, at which frequency) and the renderer's softmax
splatting keeps the image's own sharp edges. The latents are the slice averaged over 8x8 cells.

It has the interface ``encode_spectrum`` / ``decode_latents`` and the pipeline use: ``encode(x).latent_dist``
(deterministic: sample == mode == mean), ``decode(z).sample``, ``config.latent_channels`` and
``config.scaling_factor``, so a checkpoint can hold either autoencoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution
from diffusers.models.modeling_outputs import AutoencoderKLOutput
from diffusers.models.modeling_utils import ModelMixin

from ..errors import GIDInputError


class PoolingSpectralAutoencoder(ModelMixin, ConfigMixin):
    """Latent = scaling-free area average over ``downsampling`` x ``downsampling`` cells; decode = bilinear.

    Args (the config):
        in_channels, out_channels: channels of a slice (4), in and out.
        latent_channels: channels of a latent. All three are equal: a cell average per channel.
        downsampling: the cell size; slice sides must be multiples of it.
        scaling_factor: multiplies latents at the diffusion boundary, as for AutoencoderKL; fitted as
            1 / std of training latents when a checkpoint is built.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 4,
        out_channels: int = 4,
        latent_channels: int = 4,
        downsampling: int = 8,
        scaling_factor: float = 1.0,
    ):
        super().__init__()
        if in_channels < 1 or downsampling < 1 or not in_channels == out_channels == latent_channels:
            raise GIDInputError(
                f"need in_channels = out_channels = latent_channels >= 1 and downsampling >= 1, got {in_channels}, "
                f"{out_channels}, {latent_channels}, {downsampling}"
            )
        # A ModelMixin without a tensor saves no weights file and then fails to load (see DESIGN.md).
        self.register_buffer("dtype_anchor", torch.zeros(1))

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> AutoencoderKLOutput | tuple:
        """(N, C, H, W) -> a deterministic posterior over (N, C, H / d, W / d) cell averages."""
        factor = self.config.downsampling
        if x.ndim != 4 or x.shape[1] != self.config.in_channels or x.shape[-2] % factor or x.shape[-1] % factor:
            raise GIDInputError(
                f"expected (N, {self.config.in_channels}, H, W) slices with H, W multiples of {factor}, got "
                f"{tuple(x.shape)}"
            )
        mean = F.avg_pool2d(x, factor)
        posterior = DiagonalGaussianDistribution(torch.cat([mean, torch.zeros_like(mean)], dim=1), deterministic=True)
        return AutoencoderKLOutput(latent_dist=posterior) if return_dict else (posterior,)

    def decode(self, z: torch.Tensor, return_dict: bool = True) -> DecoderOutput | tuple:
        """(N, C, h, w) -> (N, C, h * d, w * d), bilinear (cell centres at the averages' positions)."""
        factor = self.config.downsampling
        decoded = F.interpolate(z, scale_factor=factor, mode="bilinear", align_corners=False)
        return DecoderOutput(sample=decoded) if return_dict else (decoded,)
