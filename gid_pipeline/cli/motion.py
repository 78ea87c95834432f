"""``gid from-video``, ``gid render`` and ``gid poke``: motion measured from a clip, replayed, or poked."""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import GIDInputError
from ..limits import MAX_CLIP_FPS, MAX_RENDER_PIXELS
from ..media.images import read_image
from ..media.video import probe_video, read_video
from ..media.writer import VideoWriter
from ..motion.dynamics import DEFAULT_DAMPING
from ..motion.loop_window import clip_loop
from ..player import PlaybackControls, Player, loop_timing
from ..spectral.transform import DEFAULT_NUM_FREQUENCIES
from ..spectral.volume import SpectralVolume
from .arguments import long_side, non_negative_float, pair, positive_float, positive_int, size, taper, video_path


def check_render_size(image: torch.Tensor) -> None:
    height, width = image.shape[-2:]
    if height * width > MAX_RENDER_PIXELS:
        raise GIDInputError(
            f"image is {width}x{height}; rendering is limited to {MAX_RENDER_PIXELS / 1e6:.1f} megapixels"
        )


def stream_to_video(output: Path, chunks: Iterator[torch.Tensor], num_frames: int, fps: float, desc: str) -> None:
    """Write chunks of (n, 3, H, W) frames as they are rendered; the file appears only once complete."""
    with (
        VideoWriter(output, fps) as writer,
        tqdm(total=num_frames, desc=desc, unit="frame", disable=None) as bar,
    ):
        for frames in chunks:
            writer.write(frames)
            bar.update(frames.shape[0])


def play(output: Path, player: Player, image: object, volume: SpectralVolume, controls: PlaybackControls) -> str:
    """Render one period of the loop in chunks and stream it into the output video; a line saying what it wrote."""
    timing = loop_timing(volume, controls)  # checks the controls before any frame is rendered
    frames = player.iter_loop_frames(image, volume, controls)
    stream_to_video(output, frames, timing.frames, timing.fps, "render")
    return f"wrote {output} ({timing.frames} frames at {timing.fps:g} fps, a seamless loop)"


def _from_video(args: argparse.Namespace) -> None:
    # The clip's own rate by default: resampling a 15 fps clip to 30 repeats every frame, and the loop stutters.
    fps = args.fps if args.fps is not None else min(probe_video(args.clip).fps, MAX_CLIP_FPS)
    clip = read_video(args.clip, fps=fps, size=args.size, long_side=args.long_side)
    check_render_size(torch.empty(clip.frames.shape[1:3]))
    try:
        motion, window = clip_loop(
            clip.frames, clip.fps, args.num_frequencies, start=args.start, num_frames=args.frames,
            max_frames=args.max_frames, remove_drift=not args.keep_drift, method=args.method,
            stabilize=args.stabilize, loop_taper=args.loop_taper, progress=True,
        )  # fmt: skip
    except GIDInputError as error:
        raise GIDInputError(f"{args.clip}: {error}") from None
    end, seconds = window.start + window.num_frames, window.num_frames / clip.fps
    drift = "" if motion.drift is None else f"; drift removed (median {float(np.median(motion.drift)):.2f} px)"
    seam = "" if math.isnan(window.seam_ratio) else f", its seam step {window.seam_ratio:.2f}x its median step"
    print(f"loop: frames {window.start}-{end - 1} of {len(clip.frames)} at {clip.fps:g} fps ({seconds:.2f} s); the "
          f"frame after it differs from its first by {window.mismatch:.2f} grey levels{seam}{drift}")  # fmt: skip
    if args.spectrum_out is not None:
        motion.volume.save(args.spectrum_out)
        print(f"wrote {args.spectrum_out}")
    print(play(args.output, Player(), motion.image, motion.volume, PlaybackControls(amplitude=args.amplitude)))


def _render(args: argparse.Namespace) -> None:
    volume = SpectralVolume.load(args.spectrum)
    image = read_image(args.image)
    check_render_size(torch.empty(image.shape[:2]))
    band = tuple(args.band) if args.band is not None else None
    controls = PlaybackControls(speed=args.speed, amplitude=args.amplitude, frequency_band=band, fps=args.fps,
                                num_frames=args.frames)  # fmt: skip
    print(play(args.output, Player.from_pretrained(args.checkpoint), image, volume, controls))


def _poke(args: argparse.Namespace) -> None:
    volume = SpectralVolume.load(args.spectrum)
    image = read_image(args.image)
    check_render_size(torch.empty(image.shape[:2]))
    chunks = Player().iter_poke_frames(image, volume, args.at, args.force, num_frames=args.frames, fps=args.fps,
                                       hold=args.drag_seconds, damping=args.damping)  # fmt: skip
    stream_to_video(args.output, chunks, args.frames, args.fps, "poke")
    print(f"wrote {args.output} ({args.frames} frames at {args.fps:g} fps)")


