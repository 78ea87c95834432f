"""Train the frequency-coordinated latent denoiser on latents of a frozen spectral VAE (paper, section 3.2).

Stage 1 ("per_slice") trains a FrequencyUNet without frequency attention from scratch; stage 2
("frequency_attention") loads a stage-1 export with ``FrequencyUNet.from_per_slice`` and trains only the frequency
attention layers; stage "motion_mask" gives a finished export motion-mask adapters and trains only them (its
prior without a mask stays exactly as it was). The export: OUTPUT/unet (EMA weights, normalization.json) and
OUTPUT/scheduler (the DDPMScheduler the model was trained with; its prediction_type says what the model predicts).
"""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDPMScheduler
from torch import nn

from ..data.feature_cache import open_feature_cache
from ..data.motion_masks import random_motion_masks
from ..errors import GIDInputError
from ..models import FrequencyUNet, denoising_loss, encode_spectrum, load_spectral_autoencoder, vae_downsampling
from ..models.image_encoder import EfficientNetLiteEncoder, load_image_encoder
from ..spectral.transform import SpectralNormalizer
from .common import (
    NORMALIZATION_NAME,
    TrainConfig,
    ema_copy,
    make_accelerator,
    make_ema,
    make_optimizer,
    open_training_data,
    random_slices,
    save_normalizer,
    start_run,
    train_loop,
)


def make_noise_scheduler(prediction_type: str) -> DDPMScheduler:
    """Latent diffusion's schedule (1000 steps, scaled-linear betas 0.00085..0.012), no clipping: latents are
    unbounded."""
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        prediction_type=prediction_type,
    )


def load_vae(directory: str | Path, need_normalizer: bool = True) -> tuple[AutoencoderKL, SpectralNormalizer | None]:
    """A trained spectral VAE export and its normalisation statistics, or a GIDInputError naming what is wrong.
    Without need_normalizer a folder without them (a checkpoint's vae) gives None for the statistics."""
    directory = Path(directory)
    stats = directory / NORMALIZATION_NAME
    if not stats.is_file() and need_normalizer:
        raise GIDInputError(f"{directory} is not a trained VAE export: {NORMALIZATION_NAME} is missing")
    vae = load_spectral_autoencoder(directory)
    if vae.config.scaling_factor == 1.0:
        raise GIDInputError(f"the VAE in {directory} has no fitted scaling_factor (1.0); export it with gid train vae")
    return vae.requires_grad_(False).eval(), SpectralNormalizer.load(stats) if stats.is_file() else None


def _load_unet(directory: str, what: str) -> FrequencyUNet:
    try:
        return FrequencyUNet.from_pretrained(directory)
    except (OSError, ValueError, RuntimeError) as error:
        raise GIDInputError(f"cannot load the {what} from {directory}: {error}") from None


def _load_per_slice(directory: str) -> FrequencyUNet:
    per_slice = _load_unet(directory, "stage-1 U-Net")
    if per_slice.config.frequency_attention:
        raise GIDInputError(f"{directory} already has frequency attention; give a stage-1 export")
    return per_slice


def build_unet(
    config: TrainConfig, vae: AutoencoderKL, num_frequencies: int, encoder: EfficientNetLiteEncoder | None = None
) -> FrequencyUNet:
    """Stage 1: a fresh per-slice model, or the stage-1 export ``init_from`` trained further; stage 2: the stage-1
    export ``init_from`` with frequency attention, the rest frozen; stage motion_mask: the finished export
    ``init_from`` with motion-mask adapters, the rest frozen. The conditions the config asks for (the
    encoder's features, a motion mask) are added to a model without them (FrequencyUNet.with_conditions: new
    adapters start at zero, so the model starts as it was)."""
    if config.stage == "per_slice" and config.init_from is not None:
        if config.model_config:
            raise GIDInputError("give either init_from (a trained stage-1 U-Net) or model_config, not both")
        model = _load_per_slice(config.init_from)
    elif config.stage == "per_slice":
        try:
            model = FrequencyUNet(**{
                "num_frequencies": num_frequencies, "latent_channels": vae.config.latent_channels,
                **config.model_config, "frequency_attention": False,
            })  # fmt: skip
        except TypeError as error:
            raise GIDInputError(f"bad U-Net model_config: {error}") from None
    elif config.init_from is None:
        raise GIDInputError(f"stage {config.stage} fine-tunes a trained model: pass --init-from DIR")
    elif config.stage == "frequency_attention":
        model = FrequencyUNet.from_per_slice(_load_per_slice(config.init_from))
    else:
        model = _load_unet(config.init_from, "U-Net")
        if not model.config.motion_mask:
            raise GIDInputError(f"{config.init_from} was not trained with motion masks (gid train unet --motion-mask)")
    conditions = (
        None if encoder is None else tuple(encoder.feature_channels),
        None if encoder is None else encoder.config.fingerprint,
        config.motion_mask,
        config.stage == "motion_mask" or model.config.motion_mask_adapters,
    )
    current = (model.config.image_feature_channels, model.config.image_feature_encoder, model.config.motion_mask,
               model.config.motion_mask_adapters)  # fmt: skip
    if current[0] is not None:
        current = (tuple(current[0]), *current[1:])
    if conditions != current:
        model = FrequencyUNet.with_conditions(model, *conditions)
    if config.stage == "frequency_attention":
        model.freeze_except_frequency_attention()
    elif config.stage == "motion_mask":
        model.freeze_except_mask_adapters()
    checks = (
        (model.config.num_frequencies == num_frequencies,
         f"the U-Net has K = {model.config.num_frequencies} frequencies, the data K = {num_frequencies}"),
        (model.config.latent_channels == vae.config.latent_channels,
         f"the U-Net takes {model.config.latent_channels} latent channels, the VAE makes {vae.config.latent_channels}"),
        (model.image_downsampling == vae_downsampling(vae),
         f"the U-Net's image encoder downsamples by {model.image_downsampling}, the VAE by {vae_downsampling(vae)}"),
    )  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise GIDInputError(message)
    return model


