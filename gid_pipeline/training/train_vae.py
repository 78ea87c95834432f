"""Train the spectral VAE on normalised frequency slices (paper, section 3.2), then set its latent scaling."""

from __future__ import annotations

import itertools
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from torch import nn

from ..data import SpectralShardDataset, collate
from ..data.augment import Augment
from ..errors import GIDInputError
from ..models import (
    PoolingSpectralAutoencoder,
    encode_spectrum,
    make_spectral_vae,
    spectral_vae_loss,
    vae_downsampling,
)
from ..spectral.transform import SpectralNormalizer
from .common import (
    TrainConfig,
    data_normalizer,
    ema_copy,
    make_accelerator,
    make_ema,
    make_optimizer,
    open_training_data,
    random_crops,
    random_slices,
    save_normalizer,
    start_run,
    train_loop,
)


class _VAEObjective(nn.Module):
    """Encode, sample, decode in one forward, so that DDP sees the whole computation through forward()."""

    def __init__(self, vae: AutoencoderKL) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, slices: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        posterior = self.vae.encode(slices).latent_dist
        latents = posterior.sample(generator=generator)  # a CPU generator works on any device (randn_tensor)
        return self.vae.decode(latents).sample, posterior.mean, posterior.logvar


# The KL weight is tiny (1e-6), so nothing but the reconstruction's weak gradient would shrink a posterior that
# starts at N(mean, 1): for hundreds of steps the decoder then sees latents drowned in noise and learns only the
# mean slice (measured: after 250 steps its L1 was worse than predicting zero). Start the variance small instead.
INITIAL_POSTERIOR_LOGVAR = -6.0


def initialise_posterior_variance(vae: AutoencoderKL, logvar: float = INITIAL_POSTERIOR_LOGVAR) -> None:
    """Make a fresh VAE's posterior log-variance start near ``logvar`` (std exp(logvar / 2)) everywhere."""
    latent = vae.config.latent_channels
    with torch.no_grad():
        vae.quant_conv.weight[latent:].mul_(0.01)
        vae.quant_conv.bias[latent:].fill_(logvar)


def _check_vae(vae: AutoencoderKL, size: tuple[int, int]) -> None:
    """The data must fit the VAE: 4-channel slices of a size divisible by its downsampling."""
    factor = vae_downsampling(vae)
    if vae.config.in_channels != 4 or vae.config.out_channels != 4:
        raise GIDInputError("the spectral VAE must have in_channels = out_channels = 4 (one frequency slice)")
    if size[0] % factor or size[1] % factor:
        raise GIDInputError(f"data size {size[0]}x{size[1]} is not a multiple of the VAE's downsampling {factor}")


@torch.no_grad()
def latent_scaling_factor(
    vae: AutoencoderKL, dataset: SpectralShardDataset, normalizer: SpectralNormalizer, num_batches: int,
    batch_size: int, seed: int,
) -> float:
    """1 / std of posterior samples of the training latents (the data without augmentation), over num_batches."""
    device = vae.device
    generator = torch.Generator().manual_seed(seed)
    items = iter(dataset)
    latents = []
    for _ in range(num_batches):
        spectrum = normalizer.normalize(collate(list(itertools.islice(items, batch_size)))["spectrum"]).to(device)
        scaled = encode_spectrum(vae, spectrum, sample_posterior=True, generator=generator)
        latents.append(scaled.float().flatten() / vae.config.scaling_factor)
    return 1.0 / torch.cat(latents).std().item()


def scaling_data(config: TrainConfig) -> SpectralShardDataset:
    """The stream the latent scaling factor is measured on: the data without augmentation, but for the motion
    reshaping the model will train on (it changes the latents' spread)."""
    reshaping = Augment(motion_gain_range=tuple(config.motion_gain), tilt_range=tuple(config.motion_tilt))
    return SpectralShardDataset(config.data, config.weights, shuffle=True, repeat=True, seed=config.seed + 1,
                                augment=reshaping.motion_only() if reshaping.reshapes_motion else None)  # fmt: skip


