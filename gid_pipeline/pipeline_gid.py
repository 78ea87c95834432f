"""GIDPipeline: a still image in, a seamless looping video (and its spectral volume) out.

The pipeline orchestrates and owns no math: the latent spectral volume is sampled by the FrequencyUNet with a
diffusers scheduler (classifier-free guidance and motion self-guidance from ``guidance``), decoded slice by slice
by the spectral VAE (``models.spectral_vae``), denormalised with the statistics in the U-Net's config
(``spectral.SpectralNormalizer``), resized to the output resolution with displacements scaled
(``SpectralVolume.resized``) and rendered into a loop (``rendering.iter_loop_frames``, with the learned
``SplatRenderer`` when the pipeline has one, else pixel softmax splatting).

Resolutions: the model samples near its native pixel count (256x160) at the image's aspect ratio, on a grid whose
sides are multiples of the VAE x U-Net downsampling (``model_resolution``); the video is rendered at the output size
(``output_resolution``: the image's own size with its long side capped, even sides).
"""

from __future__ import annotations

import inspect
import math
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor
from diffusers.video_processor import VideoProcessor

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
from .limits import MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE
from .media.images import read_image
from .models.frequency_unet import FrequencyUNet
from .models.image_encoder import EfficientNetLiteEncoder
from .models.pooling_autoencoder import PoolingSpectralAutoencoder
from .models.renderer import SplatRenderer
from .models.spectral_vae import decode_latents, vae_downsampling
from .motion.dynamics import DEFAULT_DAMPING, DynamicsParams, poke_video_frames
from .motion.mask import MaskInput, to_motion_mask
from .rendering.loop import fit_spectrum_to_image, image_to_tensor
from .rendering.loop import iter_loop_frames as stream_loop
from .spectral.controls import FrequencyBand, Mask, apply_controls
from .spectral.transform import SpectralNormalizer, resize_spectrum
from .spectral.volume import SpectralVolume

# The resolution the paper's (and our default) model is trained at, (height, width).
NATIVE_SIZE = (160, 256)
# Default cap on the long side of the rendered video (the motion is sampled at 256x160 whatever the output size).
DEFAULT_MAX_LONG_SIDE = 512
OUTPUT_TYPES = ("pil", "np", "pt", "spectrum")
FRAME_OUTPUT_TYPES = ("pil", "np", "pt")
# The most frames one loop period (or poke video) may have: 33 s at 30 fps; __call__ and render_spectral_volume
# hold every frame in memory (1000 float frames at 512x320 are 2 GB).
MAX_NUM_FRAMES = 1000

PipelineImage = PIL.Image.Image | np.ndarray | torch.Tensor

# The component classes this package defines, by class name -> their module (model_index.json's library entry).
PACKAGE_COMPONENTS = {
    c.__name__: c.__module__
    for c in (FrequencyUNet, PoolingSpectralAutoencoder, SplatRenderer, EfficientNetLiteEncoder)
}


def _is_component_entry(name: str, entry: Any) -> bool:
    """A model_index.json entry naming a component: "name": [library, class_name] (strings, or nulls)."""
    return (
        not name.startswith("_")
        and isinstance(entry, list)
        and len(entry) == 2
        and all(part is None or isinstance(part, str) for part in entry)
    )


def package_model_index(config: dict[str, Any]) -> dict[str, Any]:
    """Read a model_index.json dict in its published (trust_remote_code) form as this package's form, in place.

    ``"_class_name": [module, "GIDPipeline"]`` becomes ``"GIDPipeline"``, and a component entry naming one of
    PACKAGE_COMPONENTS through another module (a shim file) is pointed at the package's module. Other entries
    (diffusers schedulers and autoencoders, null optional components) are kept. Returns the dict.
    """
    class_name = config.get("_class_name")
    if isinstance(class_name, list) and len(class_name) == 2 and class_name[1] == "GIDPipeline":
        config["_class_name"] = class_name[1]
    for name, entry in config.items():
        if _is_component_entry(name, entry) and entry[0] is not None and entry[1] in PACKAGE_COMPONENTS:
            config[name] = [PACKAGE_COMPONENTS[entry[1]], entry[1]]
    return config


