"""What VAE and U-Net training share: the run config, accelerate setup, data, checkpoints, EMA and the loss log.

Output directory of a run:

    run.json                  the TrainConfig (rewritten on resume with the new step count)
    losses.jsonl              one JSON line per optimizer step: step, loss (mean over processes), lr, extra terms
    checkpoints/step-NNNNNNN/ accelerator.save_state (model, optimizer, lr scheduler, EMA, RNG) + train_state.json
    vae/ or unet/             the final EMA weights (save_pretrained) with normalization.json beside them

Exact resume: every random draw of a step (posterior sample, noise, timesteps, condition dropout) comes from a
generator seeded by (seed, step, micro-batch, rank), not from global state, and the data stream, itself a function
of the seed, is fast-forwarded past the micro-batches already consumed (they are read and decoded again, which
costs data-loading time, not model time). Model, optimizer, scheduler and EMA come from the checkpoint.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from diffusers.optimization import get_constant_schedule_with_warmup
from diffusers.training_utils import EMAModel
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..data import Augment, SpectralShardDataset, collate
from ..errors import GIDInputError
from ..spectral.transform import SpectralNormalizer

MIXED_PRECISIONS = ("no", "fp16", "bf16")
PREDICTION_TYPES = ("epsilon", "v_prediction")
STAGES = ("per_slice", "frequency_attention", "motion_mask")
CONFIG_NAME = "run.json"
LOG_NAME = "losses.jsonl"
NORMALIZATION_NAME = "normalization.json"
STATE_NAME = "train_state.json"
# Changing these between a run and its resume keeps the resumed run exact.
RESUMABLE_CHANGES = frozenset({"steps", "checkpoint_every"})
# (model, batch, generator) -> (loss, extra 0-d tensors to log), for one micro-batch.
LossFunction = Callable[
    [torch.nn.Module, dict[str, Any], torch.Generator], tuple[torch.Tensor, dict[str, torch.Tensor]]
]


@dataclass
class TrainConfig:
    """One training run; saved as run.json in the output directory.

    model: "vae" or "unet". data: dataset directories; weights: their mixing ratios (default: by size).
    model_config: overrides of the model's constructor arguments (make_spectral_vae / FrequencyUNet).
    vae: the trained VAE export (U-Net only). stage: "per_slice" (stage 1) or "frequency_attention" (stage 2,
    needs init_from, a stage-1 U-Net export; only the frequency attention layers train) or "motion_mask" (needs
    init_from, a finished U-Net export trained with motion_mask; it is given motion-mask adapters and only they
    train, so its prior without a mask stays exactly as it was). init_from with stage "per_slice" trains that
    stage-1 export further (the renderer: fine-tunes that renderer export).
    prediction_type: "v_prediction" by default: its target has unit variance at every timestep, so the loss
    weighs high and low noise levels alike, and it stays well-posed at the last, almost pure-noise steps where
    epsilon-prediction says little about the clean latent.
    condition_dropout: probability of dropping the image condition (classifier-free guidance).
    ema_decay: EMA of the weights (diffusers' decay warmup min(decay, (1 + n) / (10 + n)) applies).
    scale_batches: VAE only, batches used to measure the latent std for the scaling factor.
    slices_per_sample: train on this many randomly chosen frequency slices of each sample instead of all K (VAE;
        U-Net stage 1, whose slices are independent). Unbiased, and K / slices_per_sample times more images per
        unit of compute: what makes CPU training affordable. None: all K.
    crop_size: VAE only: train on random crop_size x crop_size crops of each slice (fully convolutional, so it
        then runs at any size). A multiple of the VAE's downsampling; None: whole slices.
    image_encoder: U-Net only: a frozen image encoder export (gid convert-encoder) whose features condition the
        model. When every dataset has a feature cache of it (gid cache-features), the cache is read and the
        augmentation may only mirror (zoom off; photometric must be 0); otherwise features are computed per step.
    motion_gain, motion_tilt: ranges of the motion reshaping augmentation (data.augment.reshape_motion: a gain,
        log-uniform, and a spectral tilt, uniform; the image is unchanged), to match a generator's amplitudes and
        spectra to real clips'; the defaults change nothing.
    motion_mask: U-Net only: train the motion-mask condition; mask_probability of the samples get a mask drawn
        from their true moving region (data.motion_masks), the others none (the ordinary prior);
        mask_edit_probability of the masked ones have their target edited to disagree with their looks
        (data.motion_masks.edit_for_mask), so that the mask wins over appearance.
    """

    model: str
    data: list[str]
    output: str
    weights: list[float] | None = None
    model_config: dict[str, Any] = field(default_factory=dict)
    vae: str | None = None
    stage: str = "per_slice"
    init_from: str | None = None
    steps: int = 50_000
    batch_size: int = 8
    learning_rate: float = 1e-4
    warmup_steps: int = 500
    weight_decay: float = 1e-2
    max_grad_norm: float = 1.0
    mixed_precision: str = "no"
    gradient_accumulation_steps: int = 1
    seed: int = 0
    checkpoint_every: int = 1000
    ema_decay: float = 0.9999
    prediction_type: str = "v_prediction"
    condition_dropout: float = 0.1
    augment: bool = True
    photometric: float = 0.0
    num_workers: int = 2
    shuffle_buffer: int = 256
    scale_batches: int = 8
    slices_per_sample: int | None = None
    crop_size: int | None = None
    image_encoder: str | None = None
    motion_gain: tuple[float, float] = (1.0, 1.0)
    motion_tilt: tuple[float, float] = (0.0, 0.0)
    motion_mask: bool = False
    mask_probability: float = 0.5
    mask_edit_probability: float = 0.0

    def __post_init__(self) -> None:
        checks = (
            (self.model in ("vae", "unet"), f"model must be vae or unet, got {self.model!r}"),
            (bool(self.data), "no training data given (--data DIR)"),
            (self.mixed_precision in MIXED_PRECISIONS,
             f"mixed precision must be one of {', '.join(MIXED_PRECISIONS)}, got {self.mixed_precision!r}"),
            (self.prediction_type in PREDICTION_TYPES,
             f"prediction type must be one of {', '.join(PREDICTION_TYPES)}, got {self.prediction_type!r}"),
            (self.stage in STAGES, f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}"),
            (self.weights is None or len(self.weights) == len(self.data),
             f"need one weight per dataset ({len(self.data)}), got {self.weights}"),
            (min(self.steps, self.batch_size, self.gradient_accumulation_steps, self.checkpoint_every,
                 self.scale_batches) >= 1, "steps, batch size, accumulation, checkpoint interval must be >= 1"),
            (self.learning_rate > 0 and self.warmup_steps >= 0 and self.num_workers >= 0, "bad lr/warmup/workers"),
            (0.0 <= self.condition_dropout < 1.0, f"condition dropout must be in [0, 1), got {self.condition_dropout}"),
            (0.0 <= self.ema_decay < 1.0, f"EMA decay must be in [0, 1), got {self.ema_decay}"),
            (0.0 <= self.photometric <= 1.0, f"photometric must be a probability in [0, 1], got {self.photometric}"),
            (self.slices_per_sample is None or self.slices_per_sample >= 1,
             f"slices_per_sample must be >= 1, got {self.slices_per_sample}"),
            (self.crop_size is None or (self.model == "vae" and self.crop_size >= 8),
             f"crop_size is a VAE option and must be >= 8, got {self.crop_size}"),
            (self.model == "unet" or (self.image_encoder is None and not self.motion_mask),
             "image_encoder and motion_mask are U-Net options"),
            (0.0 <= self.mask_probability <= 1.0, f"mask_probability must be in [0, 1], got {self.mask_probability}"),
            (0.0 <= self.mask_edit_probability <= 1.0,
             f"mask_edit_probability must be in [0, 1], got {self.mask_edit_probability}"),
            (self.stage != "motion_mask" or (self.model == "unet" and self.motion_mask and self.mask_probability > 0),
             "stage motion_mask trains the mask adapters: it needs a unet, motion_mask and mask_probability > 0"),
        )  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise GIDInputError(message)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from a JSON object; unknown keys are an error (a typo would otherwise be ignored silently)."""
        known = {f.name for f in dataclasses.fields(cls)}
        if unknown := sorted(set(values) - known):
            raise GIDInputError(f"unknown run config keys {unknown}; known: {sorted(known)}")
        try:
            return cls(**values)
        except TypeError as error:
            raise GIDInputError(f"incomplete run config: {error}") from None

    @classmethod
    def load(cls, path: str | Path) -> dict[str, Any]:
        """A run config file as a dict (to be overlaid with command-line values before from_dict)."""
        try:
            values = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise GIDInputError(f"cannot read run config {path}: {error}") from None
        if not isinstance(values, dict):
            raise GIDInputError(f"run config {path} must hold a JSON object")
        return values

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")


def check_resume(config: TrainConfig) -> None:
    """On resume, the saved run must differ from this one only in RESUMABLE_CHANGES."""
    saved_path = Path(config.output) / CONFIG_NAME
    if not saved_path.is_file():
        raise GIDInputError(f"cannot resume: {saved_path} does not exist")
    # The run's own config class: a renderer run has fields of its own.
    defaults = {f.name: f.default for f in dataclasses.fields(config) if f.default is not dataclasses.MISSING}
    saved = json.loads(json.dumps(defaults)) | TrainConfig.load(saved_path)  # keys added since it was saved
    current = json.loads(json.dumps(dataclasses.asdict(config)))  # tuples as lists, as saved
    changed = sorted(k for k, v in current.items() if k not in RESUMABLE_CHANGES and saved.get(k) != v)
    if changed:
        raise GIDInputError(f"cannot resume with a different {', '.join(changed)} (only steps, checkpoint_every)")


def make_accelerator(config: TrainConfig) -> Accelerator:
    """The Accelerator of a run; the lr scheduler is stepped by hand once per optimizer step."""
    try:
        accelerator = Accelerator(
            mixed_precision=config.mixed_precision,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            log_with=None,
            project_dir=config.output,
            step_scheduler_with_optimizer=False,
        )
    except ValueError as error:  # e.g. fp16 on a CPU
        raise GIDInputError(f"cannot train with mixed precision {config.mixed_precision!r} here: {error}") from None
    set_seed(config.seed)  # model initialisation; per-step randomness uses step_generator
    return accelerator


def open_training_data(
    config: TrainConfig, accelerator: Accelerator, features: str | None = None
) -> SpectralShardDataset:
    """The endless, shuffled, rank-sharded training stream (fails early on missing or empty datasets).

    features: the fingerprint of an image encoder whose cached features the items carry; the augmentation then
    only mirrors (a zoom or a photometric change would show an image the cached features do not describe).
    """
    augment = None
    reshaping = {"motion_gain_range": tuple(config.motion_gain), "tilt_range": tuple(config.motion_tilt)}
    if config.augment and features is not None:
        if config.photometric > 0:
            raise GIDInputError(
                "photometric augmentation changes the image behind cached features: use --photometric 0 (the "
                "procedural scenes carry their own camera realism) or delete the dataset's features/ folder"
            )
        augment = Augment(crop_probability=0.0, **reshaping)
    elif config.augment:
        augment = Augment(photometric_probability=config.photometric, **reshaping)
    return SpectralShardDataset(
        config.data,
        config.weights,
        shuffle=True,
        shuffle_buffer=config.shuffle_buffer,
        repeat=True,
        augment=augment,
        seed=config.seed,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
        features=features,
    )


def data_normalizer(dataset: SpectralShardDataset) -> SpectralNormalizer:
    """The datasets' normalisation statistics: the saved one for one dataset; for a mix, or for motion reshaped by
    augmentation, all must have one and the statistics are refitted over the stream (what the model sees)."""
    for info, normalizer in zip(dataset.infos, dataset.normalizers, strict=True):
        if normalizer is None:
            raise GIDInputError(f"dataset {info.root} has no {NORMALIZATION_NAME}; rebuild it with gid prepare-data")
    reshaped = dataset.augment is not None and dataset.augment.reshapes_motion
    return dataset.normalizer if len(dataset.infos) == 1 and not reshaped else dataset.fit_normalizer()


def iterate_batches(dataset: SpectralShardDataset, config: TrainConfig, skip: int = 0) -> Iterator[dict[str, Any]]:
    """Batches forever, the first ``skip`` dropped (resume). Not accelerator.prepare'd: the dataset already
    shards by rank, and accelerate would shard an IterableDataset a second time."""
    loader = DataLoader(dataset, batch_size=config.batch_size, collate_fn=collate, num_workers=config.num_workers)
    batches = iter(loader)
    for _ in tqdm(range(skip), desc="skip consumed batches", disable=skip == 0 or None, leave=False):
        next(batches)
    return batches


def step_generator(config: TrainConfig, step: int, micro: int, rank: int) -> torch.Generator:
    """A CPU generator for one micro-batch: the same draws whether or not the run was interrupted."""
    seed = int(np.random.SeedSequence([config.seed, step, micro, rank]).generate_state(1)[0])
    return torch.Generator().manual_seed(seed)


def make_optimizer(
    parameters: list[torch.nn.Parameter], config: TrainConfig
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with linear warmup then a constant rate (so extending --steps on resume changes nothing before)."""
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, weight_decay=config.weight_decay)
    return optimizer, get_constant_schedule_with_warmup(optimizer, config.warmup_steps)


def make_ema(model: torch.nn.Module, config: TrainConfig, accelerator: Accelerator) -> EMAModel:
    """EMA of all weights (frozen ones are copied), registered so that save_state / load_state carry it."""
    ema = EMAModel(model.parameters(), decay=config.ema_decay)
    ema.to(accelerator.device)
    accelerator.register_for_checkpointing(ema)
    return ema


def _checkpoint_dirs(output: Path) -> list[tuple[int, Path]]:
    found = []
    for path in (output / "checkpoints").glob("step-*"):
        if re.fullmatch(r"step-\d+", path.name) and (path / STATE_NAME).is_file():
            found.append((json.loads((path / STATE_NAME).read_text())["step"], path))
    return sorted(found)


def save_checkpoint(accelerator: Accelerator, output: Path, step: int) -> None:
    """accelerator.save_state, then train_state.json last: a checkpoint without it is incomplete and ignored."""
    path = output / "checkpoints" / f"step-{step:07d}"
    accelerator.save_state(str(path))
    if accelerator.is_main_process:
        (path / STATE_NAME).write_text(json.dumps({"step": step}) + "\n")
    accelerator.wait_for_everyone()


def restore_checkpoint(accelerator: Accelerator, output: Path) -> int:
    """Load the latest complete checkpoint; returns its step."""
    checkpoints = _checkpoint_dirs(output)
    if not checkpoints:
        raise GIDInputError(f"cannot resume: no complete checkpoint under {output / 'checkpoints'}")
    step, path = checkpoints[-1]
    accelerator.load_state(str(path))
    return step


class LossLog:
    """losses.jsonl, one line per step, written by the main process; on resume, lines after the checkpoint (from
    a run that went on past it before stopping) are dropped so that the log reads as one run."""

    def __init__(self, output: Path, start_step: int, enabled: bool) -> None:
        self.path, self.enabled = output / LOG_NAME, enabled
        if enabled:
            kept = []
            if start_step > 0 and self.path.is_file():
                kept = [line for line in self.path.read_text().splitlines() if json.loads(line)["step"] <= start_step]
            self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, float | int]) -> None:
        if self.enabled:
            with self.path.open("a") as file:
                file.write(json.dumps(record) + "\n")


def read_losses(output: str | Path) -> list[dict[str, float]]:
    """The loss log of a run, as a list of records."""
    return [json.loads(line) for line in (Path(output) / LOG_NAME).read_text().splitlines()]


def train_loop(
    config: TrainConfig,
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    lr_scheduler: torch.optim.lr_scheduler.LRScheduler,
    ema: EMAModel,
    dataset: SpectralShardDataset,
    loss_fn: LossFunction,
    resume: bool,
) -> None:
    """The optimisation loop shared by both models.

    ``loss_fn(model, batch, generator) -> (loss, extra)`` computes one micro-batch's loss (extra: 0-d tensors to
    log). Gradients accumulate over gradient_accumulation_steps micro-batches per optimizer step.
    """
    output = Path(config.output)
    start = restore_checkpoint(accelerator, output) if resume else 0
    accumulation = config.gradient_accumulation_steps
    # A run resumed at its last step (to export it) reads no data: skipping consumed batches costs decoding them.
    batches = iterate_batches(dataset, config, skip=start * accumulation) if start < config.steps else iter(())
    log = LossLog(output, start, accelerator.is_main_process)
    trainable = [p for p in model.parameters() if p.requires_grad]
    model.train()
    bar = tqdm(total=config.steps, initial=start, desc=f"train {config.model}", disable=not accelerator.is_main_process)
    for step in range(start, config.steps):
        totals: dict[str, float] = {}
        for micro in range(accumulation):
            batch = next(batches)
            generator = step_generator(config, step, micro, accelerator.process_index)
            with accelerator.accumulate(model):
                loss, extra = loss_fn(model, batch, generator)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(trainable, config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            for name, value in {"loss": loss, **extra}.items():
                totals[name] = totals.get(name, 0.0) + accelerator.gather(value.detach()).mean().item() / accumulation
        learning_rate = lr_scheduler.get_last_lr()[0]  # the rate this step used
        lr_scheduler.step()
        ema.step(accelerator.unwrap_model(model).parameters())
        if not math.isfinite(totals["loss"]):
            raise RuntimeError(f"loss is {totals['loss']} at step {step + 1}; lower the learning rate")
        log.write({"step": step + 1, **totals, "lr": learning_rate})
        bar.set_postfix(loss=f"{totals['loss']:.4f}")
        bar.update()
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            save_checkpoint(accelerator, output, step + 1)
    bar.close()


def random_slices(
    spectrum: torch.Tensor, count: int | None, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick ``count`` distinct frequency slices of each sample, uniformly at random.

    Args:
        spectrum: (B, K, C, H, W).
        count: slices per sample, <= K; None keeps all K in order.

    Returns:
        (B, count, C, H, W) slices and (B, count) long indices of their frequencies.
    """
    batch, num_frequencies = spectrum.shape[:2]
    if count is None:
        return spectrum, torch.arange(num_frequencies).expand(batch, -1)
    if count > num_frequencies:
        raise GIDInputError(f"slices_per_sample {count} exceeds the data's K = {num_frequencies}")
    indices = torch.rand(batch, num_frequencies, generator=generator).argsort(dim=1)[:, :count]
    gather = indices.to(spectrum.device).view(batch, count, 1, 1, 1).expand(-1, -1, *spectrum.shape[2:])
    return spectrum.gather(1, gather), indices


def random_crops(images: torch.Tensor, size: int | None, generator: torch.Generator) -> torch.Tensor:
    """(N, C, H, W) -> (N, C, size, size): one uniformly placed crop per image (None or a size >= H, W: as is)."""
    height, width = images.shape[-2:]
    if size is None or (size >= height and size >= width):
        return images
    if size > height or size > width:
        raise GIDInputError(f"crop_size {size} does not fit the data's {width}x{height} slices")
    tops = torch.randint(height - size + 1, (images.shape[0],), generator=generator).tolist()
    lefts = torch.randint(width - size + 1, (images.shape[0],), generator=generator).tolist()
    # A loop over the N crops (not over pixels): each is one strided view.
    return torch.stack([image[:, top : top + size, left : left + size] for image, top, left in zip(
        images, tops, lefts, strict=True)])  # fmt: skip


def ema_copy(model: torch.nn.Module, ema: EMAModel) -> torch.nn.Module:
    """A float32 copy of ``model`` (unwrapped: the module the EMA tracks) holding the EMA weights, to export."""
    exported = copy.deepcopy(model)
    ema.copy_to(exported.parameters())
    return exported.float().eval()


def save_normalizer(normalizer: SpectralNormalizer, directory: Path) -> None:
    """normalization.json beside an export: models are trained on spectra normalised with exactly these."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / NORMALIZATION_NAME).write_text(json.dumps(normalizer.to_dict(), indent=2) + "\n")


def start_run(config: TrainConfig, resume: bool) -> None:
    """Check a resume against the saved config, then (re)write run.json."""
    output = Path(config.output)
    if resume:
        check_resume(config)
    elif (output / CONFIG_NAME).is_file():
        raise GIDInputError(f"{output} already holds a run; pass --resume to continue it or choose another -o")
    output.mkdir(parents=True, exist_ok=True)
    config.save(output / CONFIG_NAME)
