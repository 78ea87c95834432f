"""Frequency-coordinated latent denoiser (paper, section 3.2).

The model denoises the latents of a whole spectral volume at once, (B, K, 4, h, w): one 4-channel latent per
frequency slice. Its 2-D spatial layers (diffusers' U-Net blocks) see each slice on its own, K folded into the
batch as (B*K, C, h, w); they know which slice they see through a frequency embedding added to the timestep
embedding. Frequency attention layers then reshape to (B*h*w, K, C) and attend across the K slices at every
location, so the slices of one sample agree with each other.

Training follows the paper's two stages: train with ``frequency_attention=False`` (a per-slice model), then load
those weights into a model with ``frequency_attention=True`` (its extra layers start as the identity, see
``FrequencyAttention``) and fine-tune only them (``freeze_except_frequency_attention``).

Inputs are normalised: ``sample`` is the (noisy) VAE latent of a ``SpectralNormalizer``-normalised spectrum,
``image`` the RGB still in [-1, 1] at 8x the latent size. The model predicts whatever its training taught it
(epsilon or v); which one is the scheduler's ``prediction_type`` and travels in the scheduler config, not here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention_processor import Attention
from diffusers.models.controlnets.controlnet import ControlNetConditioningEmbedding
from diffusers.models.embeddings import SinusoidalPositionalEmbedding, TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.unets.unet_2d_blocks import UNetMidBlock2D, get_down_block, get_up_block
from diffusers.utils import BaseOutput
from torch import nn

from ..errors import GIDInputError
from ..spectral.transform import SpectralNormalizer

# Channels of the motion-mask condition: the fraction of each pixel painted "moves", and painted "stays still".
MASK_CHANNELS = 2


@dataclass
class FrequencyUNetOutput(BaseOutput):
    """sample: (B, K, latent_channels, h, w), the model's prediction for every frequency slice."""

    sample: torch.Tensor


def slices_to_frequency_tokens(hidden: torch.Tensor, num_frequencies: int) -> torch.Tensor:
    """(B*K, C, h, w) slice-major feature maps -> (B*h*w, K, C): one length-K sequence per batch item and location."""
    slices, channels, height, width = hidden.shape
    batch = slices // num_frequencies
    return hidden.reshape(batch, num_frequencies, channels, height, width).permute(0, 3, 4, 1, 2).reshape(
        batch * height * width, num_frequencies, channels
    )


