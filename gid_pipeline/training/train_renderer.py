"""Train the learned renderer (paper, section 3.3) on (I_0, I_t, F_t, W) triples with accelerate.

``gid train renderer -o OUTPUT [--data procedural] [--data VIDEO_DIR] ...``. The triples come from
``data.triples``: procedural scenes (exact motion and disocclusions) and/or real clips with DIS flow, generated on
the fly in DataLoader workers. The run directory has the layout of the other models (common.py): run.json,
losses.jsonl, checkpoints/, and the export OUTPUT/renderer (EMA weights, ``SplatRenderer.save_pretrained``).

Loss: L1 + ssim_weight (1 - SSIM) + gradient_weight * image-gradient L1 + log_mse_weight * mean log10(frame MSE)
(the evaluation's mean PSNR, / -10), plus perceptual_weight * a VGG-16 feature distance when ``perceptual`` names a
local safetensors file of VGG-16 weights (none can be downloaded here; without one the term is absent).

Exact resume: model, optimizer, scheduler and EMA come from the checkpoint, and the triple stream starts at the
first batch not yet consumed; batch b is a pure function of (seed, b, num_workers), so nothing is generated twice.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..data.triples import CLIP_FPS, CLIP_FRAMES, ShardedSource, TripleStream, make_loader, open_clip_sources
from ..errors import GIDInputError
from ..models.render_losses import VGGPerceptual, log_mse, render_loss_terms
from ..models.renderer import SplatRenderer
from ..procedural.scenes import DEFAULT_SIZE
from ..rendering.loop import render_frames
from .common import (
    LossLog,
    TrainConfig,
    ema_copy,
    make_accelerator,
    make_ema,
    make_optimizer,
    restore_checkpoint,
    save_checkpoint,
    start_run,
)

EXPORT_NAME = "renderer"


@dataclass
class RendererTrainConfig(TrainConfig):
    """A renderer run (saved as run.json): TrainConfig's fields with model "renderer", plus:

    data: entries "procedural" and/or folders of videos; weights: their mixing ratios (default equal).
    size: (width, height) of the triples. clip_frames, clip_fps: frames per clip and their rate (default: the
    model's 5-second period at 6 fps; t is one of frames 1..clip_frames - 1). reuse: training batches that share
    a clip (at different frames t).
    ssim_weight, gradient_weight, log_mse_weight, perceptual_weight: loss weights (models.render_losses);
    perceptual: local VGG-16 safetensors or None.
    augment: mirror half of the triples left-right. num_workers: DataLoader workers, each generating its own lane
    of batches (part of the data stream's definition: a resume must keep it, as it keeps every field but steps
    and checkpoint_every). TrainConfig's VAE/U-Net-only fields (vae, stage, prediction_type, ...) are ignored.
    """

    size: list[int] = field(default_factory=lambda: list(DEFAULT_SIZE))
    clip_frames: int = CLIP_FRAMES
    clip_fps: float = CLIP_FPS
    reuse: int = 8
    ssim_weight: float = 1.0
    gradient_weight: float = 1.0
    log_mse_weight: float = 0.0
    perceptual: str | None = None
    perceptual_weight: float = 0.1

    def __post_init__(self) -> None:
        if self.model != EXPORT_NAME:
            raise GIDInputError(f"a renderer run needs model {EXPORT_NAME!r}, got {self.model!r}")
        # TrainConfig's own checks (it knows only the models "vae" and "unet"), on a copy that names one of them.
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig)}
        TrainConfig(**{**shared, "model": "vae"})
        checks = (
            (len(self.size) == 2 and min(self.size) >= 32, f"size must be [width, height] >= 32, got {self.size}"),
            (self.reuse >= 1, f"reuse must be >= 1, got {self.reuse}"),
            (self.clip_frames >= 2 and self.clip_fps > 0, "a clip needs >= 2 frames at a positive rate"),
            (
                min(self.ssim_weight, self.gradient_weight, self.log_mse_weight, self.perceptual_weight) >= 0,
                "loss weights must be >= 0",
            ),
            (self.weights is None or min(self.weights) >= 0 < sum(self.weights), f"bad weights {self.weights}"),
        )
        for ok, message in checks:
            if not ok:
                raise GIDInputError(message)


def make_renderer(config: RendererTrainConfig) -> SplatRenderer:
    """The model of a run: the SplatRenderer export ``init_from`` (fine-tuning), else SplatRenderer(**model_config)
    (after set_seed, so every rank starts alike)."""
    if config.init_from is not None:
        if config.model_config:
            raise GIDInputError("give either init_from (a trained renderer) or model_config, not both")
        try:
            return SplatRenderer.from_pretrained(config.init_from)
        except (OSError, ValueError) as error:
            raise GIDInputError(f"cannot load the renderer to fine-tune from {config.init_from}: {error}") from None
    try:
        return SplatRenderer(**config.model_config)
    except TypeError as error:
        raise GIDInputError(f"bad renderer model_config: {error}") from None


def open_triples(config: RendererTrainConfig, start: int, rank: int = 0, world_size: int = 1) -> TripleStream:
    """The run's triple stream from batch ``start`` on; process ``rank`` of ``world_size`` gets clips of its own."""
    size = (config.size[0], config.size[1])
    sources = open_clip_sources(config.data, size, config.clip_frames, config.clip_fps, config.seed)
    sources = [ShardedSource(source, rank, world_size) for source in sources]
    lanes = max(config.num_workers, 1)
    return TripleStream(
        sources, config.batch_size, config.seed, config.weights, config.reuse, lanes, start, config.augment
    )


def _batches(config: RendererTrainConfig, start: int, rank: int, world_size: int) -> Iterator[dict[str, Any]]:
    return iter(make_loader(open_triples(config, start, rank, world_size), config.num_workers))


def psnr(frames: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of the PSNR in dB of (B, 3, H, W) frames in [0, 1]: -10 log_mse (MSE floored at 1e-10)."""
    return -10.0 * log_mse(frames.float(), target.float())


def train_renderer(config: RendererTrainConfig, resume: bool = False) -> Path:
    """Train the renderer described by ``config``; returns the export directory OUTPUT/renderer (EMA weights).

    Resuming with ``steps`` equal to the last checkpoint's step trains nothing and only exports.
    """
    if not isinstance(config, RendererTrainConfig):
        raise GIDInputError("train_renderer needs a RendererTrainConfig")
    perceptual = VGGPerceptual.from_file(config.perceptual) if config.perceptual else None
    accelerator = make_accelerator(config)
    renderer = make_renderer(config)
    start_run(config, resume)
    optimizer, lr_scheduler = make_optimizer(list(renderer.parameters()), config)
    ema = make_ema(renderer, config, accelerator)
    model, optimizer, lr_scheduler = accelerator.prepare(renderer, optimizer, lr_scheduler)
    if perceptual is not None:
        perceptual = perceptual.to(accelerator.device)
    output = Path(config.output)
    start = restore_checkpoint(accelerator, output) if resume else 0
    accumulation = config.gradient_accumulation_steps
    # Not opened when there is nothing left to train (a resume at the last checkpoint only exports).
    batches = (
        _batches(config, start * accumulation, accelerator.process_index, accelerator.num_processes)
        if start < config.steps
        else iter(())
    )
    log = LossLog(output, start, accelerator.is_main_process)
    model.train()
    bar = tqdm(total=config.steps, initial=start, desc="train renderer", disable=not accelerator.is_main_process)
    for step in range(start, config.steps):
        totals: dict[str, float] = {}
        for _ in range(accumulation):
            batch = {key: value.to(accelerator.device) for key, value in next(batches).items()}
            # The pixel renderer at the model's temperature (what the model started as), on the same batch: the
            # learned renderer's gain over it is a low-noise measure of progress.
            temperature = accelerator.unwrap_model(model).temperature.detach().clone()
            with torch.no_grad():
                pixel = render_frames(batch["image"], batch["flow"], temperature * batch["metric"]).clamp(0.0, 1.0)
            with accelerator.accumulate(model):
                frames = model(batch["image"], batch["flow"], batch["metric"])
                terms = render_loss_terms(
                    frames.float(), batch["target"], config.ssim_weight, config.gradient_weight, perceptual,
                    config.perceptual_weight, config.log_mse_weight,
                )  # fmt: skip
                accelerator.backward(terms.total)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            extra = {
                "l1": terms.l1, "ssim": terms.ssim, "gradient": terms.gradient, "log_mse": terms.log_mse,
                "temperature": temperature,
                "psnr": -10.0 * terms.log_mse, "psnr_pixel": psnr(pixel, batch["target"]),
            }  # fmt: skip
            if terms.perceptual is not None:
                extra["perceptual"] = terms.perceptual
            for name, value in {"loss": terms.total, **extra}.items():
                totals[name] = totals.get(name, 0.0) + accelerator.gather(value.detach()).mean().item() / accumulation
        learning_rate = lr_scheduler.get_last_lr()[0]
        lr_scheduler.step()
        ema.step(accelerator.unwrap_model(model).parameters())
        if not math.isfinite(totals["loss"]):
            raise RuntimeError(f"loss is {totals['loss']} at step {step + 1}; lower the learning rate")
        log.write({"step": step + 1, **totals, "lr": learning_rate})
        bar.set_postfix(loss=f"{totals['loss']:.4f}", psnr=f"{totals['psnr']:.2f}")
        bar.update()
        if (step + 1) % config.checkpoint_every == 0 or step + 1 == config.steps:
            save_checkpoint(accelerator, output, step + 1)
    bar.close()

    accelerator.wait_for_everyone()
    export = output / EXPORT_NAME
    if accelerator.is_main_process:
        ema_copy(accelerator.unwrap_model(model), ema).save_pretrained(export)
    accelerator.wait_for_everyone()
    return export
