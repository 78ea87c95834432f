"""The ``gid`` command line: each subcommand parses, calls the library, and reports; the math lives elsewhere."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import __version__
from .clip_motion import clip_motion
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


def _video_path(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise argparse.ArgumentTypeError(f"output must end in one of {', '.join(VIDEO_SUFFIXES)}, got {text!r}")
    return path


def _write_loop(
    output: Path, image: torch.Tensor, volume: SpectralVolume, num_frames: int, fps: float, motion_scale: float
) -> None:
    """Render one period of the loop in chunks and stream it into the output video."""
    height, width = image.shape[-2:]
    if height * width > MAX_RENDER_PIXELS:
        raise GIDInputError(
            f"image is {width}x{height}; rendering is limited to {MAX_RENDER_PIXELS / 1e6:.1f} megapixels"
        )
    chunks = iter_loop_frames(image, volume.spectrum, num_frames, motion_scale=motion_scale)
    with (
        VideoWriter(output, fps) as writer,
        tqdm(total=num_frames, desc="render", unit="frame", disable=None) as bar,
    ):
        for frames in chunks:
            writer.write(frames)
            bar.update(frames.shape[0])


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