def frequency_tokens_to_slices(tokens: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Inverse of slices_to_frequency_tokens: (B*h*w, K, C) -> (B*K, C, h, w)."""
    locations, num_frequencies, channels = tokens.shape
    batch = locations // (height * width)
    return tokens.reshape(batch, height, width, num_frequencies, channels).permute(0, 3, 4, 1, 2).reshape(
        batch * num_frequencies, channels, height, width
    )


class FrequencyAttention(nn.Module):
    """Residual self-attention across the K frequency slices at each location.

    x + Attention(PE_k + LayerNorm(x)) over sequences of length K, PE_k a fixed sinusoidal frequency-position
    embedding. The attention's output projection starts at zero, so a freshly built layer is exactly the identity:
    inserting it into a trained per-slice model leaves that model's outputs unchanged until fine-tuning moves it.
    """

    def __init__(self, channels: int, num_frequencies: int, head_dim: int, eps: float = 1e-5):
        super().__init__()
        self.norm = nn.LayerNorm(channels, eps=eps)
        self.position = SinusoidalPositionalEmbedding(channels, max_seq_length=num_frequencies)
        self.attention = Attention(channels, heads=channels // head_dim, dim_head=head_dim, bias=True)
        nn.init.zeros_(self.attention.to_out[0].weight)
        nn.init.zeros_(self.attention.to_out[0].bias)

    def forward(self, hidden: torch.Tensor, num_frequencies: int) -> torch.Tensor:
        """(B*K, C, h, w) -> same shape."""
        tokens = slices_to_frequency_tokens(hidden, num_frequencies)
        attended = self.attention(self.position(self.norm(tokens)))
        return hidden + frequency_tokens_to_slices(attended, *hidden.shape[-2:])


class ConditionAdapter(nn.Module):
    """Maps one level's conditions (B, C_in, h, w) to an additive (B, width, h, w) term of the U-Net's hidden state.

    GroupNorm (the encoder's features are O(1-10) and differently scaled per channel), 1x1 conv, SiLU, 3x3 conv;
    the last conv starts at zero, so a new adapter adds exactly nothing.
    """

    def __init__(self, in_channels: int, width: int, norm_groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(math.gcd(norm_groups, in_channels), in_channels, eps=1e-5)
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1)
        self.act = nn.SiLU()
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, condition: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.conv1(self.norm(condition))))


class MaskAdapter(nn.Module):
    """Maps one level's pooled motion mask (B, 2, h, w) to an additive (B, width, h, w) term of the hidden state.

    Two bias-free 3x3 convs with SiLU (SiLU(0) = 0) and a bias-free, zero-initialised 1x1 conv: an all-unknown
    mask (all zero) adds exactly zero whatever the weights, so a model given these adapters computes bit for bit
    what it did without a mask, before and after they are trained.
    """

    def __init__(self, width: int, hidden_channels: int = 32):
        super().__init__()
        self.conv1 = nn.Conv2d(MASK_CHANNELS, hidden_channels, kernel_size=3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(hidden_channels, hidden_channels, kernel_size=3, padding=1, bias=False)
        self.act = nn.SiLU()
        self.conv_out = nn.Conv2d(hidden_channels, width, kernel_size=1, bias=False)
        nn.init.zeros_(self.conv_out.weight)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.act(self.conv2(self.act(self.conv1(mask)))))


class FrequencyUNet(ModelMixin, ConfigMixin):
    """Latent U-Net over spectral volumes: 2-D blocks per slice, optional attention across slices.

    Conditioning: the image goes through a small trainable encoder (strided convs down to the latent size, the
    ControlNet conditioning encoder) whose ``image_embedding_channels`` output is concatenated to every slice's
    noisy latent. For classifier-free guidance, ``condition_mask[b] = False`` replaces sample b's image embedding
    by a learned, spatially constant null embedding (a zero image would be a valid mid-grey photo; the null
    embedding is not). Training drops the condition by passing a random mask, e.g.
    ``torch.rand(B, generator=g) >= 0.1``; guidance runs the batch twice, once with the mask all False.

    Optional conditions, each through a ``ConditionAdapter`` per U-Net level whose output is added to the hidden
    state entering that level (zero-initialised, so adding them to a trained model changes nothing until
    fine-tuning moves them): frozen pretrained image features (dropped with the image by ``condition_mask``), and
    a motion mask painted by the user (kept in both guidance passes: it is what the user asks for, not what the
    photo shows). They are computed once per image and shared by its K slices.

    Args (the config):
        num_frequencies: K, slices per spectral volume.
        latent_channels: channels of one slice's latent (the spectral VAE's latent_channels).
        image_embedding_channels: channels of the encoded image concatenated to each slice.
        image_encoder_channels: widths of the image encoder; it downsamples by 2 ** (len - 1), which must match
            the spectral VAE's factor (8 with the default four entries).
        block_out_channels, down_block_types, up_block_types, layers_per_block: the U-Net, as in diffusers'
            UNet2DModel; it downsamples latents by 2 ** (len(block_out_channels) - 1).
        attention_head_dim: head size of the spatial self-attention blocks.
        norm_num_groups: GroupNorm groups of the U-Net blocks; must divide every width.
        mid_block_attention: spatial self-attention in the middle block.
        frequency_attention: build the frequency attention layers (False: a per-slice model, stage 1).
        frequency_attention_levels: U-Net levels (0 = the outermost, at the latent resolution) whose down block
            and up block are each followed by a frequency attention layer; the middle block always gets one when
            enabled. Down blocks end by downsampling and up blocks by upsampling (but the innermost and outermost
            ones), so the layer after down block i sees level i + 1's resolution, the one after up block i level
            i - 1's. The defaults put seven layers at every level: for 32x20 latents, after down blocks at 16x10,
            8x5, 8x5, after the middle block at 8x5 and after up blocks at 16x10, 32x20, 32x20.
        frequency_attention_head_dim: head size of the frequency attention layers.
        image_feature_channels: channels of the frozen image encoder's feature maps, one per U-Net level, at that
            level's resolution (models.image_encoder: strides 8, 16, 32 of the still = levels 0, 1, 2 with the
            default VAE); None: no pretrained features. Each level adds a ``ConditionAdapter`` of its features.
        image_feature_encoder: the fingerprint of the encoder those features come from (EfficientNetLiteEncoder's
            config); a pipeline or a feature cache with another encoder is refused.
        motion_mask: take a 2-channel motion-mask condition (the fraction of each pixel painted "moves" and
            "stays still"; 0 and 0 is unknown, so an all-zero mask is the ordinary prior), pooled to every level
            and fed to its adapter.
        motion_mask_adapters: also feed the pooled mask to a MaskAdapter per level (needs motion_mask).
        normalization_scales, normalization_percentile: the SpectralNormalizer the model's training spectra were
            normalised with (K scales in pixels at the model resolution); set at export by training, None for an
            untrained model. They travel in the config so that a checkpoint carries what its outputs mean.
    """

    @register_to_config
    def __init__(
        self,
        num_frequencies: int = 16,
        latent_channels: int = 4,
        image_embedding_channels: int = 8,
        image_encoder_channels: tuple[int, ...] = (16, 32, 64, 128),
        block_out_channels: tuple[int, ...] = (32, 64, 128),
        down_block_types: tuple[str, ...] = ("DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"),
        up_block_types: tuple[str, ...] = ("AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"),
        layers_per_block: int = 1,
        attention_head_dim: int = 32,
        norm_num_groups: int = 16,
        mid_block_attention: bool = True,
        frequency_attention: bool = True,
        frequency_attention_levels: tuple[int, ...] = (0, 1, 2),
        frequency_attention_head_dim: int = 32,
        image_feature_channels: tuple[int, ...] | None = None,
        image_feature_encoder: str | None = None,
        motion_mask: bool = False,
        motion_mask_adapters: bool = False,
        normalization_scales: tuple[float, ...] | None = None,
        normalization_percentile: float = 95.0,
    ):
        super().__init__()
        num_levels = len(block_out_channels)
        if not len(down_block_types) == len(up_block_types) == num_levels:
            raise GIDInputError(
                f"need one down and one up block type per entry of block_out_channels {tuple(block_out_channels)}, "
                f"got {len(down_block_types)} and {len(up_block_types)}"
            )
        if frequency_attention and not set(frequency_attention_levels) <= set(range(num_levels)):
            raise GIDInputError(
                f"frequency_attention_levels {tuple(frequency_attention_levels)} must be levels of the U-Net, "
                f"0..{num_levels - 1}"
            )
        if frequency_attention and any(width % frequency_attention_head_dim for width in block_out_channels):
            raise GIDInputError(
                f"frequency_attention_head_dim {frequency_attention_head_dim} must divide every U-Net width "
                f"{tuple(block_out_channels)}"
            )
        if image_feature_channels is not None and len(image_feature_channels) != num_levels:
            raise GIDInputError(
                f"image_feature_channels {tuple(image_feature_channels)} must give one feature map per U-Net level "
                f"({num_levels})"
            )
        if motion_mask_adapters and not motion_mask:
            raise GIDInputError("motion_mask_adapters need motion_mask=True")
        if normalization_scales is not None:
            SpectralNormalizer(tuple(normalization_scales), normalization_percentile)  # validates them
            if len(normalization_scales) != num_frequencies:
                raise GIDInputError(
                    f"{len(normalization_scales)} normalization scales for K = {num_frequencies} frequencies"
                )
        width = block_out_channels[0]
        embedding_dim = 4 * width

        self.image_encoder = ControlNetConditioningEmbedding(
            image_embedding_channels, conditioning_channels=3, block_out_channels=tuple(image_encoder_channels)
        )
        # ControlNet zero-initialises the output to leave a pretrained model untouched; ours trains from scratch.
        self.image_encoder.conv_out.reset_parameters()
        self.null_image_embedding = nn.Parameter(torch.zeros(image_embedding_channels))

        # One sinusoidal projection for both t and k (as UNet2DModel's "timestep" class embedding), separate MLPs.
        self.time_proj = Timesteps(width, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(width, embedding_dim)
        self.frequency_embedding = TimestepEmbedding(width, embedding_dim)

        self.conv_in = nn.Conv2d(latent_channels + image_embedding_channels, width, kernel_size=3, padding=1)
        block_args = {
            "temb_channels": embedding_dim,
            "resnet_eps": 1e-5,
            "resnet_act_fn": "silu",
            "resnet_groups": norm_num_groups,
            "attention_head_dim": attention_head_dim,
        }
        self.down_blocks = nn.ModuleList()
        for level, block_type in enumerate(down_block_types):
            self.down_blocks.append(get_down_block(
                block_type, num_layers=layers_per_block, in_channels=block_out_channels[max(level - 1, 0)],
                out_channels=block_out_channels[level], add_downsample=level < num_levels - 1, downsample_padding=1,
                **block_args,
            ))
        self.mid_block = UNetMidBlock2D(
            in_channels=block_out_channels[-1], temb_channels=embedding_dim, resnet_eps=1e-5, resnet_act_fn="silu",
            resnet_groups=norm_num_groups, attention_head_dim=attention_head_dim, add_attention=mid_block_attention,
        )
        self.up_blocks = nn.ModuleList()
        for index, block_type in enumerate(up_block_types):
            level = num_levels - 1 - index
            self.up_blocks.append(get_up_block(
                block_type, num_layers=layers_per_block + 1, in_channels=block_out_channels[max(level - 1, 0)],
                out_channels=block_out_channels[level], prev_output_channel=block_out_channels[min(level + 1,
                num_levels - 1)], add_upsample=level > 0, **block_args,
            ))
        self.conv_norm_out = nn.GroupNorm(norm_num_groups, width, eps=1e-5)
        self.conv_act = nn.SiLU()
        self.conv_out = nn.Conv2d(width, latent_channels, kernel_size=3, padding=1)

        # One adapter per level when the model takes pretrained features or a motion mask; absent otherwise.
        self.condition_adapters = nn.ModuleList()
        if image_feature_channels is not None or motion_mask:
            for level in range(num_levels):
                features = image_feature_channels[level] if image_feature_channels else 0
                in_channels = features + (MASK_CHANNELS if motion_mask else 0)
                # Level l > 0 is entered by down block l - 1's output, which still has that block's width.
                self.condition_adapters.append(
                    ConditionAdapter(in_channels, block_out_channels[max(level - 1, 0)], norm_num_groups)
                )

        # Level l's width as for the condition adapters; empty (and absent from checkpoints) without the option.
        self.mask_adapters = nn.ModuleList()
        if motion_mask_adapters:
            self.mask_adapters.extend(MaskAdapter(block_out_channels[max(level - 1, 0)]) for level in range(num_levels))

        # Keyed "down_<level>", "mid", "up_<level>"; empty (and absent from checkpoints) for a per-slice model.
        self.frequency_layers = nn.ModuleDict()
        if frequency_attention:
            def layer(channels: int) -> FrequencyAttention:
                return FrequencyAttention(channels, num_frequencies, frequency_attention_head_dim)

            for level in sorted(set(frequency_attention_levels)):
                self.frequency_layers[f"down_{level}"] = layer(block_out_channels[level])
                self.frequency_layers[f"up_{level}"] = layer(block_out_channels[level])
            self.frequency_layers["mid"] = layer(block_out_channels[-1])

    @classmethod
    def from_per_slice(cls, per_slice: FrequencyUNet) -> FrequencyUNet:
        """Stage 2: a model with frequency attention that holds a per-slice model's weights and computes the same.

        Use this rather than ``from_pretrained(stage1_dir, frequency_attention=True)``: diffusers loads under
        ``no_init_weights``, which leaves weights missing from the checkpoint uninitialised (garbage, not zero).
        """
        model = cls.from_config({**per_slice.config, "frequency_attention": True})
        model.load_state_dict(per_slice.state_dict(), strict=False)  # the same config: only frequency_layers missing
        return model.to(device=per_slice.device, dtype=per_slice.dtype)

    @classmethod
    def with_conditions(
        cls,
        trained: FrequencyUNet,
        image_feature_channels: tuple[int, ...] | None,
        image_feature_encoder: str | None,
        motion_mask: bool,
        motion_mask_adapters: bool = False,
    ) -> FrequencyUNet:
        """A trained model given new conditions (pretrained features, a motion mask) that computes what it did.

        Weights the trained model has are copied (an adapter it already has too, when its input is unchanged);
        new adapters start at zero. As with from_per_slice, this avoids from_pretrained's uninitialised weights.
        """
        # "_use_default_values" lists the keys the trained model's config file lacked; from_config would reset them.
        config = {k: v for k, v in trained.config.items() if k != "_use_default_values"}
        model = cls.from_config({
            **config, "image_feature_channels": image_feature_channels,
            "image_feature_encoder": image_feature_encoder, "motion_mask": motion_mask,
            "motion_mask_adapters": motion_mask_adapters,
        })  # fmt: skip
        own = model.state_dict()
        kept = {k: v for k, v in trained.state_dict().items() if k in own and own[k].shape == v.shape}
        model.load_state_dict(kept, strict=False)
        return model.to(trained.device) if trained.dtype == model.dtype else model.to(trained.device, trained.dtype)

    @property
    def takes_image_features(self) -> bool:
        return self.config.image_feature_channels is not None

    @property
    def normalizer(self) -> SpectralNormalizer:
        """The normalisation of the spectra this model was trained on (GIDInputError for an untrained model)."""
        if self.config.normalization_scales is None:
            raise GIDInputError("this U-Net has no normalization_scales in its config: it was never trained")
        return SpectralNormalizer(tuple(self.config.normalization_scales), self.config.normalization_percentile)

    @property
    def latent_downsampling(self) -> int:
        """Factor between the latent and the U-Net's coarsest resolution; latent sizes must be multiples of it."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    @property
    def image_downsampling(self) -> int:
        """Factor between the conditioning image and the latent (8 by default, as the spectral VAE)."""
        return 2 ** (len(self.config.image_encoder_channels) - 1)

    def freeze_except_frequency_attention(self) -> list[nn.Parameter]:
        """Stage 2 of training: freeze every layer but the frequency attention; returns the trainable parameters."""
        return self._train_only(self.frequency_layers, "frequency attention layers (frequency_attention=False)")

    def freeze_except_mask_adapters(self) -> list[nn.Parameter]:
        """Train only the motion-mask adapters on top of a finished model; returns the trainable parameters."""
        return self._train_only(self.mask_adapters, "motion-mask adapters (motion_mask_adapters=False)")

    def _train_only(self, part: nn.Module, what: str) -> list[nn.Parameter]:
        if not len(part):
            raise GIDInputError(f"this model has no {what} to train")
        self.requires_grad_(False)
        part.requires_grad_(True)
        return list(part.parameters())

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        image: torch.Tensor,
        condition_mask: torch.Tensor | None = None,
        frequency_indices: torch.Tensor | None = None,
        image_features: Sequence[torch.Tensor] | None = None,
        motion_mask: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> FrequencyUNetOutput | tuple[torch.Tensor]:
        """Denoise all frequency slices of a batch of latent spectral volumes.

        Args:
            sample: (B, K, latent_channels, h, w) noisy latents; h and w multiples of ``latent_downsampling``.
            timestep: diffusion step, a number, a 0-d tensor or a (B,) tensor.
            image: (B, 3, h * f, w * f) conditioning RGB in [-1, 1], f = ``image_downsampling``.
            condition_mask: optional (B,) bool; False replaces that sample's image by the null condition.
            frequency_indices: optional (B, K') long, which frequencies the K' slices of ``sample`` are (per-slice
                models only: training on a random subset of slices costs K' / K of a full step and sees K / K'
                times as many images for the same compute). Default: all K in order.
            image_features: the frozen encoder's feature maps of the (un-normalised) still, one (B, C_l, h_l, w_l)
                per level (h_l = h / 2^l); required by a model with image_feature_channels.
            motion_mask: optional (B, 2, h * f, w * f) fractions in [0, 1] painted "moves" and "stays still" (at the
                image's size); None is all unknown. Only for a model with motion_mask.
            return_dict: return a FrequencyUNetOutput rather than a tuple.

        Returns:
            FrequencyUNetOutput with sample (B, K, latent_channels, h, w).
        """
        self._check_inputs(sample, image, condition_mask, frequency_indices)
        batch, num_frequencies, _, height, width = sample.shape

        timesteps = torch.as_tensor(timestep, device=sample.device)
        if timesteps.ndim > 1 or timesteps.numel() not in (1, batch):
            raise GIDInputError(f"timestep must be a number or a ({batch},) tensor, got shape {tuple(timesteps.shape)}")
        timesteps = timesteps.reshape(-1).expand(batch)
        if frequency_indices is None:
            frequency_indices = torch.arange(num_frequencies, device=sample.device).expand(batch, -1)
        time_embedding = self.time_embedding(self.time_proj(timesteps).to(self.dtype))  # (B, D)
        frequency_embedding = self.frequency_embedding(
            self.time_proj(frequency_indices.reshape(-1).to(sample.device)).to(self.dtype)
        ).unflatten(0, (batch, num_frequencies))  # (B, K, D)
        embedding = (time_embedding[:, None] + frequency_embedding).flatten(0, 1)  # (B*K, D)

        condition = self.image_encoder(image.to(self.dtype))  # (B, C_img, h, w)
        if condition_mask is not None:
            null = self.null_image_embedding.view(1, -1, 1, 1)
            condition = torch.where(condition_mask.view(-1, 1, 1, 1), condition, null)
        condition = condition.unsqueeze(1).expand(-1, num_frequencies, -1, -1, -1)
        hidden = self.conv_in(torch.cat([sample.to(self.dtype), condition], dim=2).flatten(0, 1))
        terms = self._condition_terms(batch, height, width, condition_mask, image_features, motion_mask)
        terms = [term.repeat_interleave(num_frequencies, dim=0) for term in terms]  # (B*K, C_l, h_l, w_l)
        if terms:
            hidden = hidden + terms[0]

        skips = (hidden,)
        for level, block in enumerate(self.down_blocks):
            hidden, block_skips = block(hidden_states=hidden, temb=embedding)
            if f"down_{level}" in self.frequency_layers:
                hidden = self.frequency_layers[f"down_{level}"](hidden, num_frequencies)
                block_skips = (*block_skips[:-1], hidden)  # the block's last skip is its output
            if level + 1 < len(terms):  # the block downsampled to the next level's resolution
                hidden = hidden + terms[level + 1]
                block_skips = (*block_skips[:-1], hidden)
            skips += block_skips
        hidden = self.mid_block(hidden, embedding)
        if "mid" in self.frequency_layers:
            hidden = self.frequency_layers["mid"](hidden, num_frequencies)
        for index, block in enumerate(self.up_blocks):
            level = len(self.up_blocks) - 1 - index
            block_skips, skips = skips[-len(block.resnets):], skips[: -len(block.resnets)]
            hidden = block(hidden, block_skips, embedding)
            if f"up_{level}" in self.frequency_layers:
                hidden = self.frequency_layers[f"up_{level}"](hidden, num_frequencies)
        hidden = self.conv_out(self.conv_act(self.conv_norm_out(hidden)))

        output = hidden.reshape(batch, num_frequencies, -1, height, width)
        return FrequencyUNetOutput(sample=output) if return_dict else (output,)

    def _condition_terms(
        self,
        batch: int,
        height: int,
        width: int,
        condition_mask: torch.Tensor | None,
        image_features: Sequence[torch.Tensor] | None,
        motion_mask: torch.Tensor | None,
    ) -> list[torch.Tensor]:
        """Each level's adapter output (B, C_l, h / 2^l, w / 2^l), C_l the width of the hidden state entering level
        l; empty for a model without conditions."""
        config = self.config
        if image_features is not None and not self.takes_image_features:
            raise GIDInputError("this U-Net takes no image features (image_feature_channels is None)")
        if motion_mask is not None and not config.motion_mask:
            raise GIDInputError("this U-Net takes no motion mask (it was not trained with one)")
        if not self.condition_adapters:
            return []
        levels = len(config.block_out_channels)
        if self.takes_image_features and (image_features is None or len(image_features) != levels):
            raise GIDInputError(
                f"this U-Net needs {levels} image feature maps from the encoder {config.image_feature_encoder}"
            )
        if motion_mask is not None:
            expected = (batch, MASK_CHANNELS, height * self.image_downsampling, width * self.image_downsampling)
            if tuple(motion_mask.shape) != expected:
                raise GIDInputError(f"motion_mask must have shape {expected}, got {tuple(motion_mask.shape)}")
        terms = []
        for level, adapter in enumerate(self.condition_adapters):
            size = (height // 2**level, width // 2**level)
            parts = []
            if self.takes_image_features:
                features = image_features[level]
                expected = (batch, config.image_feature_channels[level], *size)
                if tuple(features.shape) != expected:
                    raise GIDInputError(
                        f"image feature map {level} must have shape {expected}, got {tuple(features.shape)}"
                    )
                features = features.to(self.dtype)
                if condition_mask is not None:  # a dropped condition drops the photo's features too
                    features = features * condition_mask.view(-1, 1, 1, 1).to(features.dtype)
                parts.append(features)
            pooled = None
            if config.motion_mask:
                if motion_mask is None:
                    parts.append(torch.zeros(batch, MASK_CHANNELS, *size, device=self.device, dtype=self.dtype))
                else:
                    pooled = F.adaptive_avg_pool2d(motion_mask.to(self.dtype), size)
                    parts.append(pooled)
            term = adapter(torch.cat(parts, dim=1))
            if pooled is not None and self.mask_adapters:  # no mask: the adapter would add exactly zero
                term = term + self.mask_adapters[level](pooled)
            terms.append(term)
        return terms

    def _check_inputs(
        self,
        sample: torch.Tensor,
        image: torch.Tensor,
        condition_mask: torch.Tensor | None,
        frequency_indices: torch.Tensor | None,
    ) -> None:
        config = self.config
        num_slices = config.num_frequencies
        if frequency_indices is not None:
            if self.frequency_layers:
                raise GIDInputError("frequency_indices select slices of a per-slice model; this one attends across K")
            if (
                frequency_indices.ndim != 2
                or frequency_indices.dtype != torch.long
                or frequency_indices.shape[0] != sample.shape[0]
                or bool(((frequency_indices < 0) | (frequency_indices >= config.num_frequencies)).any())
            ):
                raise GIDInputError(
                    f"frequency_indices must be a (B, K') long tensor of indices in [0, {config.num_frequencies}), "
                    f"got {frequency_indices.dtype} of shape {tuple(frequency_indices.shape)}"
                )
            num_slices = frequency_indices.shape[1]
        expected = f"(B, {num_slices}, {config.latent_channels}, h, w)"
        if sample.ndim != 5 or sample.shape[1:3] != (num_slices, config.latent_channels):
            raise GIDInputError(f"sample must have shape {expected}, got {tuple(sample.shape)}")
        batch, _, _, height, width = sample.shape
        factor = self.latent_downsampling
        if height % factor or width % factor:
            raise GIDInputError(f"latent size {height}x{width} (h x w) must be a multiple of {factor} for this U-Net")
        image_size = (height * self.image_downsampling, width * self.image_downsampling)
        if image.ndim != 4 or image.shape[0] != batch or image.shape[1] != 3 or tuple(image.shape[2:]) != image_size:
            raise GIDInputError(
                f"image must have shape ({batch}, 3, {image_size[0]}, {image_size[1]}) for a sample of shape "
                f"{tuple(sample.shape)} ({self.image_downsampling}x the latent size), got {tuple(image.shape)}"
            )
        if condition_mask is not None and (condition_mask.dtype != torch.bool or condition_mask.shape != (batch,)):
            raise GIDInputError(
                f"condition_mask must be a ({batch},) bool tensor, got {condition_mask.dtype} of shape "
                f"{tuple(condition_mask.shape)}"
            )