def model_resolution(
    height: int, width: int, multiple: int, native_size: tuple[int, int] = NATIVE_SIZE
) -> tuple[int, int]:
    """The grid the model samples on for an image of height x width: (model_height, model_width).

    Keeps the image's aspect ratio and the native pixel count (256 x 160 = 40960 by default): both sides are scaled
    by sqrt(native pixels / image pixels) and rounded to the nearest multiple of ``multiple`` (the VAE's x the
    U-Net's downsampling, 32 for the default models). A side that would round to zero becomes one multiple and the
    other side then keeps the pixel count. A 256x160 image samples at 256x160, a square one at 192x192, a 3:1 one at
    352x128, a 125:1 strip at 1280x32; a 16:9 one rounds to 256x160 (the spectrum is resized back to the output grid
    with x and y scaled separately, so rounding never distorts the motion's geometry).

    Args:
        height, width: the image (or output) size in pixels.
        multiple: the sides of the result are multiples of it.
        native_size: (height, width) the model was trained at.

    Returns:
        (model_height, model_width) in pixels.
    """
    if min(height, width, multiple) < 1:
        raise GIDInputError(f"need positive sizes, got {height}x{width} (h x w) and multiple {multiple}")
    pixels = native_size[0] * native_size[1]
    scale = math.sqrt(pixels / (height * width))
    model_height, model_width = (round(side * scale / multiple) * multiple for side in (height, width))
    if model_height < multiple:
        model_height, model_width = multiple, max(multiple, round(pixels / multiple / multiple) * multiple)
    elif model_width < multiple:
        model_height, model_width = max(multiple, round(pixels / multiple / multiple) * multiple), multiple
    return model_height, model_width


def output_resolution(
    image_height: int,
    image_width: int,
    height: int | None = None,
    width: int | None = None,
    max_long_side: int = DEFAULT_MAX_LONG_SIDE,
) -> tuple[int, int]:
    """The size a video is rendered at: (height, width), both even (H.264 yuv420p needs even sides).

    Both given: exactly those (they must be even). One given: the other follows the image's aspect ratio. None:
    the image's size, scaled down so that its long side is at most ``max_long_side``. Computed odd sides round to
    the nearest even number.
    """

    def even(value: float) -> int:
        return max(2, 2 * round(value / 2))

    aspect = image_width / image_height
    if height is not None and width is not None:
        if height % 2 or width % 2 or height < MIN_IMAGE_SIDE or width < MIN_IMAGE_SIDE:
            raise GIDInputError(f"height and width must be even and >= {MIN_IMAGE_SIDE}, got {height}x{width} (h x w)")
        return height, width
    if height is not None:
        return even(height), even(height * aspect)
    if width is not None:
        return even(width / aspect), even(width)
    shrink = min(1.0, max_long_side / max(image_height, image_width))
    return even(image_height * shrink), even(image_width * shrink)


def check_image_encoder(unet: FrequencyUNet, encoder: EfficientNetLiteEncoder | None) -> None:
    """GIDInputError unless the U-Net gets exactly the features it was trained on (or needs none)."""
    wanted = unet.config.image_feature_encoder if unet.takes_image_features else None
    if wanted is None and encoder is None:
        return
    if wanted is None:
        raise GIDInputError("this U-Net takes no image features: the pipeline's image_encoder must be None")
    if encoder is None:
        raise GIDInputError(f"this U-Net is conditioned on the image features of {wanted}: give its image_encoder")
    if encoder.config.fingerprint != wanted or tuple(encoder.feature_channels) != tuple(
        unet.config.image_feature_channels
    ):
        raise GIDInputError(
            f"the image encoder {encoder.config.fingerprint} (features {encoder.feature_channels}) is not the one "
            f"the U-Net was trained on ({wanted}, features {tuple(unet.config.image_feature_channels)})"
        )


