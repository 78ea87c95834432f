"""Learned image-based renderer (paper, section 3.3): softmax splatting of a feature pyramid plus a synthesis net.

A small encoder turns the still image into feature maps at ``num_scales`` scales (full, 1/2, 1/4, ...). Each
scale is forward-warped by the frame's flow, resized to that scale, with softmax splatting whose log-weights are
``temperature * W(p)``, W(p) = mean_t |F_t(p)| in pixels and ``temperature`` a learnable scalar (1 / pixels). The
image itself is splatted alongside the full-scale features with the same weights and its holes are filled with the
pull-push pyramid: that is exactly the pixel renderer (``rendering.render_frames``). A U-Net-like decoder reads the
splatted pyramid, the hole masks and that base frame, and predicts a residual added to the base frame.

The decoder's output convolution starts at zero, so an untrained model *is* the pixel softmax-splatting +
pull-push renderer with metric ``initial_temperature * W``: zero motion reproduces the image and an integer shift
the shifted image from initialisation, and training can only move away from that renderer where it helps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from ..errors import GIDInputError
from ..rendering.fill import pull_push_fill
from ..rendering.splatting import splat

# Four scales (full to 1/8): the 1/8 level sees far enough to fill disocclusions, and the full-resolution levels,
# where most of the cost is, stay narrow (benchmarks/bench_renderer.py: 150 frames at 256x160 and 512x320 within
# the 8 s / 30 s budgets on 2 CPU threads).
DEFAULT_SCALE_CHANNELS = (8, 16, 32, 64)


def check_render_inputs(image: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor) -> None:
    """Raise GIDInputError unless image (B|1, 3, H, W), flow (B, 2, H, W) and metric (B|1, 1, H, W) fit together."""
    if image.dim() != 4 or image.shape[1] != 3 or flow.dim() != 4 or flow.shape[1] != 2:
        raise GIDInputError(
            f"expected image (B, 3, H, W) and flow (B, 2, H, W), got {tuple(image.shape)} and {tuple(flow.shape)}"
        )
    if metric.dim() != 4 or metric.shape[1] != 1:
        raise GIDInputError(f"expected metric (B, 1, H, W), got {tuple(metric.shape)}")
    batch, size = flow.shape[0], flow.shape[-2:]
    for name, tensor in (("image", image), ("metric", metric)):
        if tensor.shape[0] not in (1, batch) or tensor.shape[-2:] != size:
            raise GIDInputError(
                f"{name} {tuple(tensor.shape)} does not fit flow {tuple(flow.shape)}: it needs batch 1 or "
                f"{batch} and size {tuple(size)}"
            )


def resize_flow(flow: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, 2, H, W) pixels -> (B, 2, h, w) pixels of the smaller grid: area-averaged, x scaled by w / W, y by h / H."""
    height, width = flow.shape[-2:]
    scale = flow.new_tensor([size[1] / width, size[0] / height]).view(1, 2, 1, 1)
    return F.interpolate(flow, size=size, mode="area") * scale


def conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """Two 3x3 convolutions with SiLU; the first may downsample by ``stride``."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1),
        nn.SiLU(),
        nn.Conv2d(out_channels, out_channels, 3, padding=1),
        nn.SiLU(),
    )


class SplatRenderer(ModelMixin, ConfigMixin):
    """Feature-pyramid softmax-splatting renderer: (image, flow, W) -> frame.

    At initialisation (output layer zero) it equals ``render_frames(image, flow, initial_temperature * W)``.
    The temperature is the scalar parameter ``self.temperature`` (trained and saved with the weights; the config
    keeps only its initial value); it is not constrained, so training could even put still pixels in front.

    Precision: splatting and the pull-push fill run in float32 (float64 for a float64 model) with autocast off:
    softmax weights reach exp(-30), which underflows in fp16, and their normalisation divides by small sums. The
    encoder and decoder run in the model's dtype (or under autocast); the output has the image's dtype.

    Args (the config):
        scale_channels: feature channels of the encoder (and decoder) at each scale, full resolution first; its
            length is the number of scales, each half the size of the previous one.
        initial_temperature: initial softmax temperature in 1 / pixels; log-weights are temperature * W.
    """

    @register_to_config
    def __init__(self, scale_channels: tuple[int, ...] = DEFAULT_SCALE_CHANNELS, initial_temperature: float = 2.0):
        super().__init__()
        if not scale_channels or min(scale_channels) < 1:
            raise GIDInputError(f"scale_channels must be a non-empty tuple of positive widths, got {scale_channels}")
        widths = tuple(scale_channels)
        self.temperature = nn.Parameter(torch.tensor(float(initial_temperature)))
        self.encoder = nn.ModuleList(
            conv_block(3 if level == 0 else widths[level - 1], width, stride=1 if level == 0 else 2)
            for level, width in enumerate(widths)
        )
        # Decoder block at each level reads: the upsampled coarser decoder output (none at the coarsest), the
        # splatted features, their valid mask and, at full scale, the pull-push-filled splatted image.
        self.decoder = nn.ModuleList()
        for level, width in enumerate(widths):
            coarser = widths[level + 1] if level + 1 < len(widths) else 0
            image_channels = 3 if level == 0 else 0
            self.decoder.append(conv_block(coarser + width + 1 + image_channels, width))
        self.conv_out = nn.Conv2d(widths[0], 3, 3, padding=1)
        # Zero residual: the untrained model is the pixel renderer (module docstring).
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def encode(self, image: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> one (B, C_l, ceil(H / 2**l), ceil(W / 2**l)) feature map per scale l."""
        features, hidden = [], image.to(self.dtype) * 2.0 - 1.0
        for block in self.encoder:
            hidden = block(hidden)
            features.append(hidden)
        return features

    def forward(self, image: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor) -> torch.Tensor:
        """Render frames.

        Args:
            image: (B, 3, H, W) or (1, 3, H, W) float in [0, 1]; one image is encoded once and shared by all flows.
            flow: (B, 2, H, W) displacement in pixels, x first, from the image (frame 0) to each frame.
            metric: (B, 1, H, W) or (1, 1, H, W) W(p) = mean_t |F_t(p)| in pixels over the whole motion texture.

        Returns:
            (B, 3, H, W) frames in [0, 1], in the image's dtype.
        """
        check_render_inputs(image, flow, metric)
        return self._render(image, self.encode(image), flow, metric)

    def render(
        self, image: torch.Tensor, features: list[torch.Tensor], flow: torch.Tensor, metric: torch.Tensor
    ) -> torch.Tensor:
        """forward() with the image's features already computed by ``encode(image)``: a loop rendered chunk by
        chunk encodes its image once. Same arguments and result as forward; features as encode returns them."""
        check_render_inputs(image, flow, metric)
        if len(features) != len(self.encoder) or features[0].shape[-2:] != image.shape[-2:]:
            raise GIDInputError(f"features do not come from encode() of this {tuple(image.shape)} image")
        return self._render(image, features, flow, metric)

    def _render(
        self, image: torch.Tensor, features: list[torch.Tensor], flow: torch.Tensor, metric: torch.Tensor
    ) -> torch.Tensor:
        batch = flow.shape[0]
        features = [level.expand(batch, -1, -1, -1) for level in features]
        base, warped, valids = self._splat_pyramid(image.expand(batch, -1, -1, -1), features, flow, metric)

        hidden = None
        for level in reversed(range(len(features))):
            inputs = [warped[level].to(self.dtype), valids[level].to(self.dtype)]
            if hidden is not None:
                hidden = F.interpolate(hidden, size=inputs[0].shape[-2:], mode="bilinear", align_corners=False)
                inputs.insert(0, hidden)
            hidden = self.decoder[level](torch.cat(inputs, dim=1))
        residual = self.conv_out(hidden).to(base.dtype)
        # base is a convex combination of image pixels, so the clamp is inactive at initialisation (later it stops
        # gradients only where the residual overshoots [0, 1]).
        return (base + residual).clamp(0.0, 1.0).to(image.dtype)

    def _splat_pyramid(
        self, image: torch.Tensor, features: list[torch.Tensor], flow: torch.Tensor, metric: torch.Tensor
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        """Softmax-splat every scale in float32, the image alongside the full-scale features, and fill its holes.

        Returns the (B, 3, H, W) float32 (or float64) pull-push-filled splatted image (the pixel renderer's
        frame), and per scale the (B, C_l, h_l, w_l) splatted features (at full scale followed by that frame) and
        the (B, 1, h_l, w_l) bool valid masks.
        """
        warped, valids = [], []
        # float32, or float64 for a float64 model.
        precision = torch.promote_types(features[0].dtype, torch.float32)
        with torch.autocast(flow.device.type, enabled=False):
            flow, log_weights = flow.to(precision), self.temperature.to(precision) * metric.to(precision)
            for level, feature in enumerate(features):
                values = feature.to(precision)
                if level == 0:
                    values = torch.cat([image.to(precision), values], dim=1)
                    level_flow, level_weights = flow, log_weights
                else:
                    size = feature.shape[-2:]
                    level_flow = resize_flow(flow, size)
                    level_weights = F.interpolate(log_weights, size=size, mode="area")
                out, valid = splat(values, level_flow, level_weights, mode="softmax", return_valid=True)
                warped.append(out)
                valids.append(valid)
            base = pull_push_fill(warped[0][:, :3], valids[0])
        warped[0] = torch.cat([warped[0][:, 3:], base], dim=1)
        return base, warped, valids
