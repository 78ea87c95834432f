"""Training of the spectral VAE, the frequency U-Net and the renderer (``gid train vae|unet|renderer``)."""

from .common import TrainConfig, read_losses
from .train_renderer import RendererTrainConfig, train_renderer
from .train_unet import make_noise_scheduler, train_unet
from .train_vae import latent_scaling_factor, train_vae

__all__ = [
    "RendererTrainConfig",
    "TrainConfig",
    "latent_scaling_factor",
    "make_noise_scheduler",
    "read_losses",
    "train_renderer",
    "train_unet",
    "train_vae",
]
