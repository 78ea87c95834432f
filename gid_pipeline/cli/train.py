"""``gid train``: train the learned models on prepared datasets with accelerate."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import GIDInputError
from .arguments import non_negative_float, pair, positive_float, positive_int, size

# The data entry that means procedural triples (gid train renderer); data.triples.PROCEDURAL, not imported here to
# keep ``gid --help`` free of the training stack.
PROCEDURAL = "procedural"


def _train(args: argparse.Namespace) -> None:
    # Imported here: only this command needs accelerate and the training code.
    import json

    from ..extras import require

    require("accelerate")

    from ..training import TrainConfig, train_unet, train_vae
    from ..training.train_renderer import RendererTrainConfig, train_renderer

    # Precedence: the saved run (on --resume) < --config < options given on the command line.
    values = TrainConfig.load(args.output / "run.json") if args.resume and (args.output / "run.json").is_file() else {}
    if args.config is not None:
        values.update(TrainConfig.load(args.config))
    if args.model_config is not None:
        try:
            values["model_config"] = json.loads(args.model_config)
        except json.JSONDecodeError as error:
            raise GIDInputError(f"--model-config must be a JSON object: {error}") from None
    fields = (
        "steps", "batch_size", "learning_rate", "warmup_steps", "mixed_precision", "gradient_accumulation_steps",
        "seed", "checkpoint_every", "ema_decay", "prediction_type", "condition_dropout", "stage", "num_workers",
        "augment", "photometric", "weights",
    )  # fmt: skip
    values.update({name: getattr(args, name) for name in fields if getattr(args, name) is not None})
    if args.motion_mask:
        values["motion_mask"] = True
    for name in ("motion_gain", "motion_tilt"):
        if getattr(args, name) is not None:
            values[name] = list(getattr(args, name))
    for name in ("mask_probability", "mask_edit_probability"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    for name in ("vae", "init_from", "image_encoder"):
        if getattr(args, name) is not None:
            values[name] = str(getattr(args, name))
    if args.data:
        values["data"] = [str(path) for path in args.data]
    values.update(model=args.model, output=str(args.output))
    if args.model == "renderer":
        for name in ("size", "clip_frames", "clip_fps", "reuse", "perceptual_weight", "log_mse_weight"):
            if getattr(args, name) is not None:
                values[name] = list(args.size) if name == "size" else getattr(args, name)
        if args.perceptual is not None:
            values["perceptual"] = str(args.perceptual)
        values.setdefault("data", [PROCEDURAL])
        export = train_renderer(RendererTrainConfig.from_dict(values), resume=args.resume)
    else:
        config = TrainConfig.from_dict(values)
        export = (train_vae if args.model == "vae" else train_unet)(config, resume=args.resume)
    print(f"wrote {export} (losses in {args.output / 'losses.jsonl'}, checkpoints in {args.output / 'checkpoints'})")


def register(commands: argparse._SubParsersAction) -> None:
    """Add train to the ``gid`` subcommands."""
    train = commands.add_parser(
        "train",
        help="train the spectral VAE, the frequency U-Net or the renderer (accelerate)",
        description="Train MODEL and export the EMA weights to OUTPUT/vae, OUTPUT/unet or OUTPUT/renderer (the VAE "
        "and U-Net with normalization.json; the U-Net also writes OUTPUT/scheduler). vae and unet train on "
        "datasets from gid prepare-data; renderer trains on (frame 0, frame t, flow, W) triples generated on the "
        "fly from procedural scenes (--data procedural, the default) and/or folders of videos (--data DIR, DIS "
        "flow). Options override --config, which overrides the defaults; the run is saved as OUTPUT/run.json, "
        "losses as OUTPUT/losses.jsonl, checkpoints under OUTPUT/checkpoints. Several GPUs: accelerate launch -m "
        "gid_pipeline.cli train ...",
    )
    train.add_argument(
        "model", choices=("vae", "unet", "renderer"), help="vae first, then unet with --vae OUTPUT/vae; renderer"
    )
    train.add_argument("-o", "--output", type=Path, required=True, help="run directory (new, or with --resume)")
    train.add_argument(
        "--data",
        type=Path,
        action="append",
        help=f"dataset directory; repeat to mix several (renderer: '{PROCEDURAL}' or a folder of videos)",
    )
    train.add_argument(
        "--weights",
        type=lambda text: [positive_float(part) for part in text.split(",")],
        help="mixing ratios of the --data sets, e.g. 0.3,0.7 (default: by size)",
    )
    train.add_argument("--config", type=Path, help="run config JSON (keys as in OUTPUT/run.json)")
    train.add_argument("--resume", action="store_true", help="continue the run in OUTPUT from its last checkpoint")
    train.add_argument("--vae", type=Path, help="unet: the trained VAE export (OUTPUT/vae of gid train vae; for "
                       "--stage motion_mask a checkpoint's vae folder will do)")  # fmt: skip
    train.add_argument(
        "--stage",
        choices=("per_slice", "frequency_attention", "motion_mask"),
        help="unet: per_slice from scratch (default), frequency_attention fine-tuning of --init-from, or "
        "motion_mask: train only new motion-mask adapters of the finished U-Net --init-from (its prior unchanged)",
    )
    train.add_argument(
        "--init-from",
        type=Path,
        help="start from this export: unet stage 2 (or more stage 1) from a stage-1 OUTPUT/unet; "
        "renderer fine-tuning from an OUTPUT/renderer",
    )
    train.add_argument(
        "--image-encoder",
        type=Path,
        help="unet: condition on this frozen image encoder's features (gid convert-encoder); its cached features "
        "(gid cache-features) are used when every --data set has them",
    )
    train.add_argument(
        "--motion-mask", action="store_true", help="unet: train the motion-mask condition (moves / still / unknown)"
    )
    train.add_argument(
        "--motion-gain", type=pair, help="vae/unet: motion amplitude augmentation, a gain log-uniform in LOW,HIGH"
    )
    train.add_argument(
        "--motion-tilt", type=pair, help="vae/unet: spectral tilt augmentation, bin k times k^a, a uniform in LOW,HIGH"
    )
    train.add_argument(
        "--mask-probability", type=non_negative_float, help="unet: share of samples shown a motion mask (0.5)"
    )
    train.add_argument(
        "--mask-edit-probability",
        type=non_negative_float,
        help="unet: share of masked samples whose target is edited to disagree with the photo (mask wins) (0)",
    )
    train.add_argument("--model-config", help="model constructor overrides as JSON, e.g. '{\"layers_per_block\": 2}'")
    train.add_argument("--steps", type=positive_int, help="optimizer steps (50000)")
    train.add_argument("--batch-size", type=positive_int, help="samples per process and micro-batch (8)")
    train.add_argument("--lr", dest="learning_rate", type=positive_float, help="AdamW learning rate (1e-4)")
    train.add_argument("--warmup-steps", type=int, help="linear warmup, then constant (500)")
    train.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), help="no (default), fp16, bf16")
    train.add_argument(
        "--grad-accum", dest="gradient_accumulation_steps", type=positive_int, help="micro-batches per step (1)"
    )
    train.add_argument("--seed", type=int, help="source of all randomness (0)")
    train.add_argument("--checkpoint-every", type=positive_int, help="save a checkpoint every N steps (1000)")
    train.add_argument("--ema-decay", type=non_negative_float, help="EMA decay of the exported weights (0.9999)")
    train.add_argument(
        "--prediction-type", choices=("epsilon", "v_prediction"), help="unet: what it predicts (v_prediction)"
    )
    train.add_argument(
        "--condition-dropout", type=non_negative_float, help="unet: P(drop the image), for guidance (0.1)"
    )
    train.add_argument("--num-workers", type=int, help="DataLoader workers per process (2)")
    train.add_argument("--no-augment", dest="augment", action="store_const", const=False, help="no flips or zoom")
    train.add_argument(
        "--photometric",
        type=non_negative_float,
        help="vae/unet: P(a random exposure, contrast, colour and haze change of the image) (0)",
    )
    train.add_argument("--size", type=size, help="renderer: triple size WIDTHxHEIGHT (256x160)")
    train.add_argument("--clip-frames", type=positive_int, help="renderer: frames per clip; t is one of them (30)")
    train.add_argument("--clip-fps", type=positive_float, help="renderer: their frame rate (6: 5-second clips)")
    train.add_argument("--reuse", type=positive_int, help="renderer: training batches that share a clip (8)")
    train.add_argument(
        "--perceptual", type=Path, help="renderer: local VGG-16 weights (safetensors) for a perceptual loss term"
    )
    train.add_argument("--perceptual-weight", type=non_negative_float, help="renderer: its weight (0.1)")
    train.add_argument(
        "--log-mse-weight",
        type=non_negative_float,
        help="renderer: weight of the mean log10(frame MSE) term, i.e. of -PSNR / 10 (0)",
    )
    train.set_defaults(run=_train)