def register(commands: argparse._SubParsersAction) -> None:
    """Add from-video, render and poke to the ``gid`` subcommands."""
    from_video = commands.add_parser(
        "from-video",
        help="turn a short clip of something swaying into a seamless loop",
        description="Optical flow from the clip's first frame -> spectral volume -> a seamless loop rendered "
        "from that first frame.",
    )
    from_video.add_argument("clip", type=Path, help="input video (anything ffmpeg reads)")
    from_video.add_argument("-o", "--output", type=video_path, required=True, help="loop video (.mp4, .gif, .webm)")
    from_video.add_argument("--spectrum-out", type=Path, help="also save the spectral volume (.safetensors)")
    from_video.add_argument(
        "--start", type=int, help="first frame, counted at --fps (default: where the loop closes best)"
    )
    from_video.add_argument(
        "--frames", type=positive_int, help="loop period in frames (default: the length that closes best)"
    )
    from_video.add_argument(
        "--max-frames", type=positive_int, default=150, help="longest loop to choose, in frames (150)"
    )
    from_video.add_argument(
        "--keep-drift", action="store_true", help="do not remove the drift over the period (it snaps back at the seam)"
    )
    from_video.add_argument(
        "--fps", type=positive_float, help=f"sample the clip at this rate (default: its own, at most {MAX_CLIP_FPS:g})"
    )
    sizing = from_video.add_mutually_exclusive_group()
    sizing.add_argument("--size", type=size, help="analyse and render at WIDTHxHEIGHT, e.g. 256x160")
    sizing.add_argument("--long-side", type=long_side, help="resize so the longer side is N pixels")
    from_video.add_argument("--amplitude", type=non_negative_float, default=1.0, help="amplitude factor (1)")
    from_video.add_argument(
        "--num-frequencies", type=positive_int, default=DEFAULT_NUM_FREQUENCIES, help="K frequencies kept (16)"
    )
    from_video.add_argument("--method", choices=("dis", "tvl1"), default="dis", help="optical flow method (dis)")
    from_video.add_argument(
        "--stabilize", choices=("none", "median", "homography"), default="none", help="remove camera motion"
    )
    from_video.add_argument(
        "--loop-taper",
        type=taper,
        help="fraction of frames at each end eased into the loop's seam (default: 0 once the drift is removed, "
        "0.2 with --keep-drift or without a closing frame)",
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
    render.add_argument("-o", "--output", type=video_path, required=True, help="loop video (.mp4, .gif, .webm)")
    render.add_argument("--fps", type=positive_float, help="output frame rate (default: the spectrum's)")
    timing = render.add_mutually_exclusive_group()
    timing.add_argument("--frames", type=positive_int, help="loop length in frames (default: one period)")
    timing.add_argument("--speed", type=positive_float, default=1.0, help="playback speed factor (1)")
    render.add_argument("--amplitude", type=non_negative_float, default=1.0, help="amplitude factor (1)")
    render.add_argument("--band", type=pair, help="keep only the motion between LOW,HIGH Hz, e.g. 0.2,1.0")
    render.add_argument(
        "--checkpoint",
        help="render with this pipeline folder's (or Hub repo's) learned renderer; only its renderer/ is read "
        "(default: pixel softmax splatting, no checkpoint needed)",
    )
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
        "--at", type=pair, required=True, metavar="X,Y", help="poked point in image pixels, 0,0 = top-left pixel"
    )
    poke.add_argument(
        "--force",
        type=pair,
        required=True,
        metavar="DX,DY",
        help="push in pixels: about how far the poked point moves (e.g. 8,0 pushes right)",
    )
    poke.add_argument(
        "--drag-seconds",
        type=non_negative_float,
        default=0.0,
        help="hold the push this long, then release; 0 = an impulse (0)",
    )
    poke.add_argument("--frames", type=positive_int, default=150, help="frames to render (150)")
    poke.add_argument("--fps", type=positive_float, default=30.0, help="output frame rate (30)")
    poke.add_argument(
        "--damping",
        type=non_negative_float,
        default=DEFAULT_DAMPING,
        help=f"modal damping ratio in [0, 1) ({DEFAULT_DAMPING:g})",
    )
    poke.add_argument("-o", "--output", type=video_path, required=True, help="video (.mp4, .gif, .webm)")
    poke.set_defaults(run=_poke)