@dataclass
class GIDPipelineOutput(BaseOutput):
    """Output of GIDPipeline.

    Attributes:
        frames: per input image, one loop of num_frames frames (diffusers' video convention): "pil" a list of lists
            of PIL images, "np" a (B, F, H, W, 3) float32 array in [0, 1], "pt" a (B, F, 3, H, W) float tensor in
            [0, 1]; None for output_type "spectrum". Frame 0 is the input image; frame F would equal frame 0.
        spectral_volumes: per input image, the sampled SpectralVolume at the output resolution, in pixels of that
            grid, motion_scale applied, time base (num_frames, fps): replaying it renders the same loop.
    """

    frames: list[list[PIL.Image.Image]] | np.ndarray | torch.Tensor | None
    spectral_volumes: list[SpectralVolume]


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
    ):
        super().__init__()
        check_image_encoder(unet, image_encoder)
        self.register_modules(vae=vae, unet=unet, scheduler=scheduler, renderer=renderer, image_encoder=image_encoder)
        self.register_to_config(model_size=tuple(model_size), default_guidance_scale=float(default_guidance_scale))
        # Frames are produced in [0, 1]: no [-1, 1] denormalisation, no resizing.
        self.video_processor = VideoProcessor(do_normalize=False, do_resize=False)

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
                if _is_component_entry(name, entry) and entry[0] is not None and not (folder / name).is_dir():
                    raise GIDInputError(
                        f"{folder} is not a complete pipeline folder: model_index.json lists the component {name!r} "
                        f"({entry[1]}) but its folder {name}/ is missing"
                    )
        return result

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> GIDPipeline:
        """DiffusionPipeline.from_pretrained, also for a pathlib.Path; a Path that is not a folder is a GIDInputError
        (a string that is not a folder is taken as a Hub repo id, see ``download``)."""
        name = os.fspath(pretrained_model_name_or_path)
        if isinstance(pretrained_model_name_or_path, os.PathLike) and not os.path.isdir(name):
            raise GIDInputError(f"pipeline folder {name} does not exist")
        return super().from_pretrained(name, **kwargs)

    # ------------------------------------------------------------------------------------------ properties

    @property
    def normalizer(self) -> SpectralNormalizer:
        """The U-Net's normalisation statistics; a GIDInputError for a U-Net that was never trained."""
        return self.unet.normalizer

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

        Accepted: a PIL image, an (H, W, 3) uint8 array (or anything video.read_image takes), a (3, H, W) or
        (B, 3, H, W) float tensor in [0, 1], or a list of those; all images must have the same size. The output
        size follows ``output_resolution``; an image already at that size is passed through unchanged, so frame 0
        of the loop is exactly the input.
        """
        images = list(image) if isinstance(image, (list, tuple)) else [image]
        if not images:
            raise GIDInputError("no image given")
        tensors = [t for item in images for t in _to_tensors(item)]
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
        num_inference_steps: int,
        guidance_scale: float,
        self_guidance_scale: float,
        num_frames: int,
        fps: float,
        motion_scale: float,
        output_type: str,
        callback_on_step_end_tensor_inputs: Sequence[str],
    ) -> None:
        """Raise GIDInputError for a bad argument, before any model runs."""
        num_frequencies = self.unet.config.num_frequencies
        checks = (
            (isinstance(num_inference_steps, int) and num_inference_steps >= 1,
             f"num_inference_steps must be a positive integer, got {num_inference_steps!r}"),
            (math.isfinite(guidance_scale), f"guidance_scale must be finite, got {guidance_scale}"),
            (math.isfinite(self_guidance_scale) and self_guidance_scale >= 0,
             f"self_guidance_scale must be >= 0, got {self_guidance_scale}"),
            (_is_frame_count(num_frames, num_frequencies),
             f"num_frames must be an integer from {max(2, 2 * (num_frequencies - 1))} (to hold {num_frequencies} "
             f"frequencies) to MAX_NUM_FRAMES = {MAX_NUM_FRAMES}, got {num_frames!r}"),
            (math.isfinite(fps) and fps > 0, f"fps must be positive, got {fps}"),
            (math.isfinite(motion_scale) and motion_scale >= 0, f"motion_scale must be >= 0, got {motion_scale}"),
            (output_type in OUTPUT_TYPES, f"output_type must be one of {OUTPUT_TYPES}, got {output_type!r}"),
            (set(callback_on_step_end_tensor_inputs) <= set(self._callback_tensor_inputs),
             f"callback_on_step_end_tensor_inputs must be among {self._callback_tensor_inputs}, got "
             f"{list(callback_on_step_end_tensor_inputs)}"),
        )  # fmt: skip
        for ok, message in checks:
            if not ok:
                raise GIDInputError(message)
        if self_guidance_scale > 0 and not hasattr(self.scheduler, "alphas_cumprod"):
            raise GIDInputError(
                f"motion self-guidance needs a DDPM-family scheduler with alphas_cumprod; "
                f"{type(self.scheduler).__name__} has none"
            )

    def prepare_conditions(
        self, condition: torch.Tensor, motion_mask: MaskInput | Sequence[MaskInput] | None
    ) -> dict[str, Any]:
        """The U-Net's optional conditions for (B, 3, h, w) model-resolution stills in [-1, 1]: the frozen encoder's
        features (when the U-Net takes them) and the (B, 2, h, w) motion mask (when one is given)."""
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
            stacked = torch.stack([to_motion_mask(mask, height, width) for mask in masks])
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
    def __call__(
        self,
        image: PipelineImage | Sequence[PipelineImage],
        num_inference_steps: int = 25,
        guidance_scale: float | None = None,
        self_guidance_scale: float = 0.0,
        num_frames: int = 150,
        fps: float = 30.0,
        motion_scale: float = 1.0,
        motion_mask: MaskInput | Sequence[MaskInput] | None = None,
        height: int | None = None,
        width: int | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        latents: torch.Tensor | None = None,
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
            motion_scale: multiplies every displacement (0 gives a still video).
            motion_mask: where the photo should move (gid_pipeline.motion.mask): a mask image (white moves, black
                stays still, grey or transparent unknown), an (H, W) array or tensor in [0, 1], or one per image; any
                size with the photo's aspect ratio. Needs a U-Net trained with masks; the model decides how what is
                painted moves.
            height, width: output size in pixels (even); default the image's size, long side <= 512.
            generator: torch.Generator(s) for the initial noise (and stochastic schedulers).
            latents: optional (B, K, C, h, w) initial noise instead of drawing it.
            output_type: "pil", "np", "pt" (frames, see GIDPipelineOutput) or "spectrum" (no rendering).
            return_dict: return a GIDPipelineOutput rather than a tuple (frames, spectral_volumes).
            callback_on_step_end: called as f(pipe, step, timestep, tensors) after each denoising step; the dict
                it returns may replace the tensors (e.g. "latents").
            callback_on_step_end_tensor_inputs: names of the tensors passed to it (from _callback_tensor_inputs).

        Returns:
            GIDPipelineOutput(frames, spectral_volumes), or the tuple (frames, spectral_volumes).
        """
        if guidance_scale is None:
            guidance_scale = self.config.get("default_guidance_scale", PAPER_GUIDANCE_SCALE)
        self.check_inputs(num_inference_steps, guidance_scale, self_guidance_scale, num_frames, fps, motion_scale,
                          output_type, callback_on_step_end_tensor_inputs)  # fmt: skip
        self._guidance_scale = float(guidance_scale)
        self._interrupt = False
        device = self._execution_device
        normalizer = self.normalizer

        images = self.preprocess_image(image, height, width).to(device)
        batch_size, _, out_height, out_width = images.shape
        model_height, model_width = model_resolution(
            out_height, out_width, self.spatial_multiple, tuple(self.config.model_size)
        )
        condition = F.interpolate(images, size=(model_height, model_width), mode="bilinear", antialias=True,
                                  align_corners=False) * 2.0 - 1.0  # fmt: skip
        condition = condition.to(self.unet.dtype)
        conditions = self.prepare_conditions(condition, motion_mask)
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

        spectra = normalizer.denormalize(decode_latents(self.vae, latents).float())  # (B, K, 4, h, w) model px
        if not bool(torch.isfinite(spectra).all()):
            advice = f": lower self_guidance_scale ({self_guidance_scale:g})" if self_guidance_scale > 0 else ""
            raise GIDInputError(f"sampling diverged to non-finite displacements{advice}")
        spectra = resize_spectrum(spectra, (out_height, out_width)) * motion_scale
        volumes = [SpectralVolume(spectrum.cpu(), num_frames, float(fps)) for spectrum in spectra]

        frames = None
        if output_type != "spectrum":
            video = self.render(images, volumes)  # (B, F, 3, H, W)
            frames = self.video_processor.postprocess_video(video.transpose(1, 2), output_type=output_type)

        self.maybe_free_model_hooks()
        if not return_dict:
            return frames, volumes
        return GIDPipelineOutput(frames=frames, spectral_volumes=volumes)

    def predict_spectral_volume(self, image: PipelineImage | Sequence[PipelineImage], **kwargs) -> list[SpectralVolume]:
        """Sample spectral volumes without rendering: ``__call__``'s arguments (but output_type and return_dict).

        Returns:
            One SpectralVolume per image, at the output resolution, in pixels (see GIDPipelineOutput).
        """
        for name in ("output_type", "return_dict"):
            if name in kwargs:
                raise GIDInputError(f"predict_spectral_volume takes no {name}")
        return self(image, output_type="spectrum", **kwargs).spectral_volumes

    def iter_frames(
        self, image: torch.Tensor, volume: SpectralVolume, learned_renderer: bool = True
    ) -> Iterator[torch.Tensor]:
        """Stream one image's loop: (n, 3, H, W) float chunks in [0, 1], with the pipeline's renderer.

        Args:
            image: (3, H, W) float in [0, 1] at the volume's resolution (preprocess_image gives it).
            volume: its spectral volume (motion_scale already applied); num_frames frames are rendered.
            learned_renderer: False renders with pixel softmax splatting even when the pipeline has a renderer
                (several times faster on a CPU).
        """
        renderer = self.renderer if learned_renderer else None
        return stream_loop(image, volume.spectrum, volume.num_frames, renderer=renderer)

    def render(self, images: torch.Tensor, volumes: Sequence[SpectralVolume]) -> torch.Tensor:
        """(B, 3, H, W) images in [0, 1] and their volumes -> (B, F, 3, H, W) float frames in [0, 1]."""
        return torch.stack(
            [self._collect(self.iter_frames(image.float(), volume), volume.num_frames)
             for image, volume in zip(images, volumes, strict=True)]
        )  # fmt: skip

    # ------------------------------------------------------------------------------------------ playing a volume

    def played_volume(
        self,
        image: PipelineImage,
        volume: SpectralVolume,
        *,
        speed: float = 1.0,
        amplitude: float = 1.0,
        frequency_band: FrequencyBand | None = None,
        region_mask: Mask | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
    ) -> SpectralVolume:
        """The volume ``iter_loop_frames`` plays for these controls: fitted to the image, controls applied.

        See iter_loop_frames for the arguments. Returns a SpectralVolume on the image's grid (pixels of it) whose
        (num_frames, fps) is the rendered loop's: replaying it (gid render, rendering.render_loop) gives the same
        frames.
        """
        height, width = self._single_image(image).shape[-2:]
        return self._played(height, width, volume, speed, amplitude, frequency_band, region_mask, num_frames, fps)

    def iter_loop_frames(
        self,
        image: PipelineImage,
        volume: SpectralVolume,
        *,
        speed: float = 1.0,
        amplitude: float = 1.0,
        frequency_band: FrequencyBand | None = None,
        region_mask: Mask | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        learned_renderer: bool = True,
    ) -> Iterator[torch.Tensor]:
        """Stream a seamless loop of one image moved by a spectral volume, with motion controls.

        The volume is fitted to the image (resized, displacements scaled; the aspect ratios must agree), then
        motion_controls.apply_controls: the band, the region mask, the amplitude, the speed. Rendering uses the
        pipeline's learned renderer when it has one (else pixel softmax splatting), chunk by chunk, so memory
        stays bounded. Arguments are checked before the iterator is returned.

        Args:
            image: one image as __call__ takes it (PIL image, (H, W, 3) uint8 array, (3, H, W) float tensor in
                [0, 1], or a path); rendered at its own size.
            volume: its SpectralVolume (e.g. out.spectral_volumes[0] of __call__, or SpectralVolume.load).
            speed: playback speed factor, > 0: 2 plays the loop in half the time (half the frames at one fps).
            amplitude: displacement factor (0 is still; negative flips the motion).
            frequency_band: (low_hz, high_hz) of the volume's frequencies to keep (None: no limit on that side).
            region_mask: (h, w) values in [0, 1] of the image's aspect ratio: 0 holds a region still.
            num_frames: frames of one period; default round(period_seconds / speed * fps). Given without fps, the
                period is kept and the frame rate follows (more frames, smoother loop); given with fps, the period
                is num_frames / fps seconds. At most MAX_NUM_FRAMES.
            fps: frames per second of the loop; default the volume's.
            learned_renderer: False renders with pixel softmax splatting even when the pipeline has a renderer.

        Yields:
            (n, 3, H, W) float32 frames in [0, 1] on the CPU, in order; frame 0 is the image, and the frame after
            the last would equal frame 0.
        """
        tensor = self._single_image(image)
        played = self._played(*tensor.shape[-2:], volume, speed, amplitude, frequency_band, region_mask,
                              num_frames, fps)  # fmt: skip
        return self._on_cpu(self.iter_frames(tensor.to(self._execution_device), played, learned_renderer))

    def render_spectral_volume(
        self,
        image: PipelineImage,
        volume: SpectralVolume,
        *,
        speed: float = 1.0,
        amplitude: float = 1.0,
        frequency_band: FrequencyBand | None = None,
        region_mask: Mask | None = None,
        num_frames: int | None = None,
        fps: float | None = None,
        output_type: str = "np",
        return_dict: bool = True,
    ) -> GIDPipelineOutput | tuple:
        """Render one image moved by a spectral volume into a seamless loop (no sampling): iter_loop_frames, whole.

        Args:
            image, volume, speed, amplitude, frequency_band, region_mask, num_frames, fps: as iter_loop_frames.
            output_type: "pil", "np" or "pt" (see GIDPipelineOutput).
            return_dict: return a GIDPipelineOutput rather than a tuple (frames, spectral_volumes).

        Returns:
            GIDPipelineOutput with frames for this one image in diffusers' batched video layout (out.frames[0] is
            the loop: (F, H, W, 3) for "np", (F, 3, H, W) for "pt", F PIL images for "pil") and spectral_volumes
            = [the played volume] (played_volume: on the image's grid, controls applied, the loop's time base).
        """
        _check_frame_output_type(output_type)
        tensor = self._single_image(image)
        played = self._played(*tensor.shape[-2:], volume, speed, amplitude, frequency_band, region_mask,
                              num_frames, fps)  # fmt: skip
        video = self._collect(self.iter_frames(tensor.to(self._execution_device), played), played.num_frames)
        return self._frames_output(video, played, output_type, return_dict)

    def iter_poke_frames(
        self,
        image: PipelineImage,
        volume: SpectralVolume,
        point: tuple[float, float],
        force: tuple[float, float],
        *,
        num_frames: int = 150,
        fps: float = 30.0,
        hold: float = 0.0,
        damping: float = DEFAULT_DAMPING,
    ) -> Iterator[torch.Tensor]:
        """Stream the response of the picture to a poke: its spectral volume read as modal bases (dynamics).

        The poke starts at frame 0; the scene swings and settles as damped oscillators (dynamics module
        docstring for the model and units). Rendered with pixel softmax splatting. Arguments are checked before
        the iterator is returned.

        Args:
            image: one image as __call__ takes it, rendered at its own size.
            volume: its SpectralVolume, fitted to the image (the aspect ratios must agree).
            point: (x, y) image pixels of the poke, (0, 0) the top-left pixel's centre.
            force: (dx, dy) in pixels of the image: about how far the poked point is pushed.
            num_frames: frames to render, 1 to MAX_NUM_FRAMES.
            fps: frames per second, > 0.
            hold: seconds the force is held (a drag) before release; 0 is an impulse.
            damping: modal damping ratio in [0, 1).

        Yields:
            (n, 3, H, W) float32 frames in [0, 1] on the CPU, in order; a zero force leaves every frame the image.
        """
        tensor = self._single_image(image)
        point, force = _pair(point, "point", "(x, y)"), _pair(force, "force", "(dx, dy)")
        if isinstance(num_frames, bool) or not isinstance(num_frames, int) or not 1 <= num_frames <= MAX_NUM_FRAMES:
            raise GIDInputError(f"num_frames must be an integer from 1 to MAX_NUM_FRAMES = {MAX_NUM_FRAMES}, "
                                f"got {num_frames!r}")  # fmt: skip
        params = DynamicsParams(damping=damping)
        return poke_video_frames(tensor, volume, point, force, num_frames, fps, drag_seconds=hold, params=params)

    def poke(
        self,
        image: PipelineImage,
        volume: SpectralVolume,
        point: tuple[float, float],
        force: tuple[float, float],
        *,
        num_frames: int = 150,
        fps: float = 30.0,
        hold: float = 0.0,
        damping: float = DEFAULT_DAMPING,
        output_type: str = "np",
        return_dict: bool = True,
    ) -> GIDPipelineOutput | tuple:
        """Render the response to a poke (iter_poke_frames, whole).

        Args:
            image, volume, point, force, num_frames, fps, hold, damping: as iter_poke_frames.
            output_type: "pil", "np" or "pt" (see GIDPipelineOutput).
            return_dict: return a GIDPipelineOutput rather than a tuple (frames, spectral_volumes).

        Returns:
            GIDPipelineOutput with frames for this one image (out.frames[0] is the video) and spectral_volumes =
            [the volume fitted to the image's grid].
        """
        _check_frame_output_type(output_type)
        chunks = self.iter_poke_frames(image, volume, point, force, num_frames=num_frames, fps=fps, hold=hold,
                                       damping=damping)  # fmt: skip
        height, width = self._single_image(image).shape[-2:]
        fitted = SpectralVolume(fit_spectrum_to_image(volume.spectrum.float(), height, width), volume.num_frames,
                                volume.fps)  # fmt: skip
        return self._frames_output(self._collect(chunks, num_frames), fitted, output_type, return_dict)

    def _single_image(self, image: PipelineImage) -> torch.Tensor:
        """One image in any accepted form -> (3, H, W) float32 in [0, 1], at its own size."""
        if isinstance(image, (list, tuple)) or (isinstance(image, torch.Tensor) and image.dim() == 4):
            raise GIDInputError("give one image here (a PIL image, an (H, W, 3) array or a (3, H, W) tensor)")
        (tensor,) = _to_tensors(image)
        return tensor

    def _played(
        self,
        height: int,
        width: int,
        volume: SpectralVolume,
        speed: float,
        amplitude: float,
        frequency_band: FrequencyBand | None,
        region_mask: Mask | None,
        num_frames: int | None,
        fps: float | None,
    ) -> SpectralVolume:
        """played_volume for an image of height x width (arguments as iter_loop_frames)."""
        if not isinstance(volume, SpectralVolume):
            raise GIDInputError(f"need a SpectralVolume (e.g. out.spectral_volumes[0]), got {type(volume).__name__}")
        fitted = SpectralVolume(fit_spectrum_to_image(volume.spectrum.float(), height, width), volume.num_frames,
                                volume.fps)  # fmt: skip
        played = apply_controls(fitted, speed, amplitude, frequency_band, region_mask, fps)
        if num_frames is not None:
            if not _is_frame_count(num_frames, volume.num_frequencies):
                raise GIDInputError(
                    f"num_frames must be an integer from {max(2, 2 * (volume.num_frequencies - 1))} (to hold "
                    f"{volume.num_frequencies} frequencies) to MAX_NUM_FRAMES = {MAX_NUM_FRAMES}, got {num_frames!r}"
                )
            rate = float(fps) if fps is not None else num_frames * speed / volume.period_seconds
            played = SpectralVolume(played.spectrum, num_frames, rate)
        if played.num_frames > MAX_NUM_FRAMES:
            raise GIDInputError(
                f"speed {speed:g} at {played.fps:g} fps makes a loop of {played.num_frames} frames; at most "
                f"MAX_NUM_FRAMES = {MAX_NUM_FRAMES} (raise speed or lower fps)"
            )
        return played

    @staticmethod
    def _on_cpu(chunks: Iterator[torch.Tensor]) -> Iterator[torch.Tensor]:
        for chunk in chunks:
            yield chunk.float().cpu()

    def _collect(self, chunks: Iterator[torch.Tensor], total: int) -> torch.Tensor:
        """Concatenate streamed (n, 3, H, W) chunks with a progress bar: (total, 3, H, W) float32 on the CPU."""
        frames = []
        with self.progress_bar(total=total) as progress_bar:
            for chunk in chunks:
                frames.append(chunk.float().cpu())
                progress_bar.update(chunk.shape[0])
        return torch.cat(frames)

    def _frames_output(
        self, video: torch.Tensor, volume: SpectralVolume, output_type: str, return_dict: bool
    ) -> GIDPipelineOutput | tuple:
        """(F, 3, H, W) frames of one image -> diffusers' batched video output for output_type."""
        frames = self.video_processor.postprocess_video(video[None].transpose(1, 2), output_type=output_type)
        if not return_dict:
            return frames, [volume]
        return GIDPipelineOutput(frames=frames, spectral_volumes=[volume])

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


