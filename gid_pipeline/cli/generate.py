"""``gid generate``, ``gid build-pipeline`` and ``gid publish``: the learned model, from a photo to a loop.

The pipeline code (diffusers) is imported inside the handlers, so other subcommands start fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from .. import DEFAULT_CHECKPOINT
from ..guidance import PAPER_GUIDANCE_SCALE
from ..media.images import read_image
from .arguments import long_side, non_negative_float, pair, positive_float, positive_int, seed, size, video_path
from .motion import check_render_size, play


def _generate(args: argparse.Namespace) -> None:
    from ..checks import check_number
    from ..deploy.hub import load_pipeline
    from ..limits import MAX_GUIDANCE_SCALE, MAX_INFERENCE_STEPS, MAX_NUM_FRAMES, MAX_SELF_GUIDANCE_SCALE
    from ..player import PlaybackControls
    from ..sizing import DEFAULT_MAX_LONG_SIDE

    # Every limit is checked before the model loads (the pipeline checks them again, for Python callers).
    check_number("--steps", args.steps, 1, MAX_INFERENCE_STEPS, integer=True)
    check_number("--frames", args.frames, 2, MAX_NUM_FRAMES, integer=True)
    if args.guidance_scale is not None:
        check_number("--guidance-scale", args.guidance_scale, 0.0, MAX_GUIDANCE_SCALE)
    check_number("--self-guidance-scale", args.self_guidance_scale, 0.0, MAX_SELF_GUIDANCE_SCALE)
    image = read_image(args.image)  # a missing, non-image, too small or too large file fails before any model loads
    if args.mask is not None:
        from ..motion.mask import to_motion_mask

        to_motion_mask(args.mask, *np.asarray(image).shape[:2])  # an unreadable or misshapen mask fails here too
    band = tuple(args.band) if args.band is not None else None
    controls = PlaybackControls(speed=args.speed, amplitude=args.amplitude, frequency_band=band, fps=args.fps)
    pipe = load_pipeline(args.checkpoint, scheduler=args.scheduler)
    if torch.cuda.is_available():
        pipe.to("cuda")
    images = pipe.preprocess_image(image, max_long_side=args.long_side or DEFAULT_MAX_LONG_SIDE)
    check_render_size(images)
    volume = pipe.predict_spectral_volume(
        images,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance_scale,
        self_guidance_scale=args.self_guidance_scale,
        num_frames=args.frames,
        fps=args.fps,
        motion_mask=args.mask,
        generator=torch.Generator().manual_seed(args.seed),
    )[0]
    if args.spectrum_out is not None:
        volume.save(args.spectrum_out)
        print(f"wrote {args.spectrum_out}")
    print(play(args.output, pipe.player, images[0], volume, controls))


def _build_pipeline(args: argparse.Namespace) -> None:
    from ..deploy.hub import build_pipeline, save_pipeline

    width, height = args.size
    pipe = build_pipeline(
        args.vae, args.unet, args.renderer, args.image_encoder, model_size=(height, width),
        default_guidance_scale=args.guidance_scale, motion_calibration=args.motion_calibration,
        guided_filter_radius=args.guided_filter_radius,
    )  # fmt: skip
    output = save_pipeline(pipe, args.output, overwrite=args.overwrite)
    renderer = "a learned renderer" if pipe.renderer is not None else "pixel splatting (no learned renderer)"
    print(f"wrote {output} (K = {pipe.unet.config.num_frequencies}, {type(pipe.scheduler).__name__} "
          f"{pipe.scheduler.config.prediction_type}, {renderer})")  # fmt: skip


def _publish(args: argparse.Namespace) -> None:
    from ..deploy.hub import publish

    folder, files, url = publish(args.checkpoint, args.repo_id, args.private, args.dry_run, args.out)
    sizes = {path: (folder / path).stat().st_size for path in files}
    for path, nbytes in sizes.items():
        print(f"  {path}  {nbytes / 1e6:.2f} MB")
    total = f"{len(files)} files, {sum(sizes.values()) / 1e6:.2f} MB"
    if url is None:
        print(f"dry run: built {folder} ({total}); nothing uploaded to {args.repo_id}")
    else:
        print(f"uploaded {total} to {args.repo_id}: {url}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add generate, build-pipeline and publish to the ``gid`` subcommands."""
    generate = commands.add_parser(
        "generate",
        help="turn a still photo into a seamless looping video with the learned model",
        description="Sample how every pixel of IMAGE oscillates (a spectral volume) with the GIDPipeline and render "
        "a seamless loop; frame 0 is the photo. The model samples near 256x160 at the photo's aspect ratio; the "
        "video is rendered at the photo's size, long side capped.",
    )
    generate.add_argument("image", type=Path, help="input photo (anything Pillow reads)")
    generate.add_argument("-o", "--output", type=video_path, required=True, help="loop video (.mp4, .gif, .webm)")
    generate.add_argument(
        "--checkpoint",
        default=str(DEFAULT_CHECKPOINT),
        help="pipeline folder or Hub repo id org/name (default: the checkpoint shipped in assets/gid-default)",
    )
    generate.add_argument("--steps", type=positive_int, default=25, help="denoising steps (25)")
    generate.add_argument(
        "--guidance-scale",
        type=non_negative_float,
        help="classifier-free guidance scale; 1 = none (default: the checkpoint's, see its model card)",
    )
    generate.add_argument(
        "--self-guidance-scale",
        type=non_negative_float,
        default=0.0,
        help="motion self-guidance u toward a calmer loop seam (0 = off; try 10-100: too large diverges)",
    )
    generate.add_argument("--seed", type=seed, default=0, help="random seed; the same seed gives the same video (0)")
    generate.add_argument("--frames", type=positive_int, default=150, help="loop period in frames (150)")
    generate.add_argument("--fps", type=positive_float, default=30.0, help="frame rate of the video (30)")
    generate.add_argument(
        "--amplitude", type=non_negative_float, default=1.0, help="playback amplitude factor (the saved spectrum is "
        "as predicted) (1)"
    )
    generate.add_argument(
        "--long-side", type=long_side, help="render at the photo's size with the longer side at most N px (512)"
    )
    generate.add_argument(
        "--speed", type=positive_float, default=1.0, help="playback speed: 2 plays the loop in half the time (1)"
    )
    generate.add_argument(
        "--band", type=pair, help="keep only the motion between LOW,HIGH Hz of the predicted loop, e.g. 0.2,1.0"
    )
    generate.add_argument("--spectrum-out", type=Path, help="also save the spectral volume (.safetensors)")
    generate.add_argument(
        "--mask",
        type=Path,
        help="motion brush: an image of the photo's aspect ratio, white where it moves, black where it stays still "
        "(held exactly still), mid grey or transparent where the model decides (stored in --spectrum-out)",
    )
    generate.add_argument(
        "--scheduler", choices=("dpm", "ddim"), help="sampler: dpm (DPM-Solver++) or ddim (default: the checkpoint's)"
    )
    generate.set_defaults(run=_generate)

    build = commands.add_parser(
        "build-pipeline",
        help="assemble a pipeline folder from trained VAE, U-Net (and renderer) exports",
        description="Check that the exports fit (K, latent channels, downsampling, normalisation statistics) and "
        "save a GIDPipeline folder with a model card. The scheduler is DPM-Solver++ made from the training "
        "scheduler in RUN/scheduler beside the U-Net export, with its prediction_type.",
    )
    build.add_argument("--vae", type=Path, required=True, help="RUN/vae of gid train vae")
    build.add_argument("--unet", type=Path, required=True, help="RUN/unet of gid train unet")
    build.add_argument("--renderer", type=Path, help="a SplatRenderer export (default: pixel softmax splatting)")
    build.add_argument(
        "--image-encoder", type=Path, help="the image encoder of a feature-conditioned U-Net (gid convert-encoder)"
    )
    build.add_argument("--size", type=size, default=(256, 160), help="model resolution WIDTHxHEIGHT (256x160)")
    build.add_argument("-o", "--output", type=Path, required=True, help="pipeline folder to write")
    build.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    build.add_argument(
        "--guidance-scale",
        type=non_negative_float,
        default=PAPER_GUIDANCE_SCALE,
        help=f"the pipeline's default guidance scale ({PAPER_GUIDANCE_SCALE:g}, the paper's; tune with gid evaluate)",
    )
    build.add_argument(
        "--motion-calibration",
        type=positive_float,
        default=1.0,
        help="a factor on every predicted displacement, fitted on real clips with gid calibrate (1: as trained)",
    )
    build.add_argument(
        "--guided-filter-radius",
        type=int,
        default=0,
        help="resample decoded motion to the output grid with a guided filter of this radius (model pixels) and "
        "the photo as guide, so motion stops at its edges (0: bilinear)",
    )
    build.set_defaults(run=_build_pipeline)

    publish = commands.add_parser(
        "publish",
        help="upload a pipeline folder to the Hugging Face Hub",
        description="Load CHECKPOINT (so only a working pipeline is published), build the upload folder (the "
        "pipeline in safetensors and a model card) and upload it with HfApi.upload_folder, creating the "
        "repository if needed. Uses the token of `hf auth login` or HF_TOKEN.",
    )
    publish.add_argument("checkpoint", help="pipeline folder (or Hub repo id) to publish")
    publish.add_argument("--repo-id", required=True, help="target repository org/name")
    publish.add_argument("--private", action="store_true", help="create the repository private")
    publish.add_argument("--dry-run", action="store_true", help="build the upload folder and list it; no network")
    publish.add_argument("--out", type=Path, help="build the upload folder here (new or empty; default: a temp dir)")
    publish.set_defaults(run=_publish)