def export_pooling_autoencoder(config: TrainConfig, normalizer: SpectralNormalizer) -> Path:
    """The fixed pooling autoencoder instead of a trained VAE (model_config {"autoencoder": "pooling"[,
    "downsampling": 8]}): nothing to optimise, only its scaling_factor to fit; exported to OUTPUT/vae."""
    options = {key: value for key, value in config.model_config.items() if key != "autoencoder"}
    try:
        autoencoder = PoolingSpectralAutoencoder(**options)
    except TypeError as error:
        raise GIDInputError(f"bad pooling autoencoder model_config: {error}") from None
    plain = scaling_data(config)
    if plain.size[0] % autoencoder.config.downsampling or plain.size[1] % autoencoder.config.downsampling:
        raise GIDInputError(f"data size {plain.size} is not a multiple of {autoencoder.config.downsampling}")
    start_run(config, resume=False)
    factor = latent_scaling_factor(autoencoder, plain, normalizer, config.scale_batches, config.batch_size, config.seed)
    autoencoder.register_to_config(scaling_factor=factor)
    export = Path(config.output) / "vae"
    autoencoder.save_pretrained(export)
    save_normalizer(normalizer, export)
    return export


def train_vae(config: TrainConfig, resume: bool = False) -> Path:
    """Train the VAE described by ``config``; returns the export directory OUTPUT/vae.

    The export holds the EMA weights with ``scaling_factor`` = 1 / std of training latents, and the
    normalization.json the spectra were normalised with. With model_config {"autoencoder": "pooling"} the export
    is the fixed PoolingSpectralAutoencoder instead (see export_pooling_autoencoder).
    """
    if config.model != "vae":
        raise GIDInputError(f"train_vae needs a config with model 'vae', got {config.model!r}")
    accelerator = make_accelerator(config)
    dataset = open_training_data(config, accelerator)
    normalizer = data_normalizer(dataset)
    if config.model_config.get("autoencoder") == "pooling":
        return export_pooling_autoencoder(config, normalizer)
    try:
        vae = make_spectral_vae(**config.model_config)  # after set_seed: the same weights on every rank
    except TypeError as error:
        raise GIDInputError(f"bad VAE model_config: {error}") from None
    _check_vae(vae, dataset.size)
    initialise_posterior_variance(vae)
    if config.crop_size is not None and config.crop_size % vae_downsampling(vae):
        raise GIDInputError(f"crop_size {config.crop_size} must be a multiple of {vae_downsampling(vae)}")
    start_run(config, resume)
    optimizer, lr_scheduler = make_optimizer(list(vae.parameters()), config)
    ema = make_ema(vae, config, accelerator)
    objective, optimizer, lr_scheduler = accelerator.prepare(_VAEObjective(vae), optimizer, lr_scheduler)

    def loss_fn(model: nn.Module, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        spectrum, _ = random_slices(normalizer.normalize(batch["spectrum"]), config.slices_per_sample, generator)
        slices = random_crops(spectrum.flatten(0, 1), config.crop_size, generator)
        slices = slices.to(accelerator.device)  # K into the batch
        reconstruction, mean, logvar = model(slices, generator)
        loss = spectral_vae_loss(reconstruction.float(), slices, mean.float(), logvar.float())
        return loss.total, {"l1": loss.l1, "gradient": loss.gradient, "kl": loss.kl}

    train_loop(config, accelerator, objective, optimizer, lr_scheduler, ema, dataset, loss_fn, resume)

    accelerator.wait_for_everyone()
    export = Path(config.output) / "vae"
    if accelerator.is_main_process:
        final = ema_copy(accelerator.unwrap_model(objective).vae, ema)
        plain = scaling_data(config)
        factor = latent_scaling_factor(final, plain, normalizer, config.scale_batches, config.batch_size, config.seed)
        final.register_to_config(scaling_factor=factor)
        final.save_pretrained(export)
        save_normalizer(normalizer, export)
    accelerator.wait_for_everyone()
    return export
