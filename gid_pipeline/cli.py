"""The ``gid`` command line: each subcommand parses, calls the library, and reports; the math lives elsewhere."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import __version__
from .clip_motion import clip_motion
from .dynamics import DEFAULT_DAMPING, DynamicsParams, poke_video_frames
from .errors import GIDInputError
from .rendering import image_to_tensor, iter_loop_frames
from .spectral import DEFAULT_NUM_FREQUENCIES
from .spectral_volume import SpectralVolume
from .video import VIDEO_SUFFIXES, VideoWriter, read_image, read_video

# Rendering streams frames in chunks, so the limit is time, not memory: 4K at 150 frames takes minutes on a CPU.
MAX_RENDER_PIXELS = 3840 * 2160


def _size(text: str) -> tuple[int, int]:
    """'256x160' -> (256, 160) as (width, height)."""
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 256x160 (width x height), got {text!r}") from None
    if width < 16 or height < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return width, height


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a non-negative number, got {text}")
    return value


def _taper(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 0.5:
        raise argparse.ArgumentTypeError(f"must be in [0, 0.5), got {text}")
    return value


def _pair(text: str) -> tuple[float, float]:
    """'120,45' -> (120.0, 45.0)."""
    try:
        first, second = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers like 120,45, got {text!r}") from None
    return first, second


def _video_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise argparse.ArgumentTypeError(f"output must end in one of {', '.join(VIDEO_SUFFIXES)}, got {text!r}")
    return path


def _check_render_size(image: torch.Tensor) -> None:
    height, width = image.shape[-2:]
    if height * width > MAX_RENDER_PIXELS:
        raise GIDInputError(
            f"image is {width}x{height}; rendering is limited to {MAX_RENDER_PIXELS / 1e6:.1f} megapixels"
        )


def _stream_to_video(output: Path, chunks: Iterator[torch.Tensor], num_frames: int, fps: float, desc: str) -> None:
    """Write chunks of (n, 3, H, W) frames as they are rendered; the file appears only once complete."""
    with (
        VideoWriter(output, fps) as writer,
        tqdm(total=num_frames, desc=desc, unit="frame", disable=None) as bar,
    ):
        for frames in chunks:
            writer.write(frames)
            bar.update(frames.shape[0])


def _write_loop(
    output: Path, image: torch.Tensor, volume: SpectralVolume, num_frames: int, fps: float, motion_scale: float
) -> None:
    """Render one period of the loop in chunks and stream it into the output video."""
    _check_render_size(image)
    chunks = iter_loop_frames(image, volume.spectrum, num_frames, motion_scale=motion_scale)
    _stream_to_video(output, chunks, num_frames, fps, "render")


def _from_video(args: argparse.Namespace) -> None:
    clip = read_video(
        args.clip, fps=args.fps, start=args.start, num_frames=args.frames, size=args.size, long_side=args.long_side
    )
    motion = clip_motion(
        clip.frames,
        clip.fps,
        args.num_frequencies,
        method=args.method,
        stabilize=args.stabilize,
        loop_taper=args.loop_taper,
        progress=True,
    )
    _write_loop(args.output, image_to_tensor(motion.image), motion.volume, args.frames, clip.fps, args.motion_scale)
    if args.spectrum_out is not None:
        motion.volume.save(args.spectrum_out)
        print(f"wrote {args.spectrum_out}")
    print(f"wrote {args.output} ({args.frames} frames at {clip.fps:g} fps, a seamless loop)")


def _render(args: argparse.Namespace) -> None:
    volume = SpectralVolume.load(args.spectrum)
    image = image_to_tensor(read_image(args.image))
    fps = args.fps or volume.fps
    num_frames = args.frames or max(2, round(volume.period_seconds * fps / args.speed))
    _write_loop(args.output, image, volume, num_frames, fps, args.motion_scale)
    print(f"wrote {args.output} ({num_frames} frames at {fps:g} fps, a seamless loop)")


def _poke(args: argparse.Namespace) -> None:
    volume = SpectralVolume.load(args.spectrum)
    image = image_to_tensor(read_image(args.image))
    _check_render_size(image)
    params = DynamicsParams(damping=args.damping)
    chunks = poke_video_frames(image, volume, args.at, args.force, args.frames, args.fps, args.drag_seconds, params)
    _stream_to_video(args.output, chunks, args.frames, args.fps, "poke")
    print(f"wrote {args.output} ({args.frames} frames at {args.fps:g} fps)")


def _prepare_data(args: argparse.Namespace) -> None:
    # Imported here: only this command needs the data engine (and the procedural generator it loads).
    import errno

    from .data.builder import (
        SampleConfig,
        VideoConfig,
        WindowFilters,
        prepare_procedural_dataset,
        prepare_video_dataset,
    )

    if (args.video_dir is None) == (args.procedural is None):
        raise GIDInputError("give either a VIDEO_DIR or --procedural N (not both)")
    config = SampleConfig(args.size, args.frames, args.fps, args.num_frequencies)
    common = {"workers": args.workers, "samples_per_shard": args.samples_per_shard, "progress": True}
    try:
        if args.procedural is not None:
            summary = prepare_procedural_dataset(
                args.procedural, args.output, config, seed_offset=args.seed_offset, **common
            )
        else:
            filters = WindowFilters(
                max_histogram_jump=args.max_histogram_jump,
                max_intensity_jump=args.max_intensity_jump,
                max_camera_motion=args.max_camera_motion,
                max_motion=args.max_motion,
                min_consistent_fraction=args.min_consistent,
                min_motion=args.min_motion,
            )
            video = VideoConfig(args.stride, args.method, args.stabilize, filters, args.check_every)
            summary = prepare_video_dataset(args.video_dir, args.output, config, video, **common)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise
        raise GIDInputError(
            f"cannot write to {args.output}: {error.strerror}; the shards written so far are intact, free space "
            "(or fix permissions) and rerun the same command to resume"
        ) from error
    rejected = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.rejected.items())) or "none"
    print(
        f"wrote {summary.root}: {summary.num_samples} samples in {summary.num_shards} shards ({summary.new_samples} "
        f"new); rejected: {rejected}; unreadable files: {summary.errors} (details in manifest.json)"
    )


def _train(args: argparse.Namespace) -> None:
    # Imported here: only this command needs accelerate and the training code.
    import json

    from .training import TrainConfig, train_unet, train_vae

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
        "augment", "weights",
    )  # fmt: skip
    values.update({name: getattr(args, name) for name in fields if getattr(args, name) is not None})
    for name in ("vae", "init_from"):
        if getattr(args, name) is not None:
            values[name] = str(getattr(args, name))
    if args.data:
        values["data"] = [str(path) for path in args.data]
    values.update(model=args.model, output=str(args.output))
    config = TrainConfig.from_dict(values)
    export = (train_vae if args.model == "vae" else train_unet)(config, resume=args.resume)
    print(f"wrote {export} (losses in {args.output / 'losses.jsonl'}, checkpoints in {args.output / 'checkpoints'})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gid", description="Generative Image Dynamics: seamless loops and interactive motion from images."
    )
    parser.add_argument("--version", action="version", version=f"gid_pipeline {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from_video = commands.add_parser(
        "from-video",
        help="turn a short clip of something swaying into a seamless loop",
        description="Optical flow from the clip's first frame -> spectral volume -> a seamless loop rendered "
        "from that first frame.",
    )
    from_video.add_argument("clip", type=Path, help="input video (anything ffmpeg reads)")
    from_video.add_argument("-o", "--output", type=_video_path, required=True, help="loop video (.mp4, .gif, .webm)")
    from_video.add_argument("--spectrum-out", type=Path, help="also save the spectral volume (.safetensors)")
    from_video.add_argument("--start", type=int, default=0, help="first frame, counted at --fps (default 0)")
    from_video.add_argument("--frames", type=_positive_int, default=150, help="loop period in frames (150)")
    from_video.add_argument("--fps", type=_positive_float, default=30.0, help="sample the clip at this rate (30)")
    sizing = from_video.add_mutually_exclusive_group()
    sizing.add_argument("--size", type=_size, help="analyse and render at WIDTHxHEIGHT, e.g. 256x160")
    sizing.add_argument("--long-side", type=_positive_int, help="resize so the longer side is N pixels")
    from_video.add_argument("--motion-scale", type=_non_negative_float, default=1.0, help="amplitude factor (1)")
    from_video.add_argument(
        "--num-frequencies", type=_positive_int, default=DEFAULT_NUM_FREQUENCIES, help="K frequencies kept (16)"
    )
    from_video.add_argument("--method", choices=("dis", "tvl1"), default="dis", help="optical flow method (dis)")
    from_video.add_argument(
        "--stabilize", choices=("none", "median", "homography"), default="none", help="remove camera motion"
    )
    from_video.add_argument(
        "--loop-taper",
        type=_taper,
        default=0.2,
        help="fraction of frames at each end eased into the loop's seam (0.2; 0 weighs all frames equally)",
    )
    from_video.set_defaults(run=_from_video)

    render = commands.add_parser(
        "render",
        help="render an image with a saved spectral volume",
        description="Render a seamless loop of IMAGE moved by a spectral volume (resized to the image when the "
        "aspect ratios match, displacements scaled).",
    )
    render.add_argument("image", type=Path, help="input image")
    render.add_argument("--spectrum", type=Path, required=True, help="spectral volume (.safetensors)")
    render.add_argument("-o", "--output", type=_video_path, required=True, help="loop video (.mp4, .gif, .webm)")
    render.add_argument("--fps", type=_positive_float, help="output frame rate (default: the spectrum's)")
    timing = render.add_mutually_exclusive_group()
    timing.add_argument("--frames", type=_positive_int, help="loop length in frames (default: one period)")
    timing.add_argument("--speed", type=_positive_float, default=1.0, help="playback speed factor (1)")
    render.add_argument("--motion-scale", type=_non_negative_float, default=1.0, help="amplitude factor (1)")
    render.set_defaults(run=_render)

    poke = commands.add_parser(
        "poke",
        help="poke a point of an image and render how the scene sways and settles",
        description="Read the image's spectral volume as modal bases (Davis et al. 2015), push the picture at --at "
        "with --force (an impulse, or a drag held for --drag-seconds and released) and render the damped response. "
        "Negative numbers need '=': --force=-6,0.",
    )
    poke.add_argument("image", type=Path, help="input image")
    poke.add_argument(
        "--spectrum",
        type=Path,
        required=True,
        help="its spectral volume (.safetensors), resized to the image when the aspect ratios match",
    )
    poke.add_argument(
        "--at", type=_pair, required=True, metavar="X,Y", help="poked point in image pixels, 0,0 = top-left pixel"
    )
    poke.add_argument(
        "--force",
        type=_pair,
        required=True,
        metavar="DX,DY",
        help="push in pixels: about how far the poked point moves (e.g. 8,0 pushes right)",
    )
    poke.add_argument(
        "--drag-seconds",
        type=_non_negative_float,
        default=0.0,
        help="hold the push this long, then release; 0 = an impulse (0)",
    )
    poke.add_argument("--frames", type=_positive_int, default=150, help="frames to render (150)")
    poke.add_argument("--fps", type=_positive_float, default=30.0, help="output frame rate (30)")
    poke.add_argument(
        "--damping",
        type=_non_negative_float,
        default=DEFAULT_DAMPING,
        help=f"modal damping ratio in [0, 1) ({DEFAULT_DAMPING:g})",
    )
    poke.add_argument("-o", "--output", type=_video_path, required=True, help="video (.mp4, .gif, .webm)")
    poke.set_defaults(run=_poke)

    # Imported here for its defaults: see _prepare_data.
    from .data.builder import VideoConfig

    video, filters = VideoConfig(), VideoConfig().filters
    prepare = commands.add_parser(
        "prepare-data",
        help="build a training dataset of (image, spectral volume) pairs from clips or procedural scenes",
        description="Cut every clip under VIDEO_DIR (recursively) into windows of --frames frames every --stride "
        "frames at --fps, centre-crop them to the aspect ratio of --size and resize, measure optical flow from "
        "each window's first frame, drop unreliable windows (reasons in the manifest) and store frame 0 with "
        "its spectral volume in WebDataset tar shards, with normalisation statistics. Or, with --procedural N, "
        "store N procedural scenes. Rerun the same command to resume an interrupted build.",
    )
    prepare.add_argument("video_dir", type=Path, nargs="?", help="folder of clips (anything ffmpeg reads)")
    prepare.add_argument("-o", "--output", type=Path, required=True, help="dataset directory (new or resumed)")
    prepare.add_argument("--procedural", type=_positive_int, metavar="N", help="N procedural scenes instead of clips")
    prepare.add_argument("--seed-offset", type=int, default=0, help="first procedural seed (0)")
    prepare.add_argument("--size", type=_size, default=(256, 160), help="model resolution WIDTHxHEIGHT (256x160)")
    prepare.add_argument("--frames", type=_positive_int, default=150, help="T, frames per window (150)")
    prepare.add_argument("--fps", type=_positive_float, default=30.0, help="sample clips at this rate (30)")
    prepare.add_argument(
        "--stride", type=_positive_int, default=video.stride, help=f"frames between window starts ({video.stride})"
    )
    prepare.add_argument(
        "--num-frequencies", type=_positive_int, default=DEFAULT_NUM_FREQUENCIES, help="K frequencies kept (16)"
    )
    prepare.add_argument("--samples-per-shard", type=_positive_int, default=100, help="samples per tar shard (100)")
    prepare.add_argument("--workers", type=_positive_int, help="worker processes (default: all cores)")
    prepare.add_argument("--method", choices=("dis", "tvl1"), default="dis", help="optical flow method (dis)")
    prepare.add_argument(
        "--check-every",
        type=_positive_int,
        default=video.check_every,
        help=f"forward-backward check on every N-th frame ({video.check_every})",
    )
    prepare.add_argument(
        "--stabilize",
        choices=("none", "median", "homography"),
        default="none",
        help="remove camera motion from the stored motion (none: windows with camera motion are dropped instead)",
    )
    prepare.add_argument(
        "--max-histogram-jump",
        type=_non_negative_float,
        default=filters.max_histogram_jump,
        help=f"scene cut: colour-histogram distance between consecutive frames, 0..1 ({filters.max_histogram_jump:g})",
    )
    prepare.add_argument(
        "--max-intensity-jump",
        type=_non_negative_float,
        default=filters.max_intensity_jump,
        help=f"scene cut: mean grey-level change between consecutive frames, 0..1 ({filters.max_intensity_jump:g})",
    )
    prepare.add_argument(
        "--max-camera-motion",
        type=_non_negative_float,
        default=filters.max_camera_motion,
        help=f"camera motion: mean global displacement, px at --size ({filters.max_camera_motion:g})",
    )
    prepare.add_argument(
        "--max-motion",
        type=_non_negative_float,
        default=filters.max_motion,
        help=f"too much motion: 99th-percentile peak displacement, px at --size ({filters.max_motion:g})",
    )
    prepare.add_argument(
        "--min-motion",
        type=_non_negative_float,
        default=filters.min_motion,
        help=f"no motion: 99th-percentile peak displacement below this, px at --size ({filters.min_motion:g})",
    )
    prepare.add_argument(
        "--min-consistent",
        type=_non_negative_float,
        default=filters.min_consistent_fraction,
        help="inconsistent flow: fraction of forward-backward-consistent pixels in the worst checked frame below this "
        f"({filters.min_consistent_fraction:g})",
    )
    prepare.set_defaults(run=_prepare_data)

    train = commands.add_parser(
        "train",
        help="train the spectral VAE or the frequency U-Net on prepared datasets (accelerate)",
        description="Train MODEL on one or more datasets from gid prepare-data and export the EMA weights to "
        "OUTPUT/vae or OUTPUT/unet (with normalization.json; the U-Net also writes OUTPUT/scheduler). Options "
        "override --config, which overrides the defaults; the run is saved as OUTPUT/run.json, losses as "
        "OUTPUT/losses.jsonl, checkpoints under OUTPUT/checkpoints. Several GPUs: accelerate launch -m "
        "gid_pipeline.cli train ...",
    )
    train.add_argument("model", choices=("vae", "unet"), help="vae first, then unet with --vae OUTPUT/vae")
    train.add_argument("-o", "--output", type=Path, required=True, help="run directory (new, or with --resume)")
    train.add_argument("--data", type=Path, action="append", help="dataset directory; repeat to mix several")
    train.add_argument(
        "--weights",
        type=lambda text: [_positive_float(part) for part in text.split(",")],
        help="mixing ratios of the --data sets, e.g. 0.3,0.7 (default: by size)",
    )
    train.add_argument("--config", type=Path, help="run config JSON (keys as in OUTPUT/run.json)")
    train.add_argument("--resume", action="store_true", help="continue the run in OUTPUT from its last checkpoint")
    train.add_argument("--vae", type=Path, help="unet: the trained VAE export (OUTPUT/vae of gid train vae)")
    train.add_argument(
        "--stage",
        choices=("per_slice", "frequency_attention"),
        help="unet: per_slice from scratch (default), or frequency_attention fine-tuning of --init-from",
    )
    train.add_argument("--init-from", type=Path, help="unet stage 2: a stage-1 export (OUTPUT/unet)")
    train.add_argument("--model-config", help="model constructor overrides as JSON, e.g. '{\"layers_per_block\": 2}'")
    train.add_argument("--steps", type=_positive_int, help="optimizer steps (50000)")
    train.add_argument("--batch-size", type=_positive_int, help="samples per process and micro-batch (8)")
    train.add_argument("--lr", dest="learning_rate", type=_positive_float, help="AdamW learning rate (1e-4)")
    train.add_argument("--warmup-steps", type=int, help="linear warmup, then constant (500)")
    train.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), help="no (default), fp16, bf16")
    train.add_argument(
        "--grad-accum", dest="gradient_accumulation_steps", type=_positive_int, help="micro-batches per step (1)"
    )
    train.add_argument("--seed", type=int, help="source of all randomness (0)")
    train.add_argument("--checkpoint-every", type=_positive_int, help="save a checkpoint every N steps (1000)")
    train.add_argument("--ema-decay", type=_non_negative_float, help="EMA decay of the exported weights (0.9999)")
    train.add_argument(
        "--prediction-type", choices=("epsilon", "v_prediction"), help="unet: what it predicts (v_prediction)"
    )
    train.add_argument(
        "--condition-dropout", type=_non_negative_float, help="unet: P(drop the image), for guidance (0.1)"
    )
    train.add_argument("--num-workers", type=int, help="DataLoader workers per process (2)")
    train.add_argument("--no-augment", dest="augment", action="store_const", const=False, help="no flips or zoom")
    train.set_defaults(run=_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gid``: returns 0 on success, 2 on bad input, 130 on Ctrl-C; never a traceback for those."""
    parser = build_parser()
    args = parser.parse_args(argv)
    run: Callable[[argparse.Namespace], None] = args.run
    try:
        run(args)
    except GIDInputError as error:
        print(f"gid {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gid {args.command}: interrupted; nothing half-written was left behind", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
