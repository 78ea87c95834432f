"""Training of the spectral VAE and the frequency U-Net with accelerate (``gid train vae|unet``)."""

from .common import TrainConfig, read_losses
from .train_unet import make_noise_scheduler, train_unet
from .train_vae import latent_scaling_factor, train_vae

__all__ = ["TrainConfig", "latent_scaling_factor", "make_noise_scheduler", "read_losses", "train_unet", "train_vae"]