def _check_size(size: tuple[int, int], vae: AutoencoderKL, model: FrequencyUNet) -> None:
    factor = vae_downsampling(vae) * model.latent_downsampling
    if size[0] % factor or size[1] % factor:
        raise GIDInputError(f"data size {size[0]}x{size[1]} must be a multiple of {factor} for this VAE and U-Net")


def feature_cache_fingerprint(config: TrainConfig, encoder: EfficientNetLiteEncoder | None) -> str | None:
    """The encoder's fingerprint when every dataset has its feature cache (read it), None when none has one
    (compute features per step); a GIDInputError when only some have (or caches of another encoder)."""
    if encoder is None:
        return None
    fingerprint = encoder.config.fingerprint
    cached = [open_feature_cache(root, fingerprint) is not None for root in config.data]
    if any(cached) and not all(cached):
        missing = [root for root, ok in zip(config.data, cached, strict=True) if not ok]
        raise GIDInputError(f"datasets {missing} have no image feature cache while the others do: run gid "
                            "cache-features on them")  # fmt: skip
    return fingerprint if all(cached) else None


def train_unet(config: TrainConfig, resume: bool = False) -> Path:
    """Train the U-Net described by ``config``; returns the export directory OUTPUT/unet."""
    if config.model != "unet" or config.vae is None:
        raise GIDInputError("U-Net training needs a config with model 'unet' and a trained VAE (--vae DIR)")
    accelerator = make_accelerator(config)
    # Fine-tuning the mask adapters keeps the normalisation the model was trained with (a checkpoint's vae will do).
    vae, normalizer = load_vae(config.vae, need_normalizer=config.stage != "motion_mask")
    encoder = load_image_encoder(config.image_encoder) if config.image_encoder is not None else None
    cached = feature_cache_fingerprint(config, encoder)
    dataset = open_training_data(config, accelerator, features=cached)
    model = build_unet(config, vae, dataset.num_frequencies, encoder)
    if config.stage == "motion_mask":
        if normalizer is not None and normalizer != model.normalizer:
            raise GIDInputError(f"the VAE export {config.vae} has other normalisation statistics than the U-Net "
                                f"{config.init_from} was trained with")  # fmt: skip
        normalizer = model.normalizer
    if dataset.num_frequencies != normalizer.num_frequencies:
        raise GIDInputError(
            f"the data has K = {dataset.num_frequencies} frequencies, the normaliser K = {normalizer.num_frequencies}"
        )
    if config.slices_per_sample is not None and model.frequency_layers:
        raise GIDInputError("slices_per_sample is for per-slice models: frequency attention needs all K slices")
    _check_size(dataset.size, vae, model)
    start_run(config, resume)

    scheduler = make_noise_scheduler(config.prediction_type)
    vae.to(accelerator.device)
    if encoder is not None:
        encoder.to(accelerator.device)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer, lr_scheduler = make_optimizer(trainable, config)
    ema = make_ema(model, config, accelerator)
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)

    def loss_fn(unet: nn.Module, batch: dict, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
        device = accelerator.device
        mask, spectra = None, batch["spectrum"]
        if config.motion_mask:  # drawn before normalising: edits and the moving region are in pixels
            mask, spectra = random_motion_masks(spectra, config.mask_probability, generator,
                                                config.mask_edit_probability)  # fmt: skip
            mask = mask.to(device)
        with torch.no_grad():
            normalized = normalizer.normalize(spectra)  # per-frequency scales: before picking slices
            spectrum, frequencies = random_slices(normalized, config.slices_per_sample, generator)
            latents = encode_spectrum(vae, spectrum.to(device), sample_posterior=True, generator=generator).float()
        batch_size = latents.shape[0]
        noise = torch.randn(latents.shape, generator=generator).to(device)
        timesteps = torch.randint(scheduler.config.num_train_timesteps, (batch_size,), generator=generator).to(device)
        keep = (torch.rand(batch_size, generator=generator) >= config.condition_dropout).to(device)
        image = batch["image"].to(device) * 2.0 - 1.0
        noisy = scheduler.add_noise(latents, noise, timesteps)
        selected = None if config.slices_per_sample is None else frequencies.to(device)
        features = None
        if encoder is not None:
            with torch.no_grad():  # frozen: no gradient reaches the encoder or its cached features
                features = batch["features"] if "features" in batch else encoder(batch["image"].to(device)).features
                features = [maps.to(device) for maps in features]
        prediction = unet(noisy, timesteps, image, keep, frequency_indices=selected, image_features=features,
                          motion_mask=mask).sample  # fmt: skip
        return denoising_loss(prediction.float(), scheduler, latents, noise, timesteps), {}

    train_loop(config, accelerator, model, optimizer, lr_scheduler, ema, dataset, loss_fn, resume)

    accelerator.wait_for_everyone()
    output = Path(config.output)
    if accelerator.is_main_process:
        final = ema_copy(accelerator.unwrap_model(model), ema)
        final.register_to_config(
            normalization_scales=list(normalizer.scales), normalization_percentile=normalizer.percentile
        )
        final.save_pretrained(output / "unet")
        save_normalizer(normalizer, output / "unet")
        scheduler.save_pretrained(output / "scheduler")
    accelerator.wait_for_everyone()
    return output / "unet"
