"""GIDPipeline: a still image in, its spectral volume (how every pixel oscillates) and a seamless loop out.

The pipeline samples and orchestrates; it owns no math. The latent spectral volume is sampled by the FrequencyUNet
with a diffusers scheduler (classifier-free guidance and motion self-guidance from ``guidance``), conditioned on
the photo and, when the U-Net was trained so, on the frozen ``image_encoder``'s features and a painted motion mask;
decoded slice by slice by the spectral autoencoder; denormalised with the statistics in the U-Net's config; resized
to the output resolution (displacements scaled). The volume is returned as predicted; frames are rendered by the
pipeline's ``player`` (gid_pipeline.player), which applies the playback controls (amplitude, speed, band, ...).

Resolutions (gid_pipeline.sizing): the model samples near its native pixel count (256x160) at the image's aspect
ratio; the video is rendered at the image's own size with its long side capped.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import logging, replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from .checks import check_number
from .components import check_image_encoder, is_component_entry, package_model_index
from .errors import GIDInputError
from .guidance import (
    PAPER_GUIDANCE_SCALE,
    alpha_sigma,
    classifier_free_guidance,
    from_epsilon,
    latent_gradient,
    predicted_sample,
    self_guidance_loss,
    self_guided_epsilon,
    to_epsilon,
)
from .limits import (
    MAX_GUIDANCE_SCALE,
    MAX_GUIDED_FILTER_EPS,
    MAX_GUIDED_FILTER_RADIUS,
    MAX_INFERENCE_STEPS,
    MAX_MOTION_CALIBRATION,
    MAX_NUM_FRAMES,
    MAX_SELF_GUIDANCE_SCALE,
    MIN_MOTION_CALIBRATION,
)
from .media.images import image_tensors
from .models.frequency_unet import FrequencyUNet
from .models.image_encoder import EfficientNetLiteEncoder
from .models.pooling_autoencoder import PoolingSpectralAutoencoder
from .models.renderer import SplatRenderer
from .models.spectral_vae import decode_latents, vae_downsampling
from .motion.mask import MaskInput, hold_still, to_motion_mask
from .outputs import GIDPipelineOutput, postprocess_frames
from .player import PlaybackControls, Player, loop_timing
from .sizing import DEFAULT_MAX_LONG_SIDE, NATIVE_SIZE, model_resolution, output_resolution
from .spectral.guided import DEFAULT_GUIDED_FILTER_EPS, guided_resize_spectrum, luma
from .spectral.transform import SpectralNormalizer, min_loop_frames, resize_spectrum
from .spectral.volume import SpectralVolume

logger = logging.get_logger(__name__)

OUTPUT_TYPES = ("pil", "np", "pt", "spectrum")

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from gid_pipeline import DEFAULT_CHECKPOINT, GIDPipeline, PlaybackControls, export_to_video

        >>> pipe = GIDPipeline.from_pretrained(DEFAULT_CHECKPOINT)
        >>> out = pipe("assets/examples/meadow.jpg", generator=torch.Generator().manual_seed(0), output_type="np")
        >>> export_to_video(out.frames[0], "meadow.mp4", fps=30)
        >>> out.spectral_volumes[0].save("meadow.safetensors")   # replay or poke it later, no diffusion needed
        >>> slow = pipe.player.render("assets/examples/meadow.jpg", out.spectral_volumes[0],
        ...                           PlaybackControls(speed=0.5, amplitude=2.0))
        ```
"""

PipelineImage = PIL.Image.Image | np.ndarray | torch.Tensor

# A Hub repo id: org/name (letters, digits, '-', '_', '.'), never an absolute or relative path of more parts.
_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")


