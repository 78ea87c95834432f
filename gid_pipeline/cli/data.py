"""``gid prepare-data``: build a training dataset from a folder of clips or from procedural scenes.
``gid procedural-videos``: write procedural scenes as mp4 clips (renderer training with estimated flow)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from ..errors import GIDInputError
from ..spectral.transform import DEFAULT_NUM_FREQUENCIES
from .arguments import non_negative_float, positive_float, positive_int, size


def _prepare_data(args: argparse.Namespace) -> None:
    # Imported here: only this command needs the data engine (and the procedural generator it loads).
    from ..data.builder import SampleConfig

    if (args.video_dir is None) == (args.procedural is None):
        raise GIDInputError("give either a VIDEO_DIR or --procedural N (not both)")
    if args.texture_bank is not None and args.procedural is None:
        raise GIDInputError("--texture-bank is for --procedural scenes")
    config = SampleConfig(args.size, args.frames, args.fps, args.num_frequencies)
    common = {"workers": args.workers, "samples_per_shard": args.samples_per_shard, "progress": True}
    new_folder = not args.output.exists()
    try:
        summary = _build(args, config, common)
        if summary.num_samples == 0:
            rejected = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.rejected.items())) or "none"
            raise GIDInputError(
                f"no usable window in {args.video_dir}: rejected {rejected}, unreadable files {summary.errors}; "
                "nothing was written"
            )
    except GIDInputError:
        # A first build that failed before any shard leaves no folder behind; shards written stay, to resume.
        if new_folder and not any(args.output.glob("shard-*.tar")):
            shutil.rmtree(args.output, ignore_errors=True)
        raise
    rejected = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.rejected.items())) or "none"
    print(
        f"wrote {summary.root}: {summary.num_samples} samples in {summary.num_shards} shards ({summary.new_samples} "
        f"new); rejected: {rejected}; unreadable files: {summary.errors} (details in manifest.json)"
    )


def _build(args: argparse.Namespace, config: Any, common: dict[str, Any]) -> Any:
    """The dataset build the arguments ask for; a full disk or a permission error is a GIDInputError."""
    import errno

    from ..data.builder import prepare_procedural_dataset, prepare_video_dataset
    from ..data.windows import VideoConfig, WindowFilters

    try:
        if args.procedural is not None:
            return prepare_procedural_dataset(
                args.procedural, args.output, config, seed_offset=args.seed_offset, texture_bank=args.texture_bank,
                **common,
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
            return prepare_video_dataset(args.video_dir, args.output, config, video, **common)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS):
            raise
        raise GIDInputError(
            f"cannot write to {args.output}: {error.strerror}; the shards written so far are intact, free space "
            "(or fix permissions) and rerun the same command to resume"
        ) from error


def _procedural_videos(args: argparse.Namespace) -> None:
    import os

    from ..procedural.videos import ProceduralVideoConfig, write_procedural_videos

    config = ProceduralVideoConfig(args.size, args.frames, args.fps, args.crf)
    workers = args.workers or os.cpu_count() or 1
    paths = write_procedural_videos(
        args.count, args.output, config, seed_offset=args.seed_offset, workers=workers, progress=True
    )
    print(f"wrote {args.output}: {len(paths)} clips, scenes {args.seed_offset}..{args.seed_offset + args.count - 1}")


def register(commands: argparse._SubParsersAction) -> None:
    """Add prepare-data and procedural-videos to the ``gid`` subcommands."""
    # Imported here for its defaults: see _prepare_data.
    from ..data.windows import VideoConfig

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
    prepare.add_argument("--procedural", type=positive_int, metavar="N", help="N procedural scenes instead of clips")
    prepare.add_argument("--seed-offset", type=int, default=0, help="first procedural seed (0)")
    prepare.add_argument(
        "--texture-bank",
        type=Path,
        help="procedural: a gid texture-bank folder; scenes get photo textures, the photographic scene types and "
        "camera realism (procedural.photo_world)",
    )
    prepare.add_argument("--size", type=size, default=(256, 160), help="model resolution WIDTHxHEIGHT (256x160)")
    prepare.add_argument("--frames", type=positive_int, default=150, help="T, frames per window (150)")
    prepare.add_argument("--fps", type=positive_float, default=30.0, help="sample clips at this rate (30)")
    prepare.add_argument(
        "--stride", type=positive_int, default=video.stride, help=f"frames between window starts ({video.stride})"
    )
    prepare.add_argument(
        "--num-frequencies", type=positive_int, default=DEFAULT_NUM_FREQUENCIES, help="K frequencies kept (16)"
    )
    prepare.add_argument("--samples-per-shard", type=positive_int, default=100, help="samples per tar shard (100)")
    prepare.add_argument("--workers", type=positive_int, help="worker processes (default: all cores)")
    prepare.add_argument("--method", choices=("dis", "tvl1"), default="dis", help="optical flow method (dis)")
    prepare.add_argument(
        "--check-every",
        type=positive_int,
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
        type=non_negative_float,
        default=filters.max_histogram_jump,
        help=f"scene cut: colour-histogram distance between consecutive frames, 0..1 ({filters.max_histogram_jump:g})",
    )
    prepare.add_argument(
        "--max-intensity-jump",
        type=non_negative_float,
        default=filters.max_intensity_jump,
        help=f"scene cut: mean grey-level change between consecutive frames, 0..1 ({filters.max_intensity_jump:g})",
    )
    prepare.add_argument(
        "--max-camera-motion",
        type=non_negative_float,
        default=filters.max_camera_motion,
        help=f"camera motion: mean global displacement, px at --size ({filters.max_camera_motion:g})",
    )
    prepare.add_argument(
        "--max-motion",
        type=non_negative_float,
        default=filters.max_motion,
        help=f"too much motion: 99th-percentile peak displacement, px at --size ({filters.max_motion:g})",
    )
    prepare.add_argument(
        "--min-motion",
        type=non_negative_float,
        default=filters.min_motion,
        help=f"no motion: 99th-percentile peak displacement below this, px at --size ({filters.min_motion:g})",
    )
    prepare.add_argument(
        "--min-consistent",
        type=non_negative_float,
        default=filters.min_consistent_fraction,
        help="inconsistent flow: fraction of forward-backward-consistent pixels in the worst checked frame below this "
        f"({filters.min_consistent_fraction:g})",
    )
    prepare.set_defaults(run=_prepare_data)

    videos = commands.add_parser(
        "procedural-videos",
        help="write procedural scenes as mp4 clips, e.g. renderer training data with estimated flow",
        description="Render procedural scenes and write each as DIR/scene_<seed>.mp4 (H.264). A folder of them is "
        "video data like any other: `gid train renderer --data DIR` measures their flow with DIS, so the renderer "
        "learns how estimated flow errs. Rerun the same command to resume; clips already written are kept.",
    )
    videos.add_argument("-o", "--output", type=Path, required=True, help="folder for the clips (new or resumed)")
    videos.add_argument("--count", type=positive_int, required=True, help="number of scenes")
    videos.add_argument("--seed-offset", type=int, default=0, help="first scene seed (0)")
    videos.add_argument("--size", type=size, default=(256, 160), help="WIDTHxHEIGHT (256x160)")
    videos.add_argument("--frames", type=positive_int, default=150, help="frames per clip (150)")
    videos.add_argument("--fps", type=positive_float, default=30.0, help="frame rate (30)")
    videos.add_argument("--crf", type=int, default=18, help="H.264 quality, 0-51, lower is better (18)")
    videos.add_argument("--workers", type=positive_int, help="worker processes (default: all cores)")
    videos.set_defaults(run=_procedural_videos)
