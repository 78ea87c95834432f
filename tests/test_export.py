"""export_to_video / export_to_mp4 / export_to_gif / export_to_webm: every output type of the pipeline, written and
read back with the right frame count, size and content."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from gid_pipeline import GIDInputError, export_to_gif, export_to_mp4, export_to_video, export_to_webm
from gid_pipeline.media.video import probe_video, read_video

NUM_FRAMES, HEIGHT, WIDTH = 6, 32, 48


def frames_np() -> np.ndarray:
    """(F, H, W, 3) float32 in [0, 1]: smooth colour ramps that drift, so each frame differs and codecs keep them."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    t = np.arange(NUM_FRAMES, dtype=np.float32)[:, None, None]
    red = 0.5 + 0.4 * np.sin((x + 4 * t) / 8)
    green = 0.5 + 0.4 * np.cos((y - 3 * t) / 6)
    blue = np.broadcast_to(0.3 + 0.05 * t, red.shape)
    return np.stack([red, green, blue], axis=-1).astype(np.float32)


def as_output_type(output_type: str):
    """The frames as GIDPipeline returns one video (out.frames[0]) for output_type."""
    video = frames_np()
    if output_type == "np":
        return video
    if output_type == "np-uint8":
        return np.rint(video * 255).astype(np.uint8)
    if output_type == "pt":
        return torch.from_numpy(video).permute(0, 3, 1, 2).contiguous()
    return [PIL.Image.fromarray(np.rint(frame * 255).astype(np.uint8)) for frame in video]


@pytest.mark.parametrize("output_type", ["pil", "np", "np-uint8", "pt"])
@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webm"])
def test_export_to_video_writes_every_format_from_every_output_type(tmp_path, output_type, suffix):
    path = export_to_video(as_output_type(output_type), tmp_path / f"loop{suffix}", fps=12)
    assert path == tmp_path / f"loop{suffix}"
    info = probe_video(path)
    assert (info.width, info.height, info.num_frames) == (WIDTH, HEIGHT, NUM_FRAMES)
    assert info.fps == pytest.approx(12, rel=0.05)
    clip = read_video(path)
    assert clip.frames.shape == (NUM_FRAMES, HEIGHT, WIDTH, 3)
    # Lossy codecs and a 256-colour palette: close to the source, not equal (the ramps are far apart per frame).
    error = np.abs(clip.frames.astype(np.float32) / 255 - frames_np()).mean()
    assert error < 0.03, error


def test_format_specific_helpers_and_batches_of_one(tmp_path):
    video = as_output_type("pt")
    assert probe_video(export_to_mp4(video, tmp_path / "a.mp4", fps=10)).codec == "h264"
    assert probe_video(export_to_webm(video, tmp_path / "a.webm", fps=10)).codec == "vp9"
    assert probe_video(export_to_gif(as_output_type("pil"), tmp_path / "a.gif", fps=10)).codec == "gif"
    # The whole batched output of a pipeline call with one image is accepted too.
    batched = export_to_video(video[None], tmp_path / "batch.mp4", fps=10)
    assert probe_video(batched).num_frames == NUM_FRAMES
    nested = export_to_video([as_output_type("pil")], tmp_path / "nested.gif", fps=10)
    assert probe_video(nested).num_frames == NUM_FRAMES
    # A PIL image of another mode is converted to RGB.
    gray = [frame.convert("L") for frame in as_output_type("pil")]
    assert probe_video(export_to_webm(gray, tmp_path / "gray.webm", fps=10)).num_frames == NUM_FRAMES


@pytest.mark.parametrize(
    ("call", "message"),
    [(lambda d: export_to_video(frames_np(), d / "loop.avi"), r"unknown video format '\.avi'"),
     (lambda d: export_to_video(frames_np(), d / "loop"), "no suffix"),
     (lambda d: export_to_mp4(frames_np(), d / "loop.gif"), r"export_to_mp4 writes \.mp4 files"),
     (lambda d: export_to_gif(frames_np(), d / "loop.webm"), r"writes \.gif"),
     (lambda d: export_to_video(frames_np()[None].repeat(2, 0), d / "x.mp4"), "2 videos"),
     (lambda d: export_to_video([], d / "x.mp4"), "no frames"),
     (lambda d: export_to_video(frames_np(), d / "x.mp4", fps=0), "fps"),
     (lambda d: export_to_video(frames_np()[..., :2], d / "x.mp4"), r"\(T, H, W, 3\)")],
)  # fmt: skip
def test_export_bad_input(tmp_path, call, message):
    with pytest.raises(GIDInputError, match=message):
        call(tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written