class GIDPipeline(DiffusionPipeline):
    """Generative Image Dynamics (Li et al., CVPR 2024): a still image -> spectral volume -> seamless loop.

    Components:
        vae: the spectral autoencoder of 4-channel frequency slices: a KL VAE (AutoencoderKL,
            ``models.make_spectral_vae``) or the fixed ``models.PoolingSpectralAutoencoder``.
        unet: the FrequencyUNet denoiser; its config carries the normalisation statistics
            (``normalization_scales``, ``normalization_percentile``).
        scheduler: any diffusers scheduler of the DDPM family (DPMSolverMultistepScheduler with dpmsolver++ by
            default; DDIMScheduler needs clip_sample=False); its prediction_type says what the U-Net predicts.
        renderer: optional learned SplatRenderer; None renders with pixel softmax splatting.
        image_encoder: the frozen EfficientNetLiteEncoder whose features the U-Net is conditioned on; required by
            (and only by) a U-Net with image_feature_channels, and it must be the encoder that U-Net was trained
            with (its fingerprint).

    Config:
        model_size: (height, width) the models were trained at; sampling keeps its pixel count (model_resolution).
        default_guidance_scale: the guidance_scale used when a call gives none: the paper's by default, or the
            value a checkpoint was tuned at (its model card says how it was chosen).
        motion_calibration: a factor on every predicted displacement (1: as trained), fitted on real clips with
            ``gid calibrate`` to close the gap between the training world's motion scale and photographs'; it
            moves no pixel's rank, only how far all of them swing.
        mask_motion_calibration: the same for a sample given a painted motion mask (None: motion_calibration).
            Told where things move, the model stops hedging between moving and still and swings further than
            without a mask, so the brush has its own factor (fitted with benchmarks/bench_motion_brush.py).
        guided_filter_radius: 0 resizes the decoded volume bilinearly to the output grid; r > 0 resamples it with
            the photo as the guide of a guided filter of radius r model pixels (spectral.guided), so that motion
            decoded on 8x8 cells stops at the photo's edges.
        guided_filter_eps: that filter's ridge in squared grey levels (0-1); larger keeps fewer edges.
    """

    model_cpu_offload_seq = "image_encoder->unet->vae->renderer"
    _optional_components: ClassVar[list[str]] = ["renderer", "image_encoder"]
    _callback_tensor_inputs: ClassVar[list[str]] = ["latents"]

    def __init__(
        self,
        vae: AutoencoderKL | PoolingSpectralAutoencoder,
        unet: FrequencyUNet,
        scheduler: SchedulerMixin,
        renderer: SplatRenderer | None = None,
        image_encoder: EfficientNetLiteEncoder | None = None,
        model_size: tuple[int, int] | list[int] = NATIVE_SIZE,
        default_guidance_scale: float = PAPER_GUIDANCE_SCALE,
        motion_calibration: float = 1.0,
        mask_motion_calibration: float | None = None,
        guided_filter_radius: int = 0,
        guided_filter_eps: float = DEFAULT_GUIDED_FILTER_EPS,
    ):
        super().__init__()
        check_number("motion_calibration", motion_calibration, MIN_MOTION_CALIBRATION, MAX_MOTION_CALIBRATION)
        if mask_motion_calibration is not None:
            check_number("mask_motion_calibration", mask_motion_calibration, MIN_MOTION_CALIBRATION,
                         MAX_MOTION_CALIBRATION)  # fmt: skip
            mask_motion_calibration = float(mask_motion_calibration)
        check_number("guided_filter_radius", guided_filter_radius, 0, MAX_GUIDED_FILTER_RADIUS, integer=True)
        check_number("guided_filter_eps", guided_filter_eps, 0.0, MAX_GUIDED_FILTER_EPS, low_open=True)
        check_image_encoder(unet, image_encoder)
        self.register_modules(vae=vae, unet=unet, scheduler=scheduler, renderer=renderer, image_encoder=image_encoder)
        self.register_to_config(model_size=tuple(model_size), default_guidance_scale=float(default_guidance_scale),
                                motion_calibration=float(motion_calibration),
                                mask_motion_calibration=mask_motion_calibration,
                                guided_filter_radius=int(guided_filter_radius),
                                guided_filter_eps=float(guided_filter_eps))  # fmt: skip

    # ------------------------------------------------------------------------------------------ loading

    @classmethod
    def download(cls, pretrained_model_name: str, **kwargs) -> str:
        """Fetch a pipeline repository from the Hub (or the local Hub cache) with huggingface_hub.snapshot_download.

        Stock diffusers refuses repositories whose components come from a package other than diffusers (it looks
        for ``<component>/<module>.py`` files); our components are importable from gid_pipeline, so the plain
        snapshot is all that is needed. Honours cache_dir, revision, token, force_download, local_files_only and
        HF_HUB_OFFLINE; only configs, safetensors weights and the model card are fetched.
        """
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        try:
            return snapshot_download(
                pretrained_model_name,
                revision=kwargs.get("revision"),
                cache_dir=kwargs.get("cache_dir"),
                token=kwargs.get("token"),
                force_download=kwargs.get("force_download", False),
                local_files_only=bool(kwargs.get("local_files_only")),
                allow_patterns=["*.json", "*.safetensors", "*.txt", "README.md"],
            )
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
            raise GIDInputError(
                f"cannot get the pipeline {pretrained_model_name!r} from the Hub or its local cache: {error}"
            ) from error

    @classmethod
    def load_config(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs) -> Any:
        """ConfigMixin.load_config; for a pipeline folder also: a missing component folder is a GIDInputError naming
        it, and the published form of model_index.json is read as this package's classes.

        The published form (hub.build_upload_folder) names the pipeline and the gid_pipeline components by shim
        files, e.g. ``"_class_name": ["pipeline_gid", "GIDPipeline"]`` and ``"unet": ["frequency_unet",
        "FrequencyUNet"]``, so that stock ``DiffusionPipeline.from_pretrained(..., trust_remote_code=True)`` can
        load it; GIDPipeline maps these back to its own modules (package_model_index) and never runs code from
        the folder.
        """
        result = super().load_config(pretrained_model_name_or_path, *args, **kwargs)
        config = result[0] if isinstance(result, tuple) else result
        folder = Path(pretrained_model_name_or_path)
        if folder.is_dir() and (folder / cls.config_name).is_file():
            package_model_index(config)
            for name, entry in config.items():
                if is_component_entry(name, entry) and entry[0] is not None and not (folder / name).is_dir():
                    raise GIDInputError(
                        f"{folder} is not a complete pipeline folder: model_index.json lists the component {name!r} "
                        f"({entry[1]}) but its folder {name}/ is missing"
                    )
        return result

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> GIDPipeline:
        """DiffusionPipeline.from_pretrained, also for a pathlib.Path. A local folder (a Path, or a string that is
        not of the Hub's ``org/name`` form) that is missing, incomplete or corrupt is a GIDInputError naming it and
        what is wrong; an ``org/name`` string that is not a folder is a Hub repo id (see ``download``)."""
        name = os.fspath(pretrained_model_name_or_path)
        is_path = isinstance(pretrained_model_name_or_path, os.PathLike)
        if not (is_path or os.path.isdir(name) or not _HUB_ID.fullmatch(name)):
            return super().from_pretrained(name, **kwargs)
        folder = Path(name)
        if not folder.is_dir():
            raise GIDInputError(f"pipeline folder {name} does not exist")
        index = folder / "model_index.json"
        if not index.is_file():
            raise GIDInputError(f"{name} is not a pipeline folder: it has no model_index.json")
        try:
            json.loads(index.read_text())
        except ValueError as error:
            raise GIDInputError(f"{name}: its model_index.json is not valid JSON ({error})") from None
        try:
            return super().from_pretrained(name, **kwargs)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as error:
            if isinstance(error, GIDInputError):
                raise
            detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise GIDInputError(f"cannot load the pipeline folder {name}: {detail}") from None

    # ------------------------------------------------------------------------------------------ properties

    @property
    def player(self) -> Player:
        """Plays spectral volumes on photos with this pipeline's renderer, on its execution device: loops
        (``player.render``, ``player.iter_loop_frames`` with PlaybackControls) and pokes (``player.poke``)."""
        return Player(self.renderer, device=self._execution_device)

    @property
    def normalizer(self) -> SpectralNormalizer:
        """The U-Net's normalisation statistics, scaled by motion_calibration (so that sampling, self-guidance and
        the returned volumes all see calibrated pixels); a GIDInputError for a U-Net that was never trained."""
        return self.unet.normalizer.scaled(self.config.get("motion_calibration", 1.0))

    @property
    def spatial_multiple(self) -> int:
        """Model-resolution sides must be multiples of this: the VAE's x the U-Net's downsampling (32 by default)."""
        return vae_downsampling(self.vae) * self.unet.latent_downsampling

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        """Scale 1 is the conditional model alone: its unconditional pass is skipped."""
        return self._guidance_scale != 1.0

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def interrupt(self) -> bool:
        """Set ``pipe._interrupt = True`` (e.g. in a callback) to skip the remaining denoising steps."""
        return self._interrupt

    # ------------------------------------------------------------------------------------------ inputs

    def preprocess_image(
        self,
        image: PipelineImage | Sequence[PipelineImage],
        height: int | None = None,
        width: int | None = None,
        max_long_side: int = DEFAULT_MAX_LONG_SIDE,
    ) -> torch.Tensor:
        """Images in any accepted form -> (B, 3, H, W) float32 in [0, 1] at the output resolution.

        Accepted: a PIL image, an (H, W, 3) uint8 array (or anything media.images.read_image takes), a (3, H, W) or
        (B, 3, H, W) float tensor in [0, 1], or a list of those; all images must have the same size. The output
        size follows ``output_resolution``; an image already at that size is passed through unchanged, so frame 0
        of the loop is exactly the input.
        """
        images = list(image) if isinstance(image, (list, tuple)) else [image]
        if not images:
            raise GIDInputError("no image given")
        tensors = [t for item in images for t in image_tensors(item)]
        sizes = {tuple(t.shape[-2:]) for t in tensors}
        if len(sizes) > 1:
            listed = ", ".join(f"{w}x{h}" for h, w in sorted(sizes))
            raise GIDInputError(f"images of one call must have the same size, got {listed} (width x height)")
        batch = torch.stack(tensors)
        size = output_resolution(*batch.shape[-2:], height, width, max_long_side)
        if size != tuple(batch.shape[-2:]):
            batch = F.interpolate(batch, size=size, mode="bicubic", antialias=True, align_corners=False).clamp_(0, 1)
        return batch

    def check_inputs(
        self,
        batch_size: int,
        num_inference_steps: int,
        guidance_scale: float,
        self_guidance_scale: float,
        num_frames: int,
        fps: float,
        output_type: str,
        generator: torch.Generator | list[torch.Generator] | None,
        callback_on_step_end_tensor_inputs: Sequence[str],
    ) -> None:
        """Raise GIDInputError for a bad argument (each named, with the limit it breaks), before any model runs."""
        check_number("num_inference_steps", num_inference_steps, 1, MAX_INFERENCE_STEPS, integer=True)
        if not isinstance(num_inference_steps, int) or isinstance(num_inference_steps, bool):
            raise GIDInputError(f"num_inference_steps must be an integer, got {num_inference_steps!r}")
        check_number("guidance_scale", guidance_scale, 0.0, MAX_GUIDANCE_SCALE)
        check_number("self_guidance_scale", self_guidance_scale, 0.0, MAX_SELF_GUIDANCE_SCALE)
        fewest = min_loop_frames(self.unet.config.num_frequencies)
        if not isinstance(num_frames, int) or isinstance(num_frames, bool):
            raise GIDInputError(f"num_frames must be an integer, got {num_frames!r}")
        check_number(f"num_frames (to hold {self.unet.config.num_frequencies} frequencies)", num_frames, fewest,
                     MAX_NUM_FRAMES, integer=True)  # fmt: skip
        check_number("fps", fps, 0.0, low_open=True)
        if output_type not in OUTPUT_TYPES:
            raise GIDInputError(f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}")
        if isinstance(generator, list):
            if len(generator) != batch_size:
                raise GIDInputError(f"got {len(generator)} generators for {batch_size} images: give one per image")
            if not all(isinstance(g, torch.Generator) for g in generator):
                raise GIDInputError("generator must be a torch.Generator or a list of them (one per image)")
        elif generator is not None and not isinstance(generator, torch.Generator):
            raise GIDInputError(f"generator must be a torch.Generator or a list, got {type(generator).__name__}")
        if not set(callback_on_step_end_tensor_inputs) <= set(self._callback_tensor_inputs):
            raise GIDInputError(f"callback_on_step_end_tensor_inputs must be among {self._callback_tensor_inputs}, "
                                f"got {list(callback_on_step_end_tensor_inputs)}")  # fmt: skip
        if self_guidance_scale > 0 and not hasattr(self.scheduler, "alphas_cumprod"):
            raise GIDInputError(
                f"motion self-guidance needs a DDPM-family scheduler with alphas_cumprod; "
                f"{type(self.scheduler).__name__} has none"
            )

    def prepare_conditions(
        self, condition: torch.Tensor, motion_mask: MaskInput | Sequence[MaskInput] | None, image_size: tuple[int, int]
    ) -> dict[str, Any]:
        """The U-Net's optional conditions for (B, 3, h, w) model-resolution stills in [-1, 1]: the frozen encoder's
        features (when the U-Net takes them) and the (B, 2, h, w) motion mask (when one is given), which must have
        the aspect ratio of the images, image_size = (height, width) (the model grid's is rounded)."""
        conditions: dict[str, Any] = {}
        batch_size, _, height, width = condition.shape
        if self.unet.takes_image_features:
            stills = (condition.to(self.image_encoder.dtype) + 1.0) / 2.0
            conditions["image_features"] = self.image_encoder(stills).features
        if motion_mask is not None:
            if not self.unet.config.motion_mask:
                raise GIDInputError("this checkpoint's U-Net was not trained with motion masks: give no motion_mask")
            masks = list(motion_mask) if isinstance(motion_mask, (list, tuple)) else [motion_mask] * batch_size
            if len(masks) != batch_size:
                raise GIDInputError(f"got {len(masks)} motion masks for {batch_size} images")
            stacked = torch.stack([to_motion_mask(mask, height, width, image_size) for mask in masks])
            conditions["motion_mask"] = stacked.to(condition.device, self.unet.dtype)
        return conditions

    def prepare_latents(
        self,
        batch_size: int,
        height: int,
        width: int,
        device: torch.device,
        generator: torch.Generator | list[torch.Generator] | None,
        latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Initial noise (B, K, C, h, w) in the U-Net's dtype, h x w the latent grid of a height x width sample.

        Drawn in float32 and then cast, so that one seed gives the same noise whatever the model's dtype.
        """
        factor = vae_downsampling(self.vae)
        shape = (batch_size, self.unet.config.num_frequencies, self.unet.config.latent_channels,
                 height // factor, width // factor)  # fmt: skip
        if latents is None:
            latents = randn_tensor(shape, generator=generator, device=device, dtype=torch.float32)
        elif tuple(latents.shape) != shape:
            raise GIDInputError(f"latents must have shape {shape} for these images, got {tuple(latents.shape)}")
        return (latents.to(device, torch.float32) * self.scheduler.init_noise_sigma).to(self.unet.dtype)

    # ------------------------------------------------------------------------------------------ sampling

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        image: PipelineImage | Sequence[PipelineImage],
        num_inference_steps: int = 25,
        guidance_scale: float | None = None,
        self_guidance_scale: float = 0.0,
        num_frames: int = 150,
        fps: float = 30.0,
        motion_mask: MaskInput | Sequence[MaskInput] | None = None,
        hold_still_painted: bool = True,
        playback: PlaybackControls | None = None,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
        decode_chunk_size: int | None = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[[GIDPipeline, int, Any, dict], dict] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> GIDPipelineOutput | tuple:
        """Sample a spectral volume for each image and render it into a seamless loop.

        Args:
            image: a PIL image, an (H, W, 3) uint8 array, a (3, H, W) or (B, 3, H, W) float tensor in [0, 1], or a
                list of them (all the same size).
            num_inference_steps: denoising steps.
            guidance_scale: classifier-free guidance, uncond + s (cond - uncond); 1 runs the conditional model
                alone (no unconditional pass), 0 the unconditional one. None: the checkpoint's
                ``default_guidance_scale`` (the paper's w = 1.75, s = 2.75, unless the checkpoint was tuned).
            self_guidance_scale: u of the paper's motion self-guidance (guidance.self_guidance_loss); 0 turns it
                off. Each guided step also runs the decoder forward and backward (costly with a KL VAE, cheap with
                the pooling autoencoder).
            num_frames: frames of one loop period (at least 2 (K - 1)); the loop lasts num_frames / fps seconds.
            fps: frame rate the loop is meant to be played at (recorded in the spectral volumes).
            motion_mask: where the photo should move (gid_pipeline.motion.mask): a mask image (white moves, black
                stays still, grey or transparent unknown), an (H, W) array or tensor in [0, 1], or one per image; any
                size with the photo's aspect ratio. Needs a U-Net trained with masks; the model decides how what is
                painted moves.
            hold_still_painted: what is painted "stays still" does not move at all (the sampled motion is scaled by
                the share of each pixel not painted still); False leaves it to the model.
            playback: how the frames play (gid_pipeline.player.PlaybackControls: amplitude, speed, band, region,
                fps, ...); the returned spectral volumes are as predicted whatever it says.
            height, width: output size in pixels (even); default the image's size, long side <= 512.
            generator: torch.Generator(s) for the initial noise (and stochastic schedulers).
            latents: optional (B, K, C, h, w) initial noise instead of drawing it.
            decode_chunk_size: frequency slices the autoencoder decodes at a time (None: all at once); smaller
                uses less memory.
            output_type: "pil", "np", "pt" (frames, see GIDPipelineOutput) or "spectrum" (no rendering).
            return_dict: return a GIDPipelineOutput rather than a tuple (frames, spectral_volumes).
            callback_on_step_end: called as f(pipe, step, timestep, tensors) after each denoising step; the dict
                it returns may replace the tensors (e.g. "latents").
            callback_on_step_end_tensor_inputs: names of the tensors passed to it (from _callback_tensor_inputs).

        Examples:

        Returns:
            GIDPipelineOutput(frames, spectral_volumes), or the tuple (frames, spectral_volumes).
        """
        if guidance_scale is None:
            guidance_scale = self.config.get("default_guidance_scale", PAPER_GUIDANCE_SCALE)
        images = self.preprocess_image(image, height, width)
        batch_size, _, out_height, out_width = images.shape
        self.check_inputs(batch_size, num_inference_steps, guidance_scale, self_guidance_scale, num_frames, fps,
                          output_type, generator, callback_on_step_end_tensor_inputs)  # fmt: skip
        if decode_chunk_size is not None:
            check_number("decode_chunk_size", decode_chunk_size, 1, integer=True)
        if playback is not None and not isinstance(playback, PlaybackControls):
            raise GIDInputError(f"playback must be a PlaybackControls, got {type(playback).__name__}")
        self._guidance_scale = float(guidance_scale)
        self._interrupt = False
        device = self._execution_device
        normalizer = self.normalizer
        images = images.to(device)
        model_height, model_width = model_resolution(
            out_height, out_width, self.spatial_multiple, tuple(self.config.model_size)
        )
        condition = F.interpolate(images, size=(model_height, model_width), mode="bilinear", antialias=True,
                                  align_corners=False) * 2.0 - 1.0  # fmt: skip
        condition = condition.to(self.unet.dtype)
        conditions = self.prepare_conditions(condition, motion_mask, (out_height, out_width))
        condition_mask = None
        if self.do_classifier_free_guidance:
            condition = torch.cat([condition, condition])
            conditions = {name: _twice(value) for name, value in conditions.items()}
            condition_mask = torch.arange(2 * batch_size, device=device) < batch_size  # conditional half first

        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps = self.scheduler.timesteps
        self._num_timesteps = len(timesteps)
        latents = self.prepare_latents(batch_size, model_height, model_width, device, generator, latents)
        accepts_generator = "generator" in inspect.signature(self.scheduler.step).parameters
        step_kwargs = {"generator": generator} if accepts_generator else {}

        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for step, timestep in enumerate(timesteps):
                if self.interrupt:
                    continue
                model_input = torch.cat([latents] * 2) if self.do_classifier_free_guidance else latents
                model_input = self.scheduler.scale_model_input(model_input, timestep)
                prediction = self.unet(model_input, timestep, condition, condition_mask, **conditions,
                                       return_dict=False)[0]  # fmt: skip
                if self.do_classifier_free_guidance:
                    conditional, unconditional = prediction.chunk(2)
                    prediction = classifier_free_guidance(conditional, unconditional, self._guidance_scale)
                if self_guidance_scale > 0:
                    prediction = self._self_guide(
                        prediction, model_input[:batch_size], timestep, normalizer, num_frames, self_guidance_scale
                    )
                latents = self.scheduler.step(prediction, timestep, latents, **step_kwargs, return_dict=False)[0]

                if callback_on_step_end is not None:
                    tensors = {"latents": latents}
                    outputs = callback_on_step_end(
                        self, step, timestep, {name: tensors[name] for name in callback_on_step_end_tensor_inputs}
                    )
                    latents = outputs.pop("latents", latents)
                progress_bar.update()

        spectra = normalizer.denormalize(self.decode_latents(latents, decode_chunk_size))  # (B, K, 4, h, w) px
        if not bool(torch.isfinite(spectra).all()):
            advice = f": lower self_guidance_scale ({self_guidance_scale:g})" if self_guidance_scale > 0 else ""
            raise GIDInputError(f"sampling diverged to non-finite displacements{advice}")
        spectra = self.resize_spectra(spectra, images)
        masks = [None] * batch_size
        if "motion_mask" in conditions:
            masks = conditions["motion_mask"][:batch_size].float()
            spectra = spectra * self._mask_calibration_gains(masks).to(spectra).view(-1, 1, 1, 1, 1)
            if hold_still_painted:
                spectra = hold_still(spectra, masks)
            masks = masks.cpu()
        volumes = [SpectralVolume(spectrum.cpu(), num_frames, float(fps), mask)
                   for spectrum, mask in zip(spectra, masks, strict=True)]  # fmt: skip

        frames = None
        if output_type != "spectrum":
            frames = postprocess_frames(self.render_loops(images, volumes, playback), output_type)

        self.maybe_free_model_hooks()
        if not return_dict:
            return frames, volumes
        return GIDPipelineOutput(frames=frames, spectral_volumes=volumes)

    def decode_latents(self, latents: torch.Tensor, chunk_size: int | None = None) -> torch.Tensor:
        """(B, K, C, h, w) latents -> (B, K, 4, H, W) float32 normalised spectra, chunk_size slices at a time."""
        if chunk_size is None:
            return decode_latents(self.vae, latents).float()
        batch = latents.shape[0]
        slices = latents.flatten(0, 1)
        decoded = [decode_latents(self.vae, part[:, None]).float() for part in slices.split(chunk_size)]
        return torch.cat(decoded).flatten(0, 1).unflatten(0, (batch, -1))

    def render_loops(
        self, images: torch.Tensor, volumes: Sequence[SpectralVolume], playback: PlaybackControls | None = None
    ) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] and their volumes, played by the player -> (B, F, 3, H, W) frames."""
        playback = playback or PlaybackControls()
        player = self.player
        videos = []
        for image, volume in zip(images, volumes, strict=True):
            total = loop_timing(volume, playback).frames
            with self.progress_bar(total=total) as progress_bar:
                chunks = []
                for chunk in player.iter_loop_frames(image, volume, playback):
                    chunks.append(chunk)
                    progress_bar.update(chunk.shape[0])
            videos.append(torch.cat(chunks))
        return torch.stack(videos)

    def resize_spectra(self, spectra: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        """(B, K, 4, h, w) px on the model grid -> (B, K, 4, H, W) px on the grid of the (B, 3, H, W) images in
        [0, 1]: bilinear, or guided by the photo (config guided_filter_radius)."""
        radius = self.config.get("guided_filter_radius", 0)
        if not radius:
            return resize_spectrum(spectra, tuple(images.shape[-2:]))
        eps = self.config.get("guided_filter_eps", DEFAULT_GUIDED_FILTER_EPS)
        return guided_resize_spectrum(spectra, luma(images.float()), radius, eps)

    def _mask_calibration_gains(self, masks: torch.Tensor) -> torch.Tensor:
        """(B,) factors that turn motion_calibration into mask_motion_calibration for the (B, 2, h, w) masks that
        paint anything (1 for the others, and for all when the checkpoint has no mask_motion_calibration)."""
        painted = masks.flatten(1).amax(dim=1) > 0
        calibration = self.config.get("motion_calibration", 1.0)
        masked = self.config.get("mask_motion_calibration") or calibration
        return torch.where(painted, masked / calibration, 1.0)

    def predict_spectral_volume(self, image: PipelineImage | Sequence[PipelineImage], **kwargs) -> list[SpectralVolume]:
        """Sample spectral volumes without rendering: ``__call__``'s arguments (but output_type and return_dict).

        Returns:
            One SpectralVolume per image, at the output resolution, in pixels (see GIDPipelineOutput).
        """
        for name in ("output_type", "return_dict"):
            if name in kwargs:
                raise GIDInputError(f"predict_spectral_volume takes no {name}")
        return self(image, output_type="spectrum", **kwargs).spectral_volumes

    def _self_guide(
        self,
        prediction: torch.Tensor,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        normalizer: SpectralNormalizer,
        num_frames: int,
        scale: float,
    ) -> torch.Tensor:
        """Motion self-guidance on one step's prediction (guidance module docstring).

        The prediction is converted to its noise estimate eps, x_0 = (z_t - sigma_t eps) / alpha_t is decoded to a
        spectral volume in pixels at the model resolution, grad_x0 L_g is taken through the decoder and the inverse
        DFT, and grad_z = alpha_t grad_x0 (guidance.latent_gradient: no backpropagation through the U-Net). The
        guided eps is converted back to the scheduler's prediction type: for v-prediction that is
        v + u sigma_t / alpha_t grad_z L_g, the same change of x_0 (-u sigma_t^2 grad_x0 L_g) as for an epsilon model.

        Args:
            prediction: (B, K, C, h, w) the (classifier-free guided) model output.
            sample: (B, K, C, h, w) the model input z_t (after scale_model_input: variance preserving).
        """
        alpha, sigma = alpha_sigma(self.scheduler.alphas_cumprod, timestep)
        prediction_type = self.scheduler.config.prediction_type
        epsilon = to_epsilon(prediction.float(), sample.float(), alpha, sigma, prediction_type)
        # Also under torch.inference_mode: the estimate is cloned into a normal tensor that autograd can use.
        with torch.inference_mode(False), torch.enable_grad():
            estimate = predicted_sample(epsilon, sample.float(), alpha, sigma).clone().requires_grad_(True)
            spectrum = normalizer.denormalize(decode_latents(self.vae, estimate).float())
            loss = self_guidance_loss(spectrum, num_frames).sum()  # per-sample gradients stay independent
            (gradient,) = torch.autograd.grad(loss, estimate)
        epsilon = self_guided_epsilon(epsilon, latent_gradient(gradient, alpha), sigma, scale)
        return from_epsilon(epsilon, sample.float(), alpha, sigma, prediction_type).to(prediction.dtype)


def _twice(value: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """A condition for both halves of a classifier-free guidance batch (a tensor, or a tuple of feature maps)."""
    if isinstance(value, tuple):
        return tuple(torch.cat([maps, maps]) for maps in value)
    return torch.cat([value, value])
