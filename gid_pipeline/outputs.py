"""The output of the pipeline and of the player: frames in diffusers' video layout, and the spectral volumes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput
from diffusers.video_processor import VideoProcessor

from .errors import GIDInputError
from .spectral.volume import SpectralVolume

FRAME_OUTPUT_TYPES = ("pil", "np", "pt")
# Frames are produced in [0, 1]: no [-1, 1] denormalisation, no resizing.
_VIDEO_PROCESSOR = VideoProcessor(do_normalize=False, do_resize=False)
Frames = list[list[PIL.Image.Image]] | np.ndarray | torch.Tensor


@dataclass
class GIDPipelineOutput(BaseOutput):
    """Output of GIDPipeline and Player.

    Attributes:
        frames: per input image, one loop (or poke video) of F frames, diffusers' video convention: "pil" a list of
            lists of PIL images, "np" a (B, F, H, W, 3) float32 array in [0, 1], "pt" a (B, F, 3, H, W) float
            tensor in [0, 1]; None for output_type "spectrum". Frame 0 of a loop is the input image; frame F would
            equal frame 0.
        spectral_volumes: per input image, a SpectralVolume in pixels of its grid: from the pipeline, as the
            model predicted it (playback controls are never baked in); from the player, the volume it played
            (fitted to the image, controls applied, the loop's time base: replaying it renders the same loop).
    """

    frames: Frames | None
    spectral_volumes: list[SpectralVolume]


def check_frame_output_type(output_type: str) -> None:
    if output_type not in FRAME_OUTPUT_TYPES:
        raise GIDInputError(f"output_type must be one of {FRAME_OUTPUT_TYPES}, got {output_type!r}")


def postprocess_frames(video: torch.Tensor, output_type: str) -> Frames:
    """(B, F, 3, H, W) float frames in [0, 1] -> the output_type's layout (GIDPipelineOutput.frames)."""
    return _VIDEO_PROCESSOR.postprocess_video(video.transpose(1, 2), output_type=output_type)