def _to_tensors(image: Any) -> list[torch.Tensor]:
    """One pipeline image -> a list of (3, H, W) float32 tensors in [0, 1] (a (B, 3, H, W) tensor gives B)."""
    if isinstance(image, torch.Tensor):
        if not image.is_floating_point():
            raise GIDInputError(f"an image tensor must be float in [0, 1], got {image.dtype}")
        if image.ndim not in (3, 4) or image.shape[-3] != 3:
            raise GIDInputError(f"an image tensor must be (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
        batch = image.detach().float().cpu().reshape(-1, *image.shape[-3:])
        height, width = batch.shape[-2:]
        if min(height, width) < MIN_IMAGE_SIDE or height * width > MAX_IMAGE_PIXELS:
            raise GIDInputError(
                f"image is {width}x{height}: each side must be at least {MIN_IMAGE_SIDE} pixels and the image at most "
                f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
            )
        if not bool(torch.isfinite(batch).all()) or batch.min() < 0 or batch.max() > 1:
            raise GIDInputError("an image tensor must hold finite values in [0, 1]")
        return list(batch)
    if isinstance(image, (PIL.Image.Image, np.ndarray, str, os.PathLike, Path)):
        return [image_to_tensor(read_image(image))]
    raise GIDInputError(
        f"an image must be a PIL image, an (H, W, 3) uint8 array or a float tensor, got {type(image).__name__}"
    )


def _twice(value: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """A condition for both halves of a classifier-free guidance batch (a tensor, or a tuple of feature maps)."""
    if isinstance(value, tuple):
        return tuple(torch.cat([maps, maps]) for maps in value)
    return torch.cat([value, value])


def _is_frame_count(num_frames: Any, num_frequencies: int) -> bool:
    """An integer number of frames that holds num_frequencies frequencies and is at most MAX_NUM_FRAMES."""
    minimum = max(2, 2 * (num_frequencies - 1))
    return isinstance(num_frames, int) and not isinstance(num_frames, bool) and minimum <= num_frames <= MAX_NUM_FRAMES


def _check_frame_output_type(output_type: str) -> None:
    if output_type not in FRAME_OUTPUT_TYPES:
        raise GIDInputError(f"output_type must be one of {FRAME_OUTPUT_TYPES}, got {output_type!r}")


def _pair(value: Any, name: str, layout: str) -> tuple[float, float]:
    """A pair of finite numbers, e.g. a poke's point or force; GIDInputError naming ``name`` otherwise."""
    try:
        first, second = (float(v) for v in value)
    except (TypeError, ValueError) as error:
        raise GIDInputError(f"{name} must be a pair of numbers {layout}, got {value!r}") from error
    if not (math.isfinite(first) and math.isfinite(second)):
        raise GIDInputError(f"{name} must be finite, got {value!r}")
    return first, second
