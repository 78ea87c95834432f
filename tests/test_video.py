"""gid_pipeline.media.video: round trips through the real encoders, resampling rules, images, every bad input."""

import gc
import struct
import subprocess
import zlib
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from gid_pipeline.errors import GIDInputError
from gid_pipeline.limits import MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE
from gid_pipeline.media.images import read_image
from gid_pipeline.media.video import _source_indices, frames_at_rate, probe_video, read_video
from gid_pipeline.media.writer import VideoWriter, repeat_video, write_video

# Frame i of flat_clip is flat grey LEVEL_STEP * i: survives compression and tells which source frame it is.
LEVEL_STEP = 20


def smooth_clip(t: int = 24, height: int = 48, width: int = 64) -> np.ndarray:
    """(T, H, W, 3) uint8: smooth colour waves drifting over time (what real footage compresses like)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    k = np.arange(t, dtype=np.float32)[:, None, None]
    channels = [
        128 + 100 * np.sin(x / 9 + k / 4),
        128 + 100 * np.cos(y / 7 - k / 5),
        128 + 90 * np.sin((x + y) / 11 + k / 3),
    ]
    return np.rint(np.stack(channels, axis=-1)).astype(np.uint8)


def flat_clip(t: int = 12, height: int = 48, width: int = 64) -> np.ndarray:
    """(T, H, W, 3) uint8: frame i is flat grey LEVEL_STEP * i."""
    return np.broadcast_to(
        (np.arange(t) * LEVEL_STEP).astype(np.uint8)[:, None, None, None], (t, height, width, 3)
    )


def source_index(frames: np.ndarray) -> list[int]:
    """Which flat_clip frame each decoded frame is."""
    return [round(v) for v in frames.astype(np.float64).mean(axis=(1, 2, 3)) / LEVEL_STEP]


@pytest.fixture(scope="module")
def flat15(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """flat_clip(12) as a 15 fps mp4."""
    return write_video(tmp_path_factory.mktemp("clips") / "flat15.mp4", flat_clip(), fps=15)


def ffmpeg(*args: str) -> None:
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


def listing(directory: Path) -> list[str]:
    """Every entry of directory, hidden temporary files included."""
    return sorted(p.name for p in directory.iterdir())


# --------------------------------------------------------------------------------------------- writing


def test_mp4_round_trip(tmp_path: Path) -> None:
    frames = smooth_clip()
    path = write_video(tmp_path / "clip.mp4", frames, fps=24)
    assert path == tmp_path / "clip.mp4"
    assert listing(tmp_path) == ["clip.mp4"]  # the temporary file was renamed, nothing else left
    clip = read_video(path)
    assert clip.frames.shape == frames.shape and clip.frames.dtype == np.uint8
    assert clip.fps == 24
    assert np.abs(clip.frames.astype(int) - frames).mean() < 3
    info = probe_video(path)
    assert (info.width, info.height, info.fps) == (64, 48, 24)
    assert (info.num_frames, info.num_frames_exact) == (24, True)
    assert info.duration_s == pytest.approx(1.0)


def test_repeat_video_copies_the_clip_end_to_end_without_reencoding(tmp_path: Path) -> None:
    frames = smooth_clip(t=12)
    once = write_video(tmp_path / "once.mp4", frames, fps=12)
    thrice = repeat_video(once, tmp_path / "out" / "thrice.mp4", 3)
    assert listing(tmp_path / "out") == ["thrice.mp4"]
    first, repeated = read_video(once).frames, read_video(thrice).frames
    assert repeated.shape == (36, *frames.shape[1:])
    for copy in range(3):  # bit-identical copies: the encoded frames were copied, not encoded again
        assert np.array_equal(repeated[12 * copy : 12 * (copy + 1)], first)
    assert probe_video(thrice).duration_s == pytest.approx(3.0)
    for bad_times in (0, 1.5, True):
        with pytest.raises(GIDInputError, match="whole number"):
            repeat_video(once, tmp_path / "bad.mp4", bad_times)
    with pytest.raises(GIDInputError, match="mp4 to mp4"):
        repeat_video(once, tmp_path / "bad.gif", 2)
    with pytest.raises(GIDInputError, match="not found"):
        repeat_video(tmp_path / "missing.mp4", tmp_path / "bad.mp4", 2)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(GIDInputError, match="cannot repeat"):
        repeat_video(tmp_path / "broken.mp4", tmp_path / "bad.mp4", 2)
    assert not list(tmp_path.glob("bad*")) and not list(tmp_path.glob(".*part"))


def test_mp4_odd_size_is_padded_to_even_browser_playable(tmp_path: Path) -> None:
    frames = smooth_clip(t=6, height=47, width=65)
    path = write_video(tmp_path / "odd.mp4", frames, fps=12)
    info = probe_video(path)
    assert (info.width, info.height, info.codec, info.pix_fmt) == (66, 48, "h264", "yuv420p")
    data = path.read_bytes()
    assert 0 <= data.find(b"moov") < data.find(b"mdat")  # faststart: the index comes first
    back = read_video(path).frames.astype(int)
    assert np.abs(back[:, :47, :65] - frames).mean() < 3  # every source pixel kept in place
    # The padding repeats the last column / row.
    assert np.abs(back[:, :47, 65] - frames[:, :, 64]).mean() < 4
    assert np.abs(back[:, 47, :65] - frames[:, 46, :]).mean() < 4


@pytest.mark.parametrize("suffix", [".mp4", ".webm"])
def test_saturated_colours_survive_yuv(tmp_path: Path, suffix: str) -> None:
    # A mismatch of RGB<->YUV matrix (BT.601 vs 709) or range between writer and reader errs by 15-30 levels.
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [128, 64, 32]])
    frames = np.broadcast_to(colours[:, None, None, :].astype(np.uint8), (6, 32, 32, 3))
    back = read_video(write_video(tmp_path / f"colours{suffix}", frames, fps=6)).frames
    assert np.abs(back[:, 8:24, 8:24].astype(int) - frames[:, 8:24, 8:24]).max() <= 6


def test_webm_is_vp9(tmp_path: Path) -> None:
    frames = smooth_clip(t=12, height=47, width=65)  # VP9 takes odd sizes as they are
    path = write_video(tmp_path / "clip.webm", frames, fps=12)
    info = probe_video(path)
    assert (info.codec, info.pix_fmt) == ("vp9", "yuv420p")
    assert (info.width, info.height, info.num_frames) == (65, 47, 12)
    back = read_video(path).frames
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames).mean() < 3


def test_gif_loops_forever_with_all_frames_at_the_right_rate(tmp_path: Path) -> None:
    frames = smooth_clip(t=24)
    path = write_video(tmp_path / "clip.gif", frames, fps=30)
    assert b"NETSCAPE2.0" in path.read_bytes()
    with Image.open(path) as gif:
        assert gif.info["loop"] == 0
        assert gif.n_frames == 24
        delays = []
        for i in range(gif.n_frames):
            gif.seek(i)
            delays.append(gif.info["duration"])
    # GIF delays are whole centiseconds: 30 fps alternates 30 / 40 ms, averaging 1/30 s.
    assert set(delays) <= {30, 40}
    assert sum(delays) == pytest.approx(24 / 30 * 1000, abs=10)
    back = read_video(path).frames
    assert np.abs(back.astype(int) - frames).mean() < 12  # 256 colours, dithered


def test_gif_loop_false_plays_once(tmp_path: Path) -> None:
    path = write_video(tmp_path / "once.gif", smooth_clip(t=4), fps=10, loop=False)
    assert b"NETSCAPE2.0" not in path.read_bytes()
    with Image.open(path) as gif:
        assert "loop" not in gif.info


def test_writers_accept_torch_and_float_frames(tmp_path: Path) -> None:
    levels = torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.7])  # out of range values are clamped
    tensor = levels[:, None, None, None].expand(5, 3, 32, 48)  # (T, 3, H, W)
    back = read_video(write_video(tmp_path / "torch.mp4", tensor, fps=5)).frames
    assert back.shape == (5, 32, 48, 3)
    assert np.allclose(back.mean(axis=(1, 2, 3)), [0, 0, 128, 255, 255], atol=2)

    ramp = np.linspace(0, 1, 4)[:, None, None, None]
    floats = np.broadcast_to(ramp, (4, 32, 48, 3))  # (T, H, W, 3) float64
    back = read_video(write_video(tmp_path / "float.mp4", floats, fps=5)).frames
    assert np.allclose(back.mean(axis=(1, 2, 3)), [0, 85, 170, 255], atol=2)

    frame_list = list(flat_clip(t=3))  # a list of (H, W, 3) frames
    assert source_index(read_video(write_video(tmp_path / "list.mp4", frame_list, fps=5)).frames) == [0, 1, 2]


def test_streaming_writer_takes_chunks_and_single_frames(tmp_path: Path) -> None:
    frames = flat_clip(t=12)
    tensors = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
    with VideoWriter(tmp_path / "stream.mp4", fps=12, size=(64, 48)) as writer:
        writer.write(frames[:5])  # numpy chunk
        writer.write(frames[5])  # one numpy frame (H, W, 3)
        writer.write(tensors[6:11])  # torch chunk (T, 3, H, W)
        writer.write(tensors[11])  # one torch frame (3, H, W)
        assert not (tmp_path / "stream.mp4").exists()  # appears only when complete
    assert writer.frames_written == 12
    assert source_index(read_video(tmp_path / "stream.mp4").frames) == list(range(12))


# --------------------------------------------------------------------------------------- atomic writes


def test_exception_inside_writer_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyError), VideoWriter(tmp_path / "out.mp4", fps=10) as writer:
        writer.write(flat_clip(t=4))
        raise KeyError("renderer crashed")
    assert listing(tmp_path) == []


def test_frame_size_change_mid_stream_leaves_previous_file_untouched(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous render")
    with pytest.raises(GIDInputError, match=r"frames are 32x32 but the video is 64x48"):
        with VideoWriter(target, fps=10) as writer:
            writer.write(flat_clip(t=4))
            writer.write(flat_clip(t=4, height=32, width=32))
    assert listing(tmp_path) == ["out.mp4"]
    assert target.read_bytes() == b"previous render"


def test_write_video_with_mismatched_frames_leaves_nothing(tmp_path: Path) -> None:
    # The mismatch is in a later chunk, after ffmpeg has started writing.
    frames = [*flat_clip(t=20), np.zeros((32, 32, 3), np.uint8)]
    with pytest.raises(GIDInputError, match="frames"):
        write_video(tmp_path / "out.gif", frames, fps=10)
    assert listing(tmp_path) == []


def test_ffmpeg_dying_mid_stream_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"ffmpeg failed writing .*out\.webm"):
        with VideoWriter(tmp_path / "out.webm", fps=10) as writer:
            writer.write(flat_clip(t=2))
            writer._proc.kill()  # stands in for a crash or a full disk
            writer._proc.wait()
            writer.write(flat_clip(t=2))
    assert listing(tmp_path) == []


def test_writer_dropped_without_close_leaves_nothing(tmp_path: Path) -> None:
    writer = VideoWriter(tmp_path / "out.mp4", fps=10)
    writer.write(flat_clip(t=2))
    ffmpeg_process = writer._proc
    del writer
    gc.collect()
    assert ffmpeg_process.poll() is not None  # stopped, so it cannot create the file later
    assert listing(tmp_path) == []


def test_fast_gif_warns(tmp_path: Path) -> None:
    with pytest.warns(UserWarning, match="GIF at 60 fps will play slower"):
        VideoWriter(tmp_path / "fast.gif", fps=60).abort()


def test_writer_creates_missing_directories(tmp_path: Path) -> None:
    path = write_video(tmp_path / "a" / "b" / "out.webm", flat_clip(t=2), fps=2)
    assert path.is_file()


@pytest.mark.parametrize(
    ("name", "frames", "fps", "kwargs", "message"),
    [
        ("out.avi", flat_clip(2), 10, {}, r"unknown video format '\.avi'"),
        ("out", flat_clip(2), 10, {}, "unknown video format"),
        ("out.mp4", np.zeros((0, 48, 64, 3), np.uint8), 10, {}, "no frames"),
        ("out.mp4", [], 10, {}, "no frames"),
        ("out.mp4", flat_clip(2), 0, {}, "fps must be a positive number"),
        ("out.mp4", flat_clip(2), float("nan"), {}, "fps must be a positive number"),
        ("out.mp4", flat_clip(2), 10, {"crf": 60}, r"crf must be an integer 1\.\.51"),
        ("out.mp4", flat_clip(2), 10, {"crf": 0}, r"crf must be an integer 1\.\.51"),
        ("out.gif", flat_clip(2), 10, {"crf": 20}, "gif has no crf"),
        ("out.mp4", np.full((2, 48, 64, 3), np.nan), 10, {}, "NaN"),
        ("out.mp4", np.zeros((2, 48, 64, 3), np.int32), 10, {}, "uint8 or float"),
        ("out.mp4", np.zeros((2, 48, 64, 4), np.uint8), 10, {}, r"\(T, H, W, 3\)"),
        ("out.mp4", np.zeros((48, 64, 3), np.uint8), 10, {}, r"got shape \(48, 64, 3\)"),
        ("out.mp4", torch.zeros(2, 48, 64, 3), 10, {}, r"\(T, 3, H, W\)"),
        ("out.mp4", torch.zeros(2, 3, 48, 64, dtype=torch.int64), 10, {}, "float in"),
    ],
)
def test_write_video_rejects_bad_input(
    tmp_path: Path, name: str, frames: object, fps: float, kwargs: dict, message: str
) -> None:
    with pytest.raises(GIDInputError, match=message):
        write_video(tmp_path / name, frames, fps, **kwargs)
    assert listing(tmp_path) == []


def test_writer_closed_without_frames_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(GIDInputError, match="no frames"), VideoWriter(tmp_path / "out.mp4", fps=10):
        pass
    assert listing(tmp_path) == []


# --------------------------------------------------------------------------------- reading, resampling


def test_nearest_frame_rule_and_frame_count_agree() -> None:
    up = _source_indices(np.arange(8), Fraction(15), Fraction(30))
    assert up.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert _source_indices(np.arange(4), Fraction(30), Fraction(10)).tolist() == [0, 3, 6, 9]
    assert _source_indices(np.arange(5), Fraction(30000, 1001), Fraction(24)).tolist() == [0, 1, 2, 4, 5]
    for src, out in [(15, 30), (30, 10), (Fraction(30000, 1001), 24), (24, 25), (7, 3)]:
        src, out = Fraction(src), Fraction(out)
        idx = _source_indices(np.arange(500), src, out)
        for n_src in (0, 1, 2, 17, 68):
            assert frames_at_rate(n_src, src, out) == int((idx < n_src).sum())


def test_read_upsampled_repeats_nearest_frames(flat15: Path) -> None:
    clip = read_video(flat15, fps=30)
    assert clip.fps == 30
    assert len(clip.frames) == 24  # twice the 12 source frames
    assert source_index(clip.frames) == [i // 2 for i in range(24)]


def test_read_downsampled_skips_frames(flat15: Path) -> None:
    clip = read_video(flat15, fps=5)
    assert source_index(clip.frames) == [0, 3, 6, 9]


def test_start_and_num_frames_count_at_the_output_rate(flat15: Path) -> None:
    clip = read_video(flat15, fps=30, start=3, num_frames=4)
    assert source_index(clip.frames) == [1, 2, 2, 3]  # output times 0.1, 0.133, 0.167, 0.2 s
    assert source_index(read_video(flat15, start=10).frames) == [10, 11]  # native rate, to the end


def test_resize(flat15: Path) -> None:
    clip = read_video(flat15, size=(20, 10), num_frames=3)
    assert clip.frames.shape == (3, 10, 20, 3)
    assert source_index(clip.frames) == [0, 1, 2]  # content preserved
    assert read_video(flat15, long_side=32).frames.shape == (12, 24, 32, 3)
    assert read_video(flat15, long_side=100).frames.shape == (12, 75, 100, 3)  # enlarging works too


def test_rotation_metadata_is_applied(tmp_path: Path, flat15: Path) -> None:
    rotated = tmp_path / "rotated.mp4"
    ffmpeg("-display_rotation", "90", "-i", str(flat15), "-c", "copy", str(rotated))
    info = probe_video(rotated)
    assert (info.width, info.height) == (48, 64)
    assert read_video(rotated).frames.shape == (12, 64, 48, 3)


def test_tree_clip(tree_clip_path: Path) -> None:
    info = probe_video(tree_clip_path)
    assert (info.width, info.height, info.fps, info.codec) == (320, 240, 15, "cinepak")
    # Its AVI index marks dropped frames with empty packets: those are not frames.
    assert (info.num_frames, info.num_frames_exact) == (68, True)
    clip = read_video(tree_clip_path, num_frames=54)
    assert clip.frames.shape == (54, 240, 320, 3) and clip.fps == 15
    whole = read_video(tree_clip_path)
    assert whole.frames.shape == (68, 240, 320, 3)
    assert np.array_equal(whole.frames[:54], clip.frames)
    assert np.abs(np.diff(clip.frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3)).min() > 0  # no repeats
    with pytest.raises(GIDInputError, match=r"has 68 frames at 15 fps, but frames 0\.\.99 were asked for"):
        read_video(tree_clip_path, num_frames=100)


def test_frame_limits(flat15: Path) -> None:
    with pytest.raises(GIDInputError, match=r"more than max_frames=10 frames"):
        read_video(flat15, max_frames=10)
    with pytest.raises(GIDInputError, match=r"num_frames=20 is above max_frames=10"):
        read_video(flat15, num_frames=20, max_frames=10)
    assert len(read_video(flat15, max_frames=12).frames) == 12  # exactly at the limit is fine


# ------------------------------------------------------------------------------------------- bad clips


@pytest.fixture(scope="module")
def noisy_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """24 frames of noise at 24 fps: big frames, so a cut file keeps some whole ones."""
    frames = np.random.default_rng(0).integers(0, 256, (24, 48, 64, 3), dtype=np.uint8)
    return write_video(tmp_path_factory.mktemp("noisy") / "noise.mp4", frames, fps=24)


def test_truncated_mp4_says_so(tmp_path: Path, noisy_mp4: Path) -> None:
    data = noisy_mp4.read_bytes()
    half = tmp_path / "half.mp4"
    half.write_bytes(data[: len(data) // 2])
    with pytest.raises(GIDInputError, match=r"half\.mp4 is too short: it has \d+ frames .*damaged"):
        read_video(half, num_frames=24)
    with pytest.warns(UserWarning, match=r"half\.mp4 is damaged"):
        prefix = read_video(half).frames
    assert 0 < len(prefix) < 24
    head = tmp_path / "head.mp4"
    head.write_bytes(data[:300])
    with pytest.raises(
        GIDInputError, match=r"head\.mp4 has no video stream \(it may be incomplete or corrupt"
    ):
        read_video(head)


def test_clip_shorter_than_asked(flat15: Path) -> None:
    with pytest.raises(
        GIDInputError, match=r"flat15\.mp4 is too short: it has 24 frames at 30 fps, but frames 20\.\.29"
    ):
        read_video(flat15, fps=30, start=20, num_frames=10)
    with pytest.raises(GIDInputError, match=r"has 12 frames at 15 fps, but start=12 was asked for"):
        read_video(flat15, start=12)


def test_unreadable_clips(tmp_path: Path) -> None:
    with pytest.raises(GIDInputError, match=r"video file not found: .*missing\.mp4"):
        read_video(tmp_path / "missing.mp4")
    with pytest.raises(GIDInputError, match="not a file"):
        read_video(tmp_path)
    text = tmp_path / "notes.mp4"
    text.write_text("these are my holiday notes\n" * 20)
    with pytest.raises(GIDInputError, match=r"cannot read .*notes\.mp4: not a video file"):
        read_video(text)
    with pytest.raises(GIDInputError, match=r"notes\.mp4: not a video file"):
        probe_video(text)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_still_image_is_not_a_clip(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"photo{suffix}"
    Image.new("RGB", (64, 48), (10, 120, 200)).save(path)
    with pytest.raises(GIDInputError, match=r"photo\.\w+ is a still image, not a video"):
        read_video(path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fps": 0}, "fps must be a positive number"),
        ({"fps": -30}, "fps must be a positive number"),
        ({"fps": float("inf")}, "fps must be a positive number"),
        ({"num_frames": 0}, "num_frames must be a positive integer"),
        ({"num_frames": 2.5}, "num_frames must be a positive integer"),
        ({"start": -1}, "start must be a frame index >= 0"),
        ({"max_frames": 0}, "max_frames must be a positive integer"),
        ({"size": (0, 10)}, r"size must be \(width, height\)"),
        ({"size": (10,)}, r"size must be \(width, height\)"),
        ({"long_side": -5}, "long_side must be a positive number"),
        ({"size": (32, 24), "long_side": 32}, "size or long_side, not both"),
    ],
)
def test_read_video_rejects_bad_arguments(flat15: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(GIDInputError, match=message):
        read_video(flat15, **kwargs)


# ---------------------------------------------------------------------------------------------- images


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((20, 40, 3), np.uint8)  # as stored: 40 wide, left half red, right half blue
    stored[:, :20] = (255, 0, 0)
    stored[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    image = read_image(path)
    assert image.shape == (40, 20, 3) and image.dtype == np.uint8
    assert np.abs(image[5, 10].astype(int) - (255, 0, 0)).max() < 12  # left half is now on top
    assert np.abs(image[35, 10].astype(int) - (0, 0, 255)).max() < 12


def test_grayscale_becomes_rgb(tmp_path: Path) -> None:
    gray = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (20, 1))
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    image = read_image(tmp_path / "gray.png")
    assert image.shape == (20, 32, 3)
    assert np.array_equal(image, np.repeat(gray[..., None], 3, axis=2))


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., :3] = (0, 0, 0)
    rgba[:, :10, 3] = 0  # transparent -> white
    rgba[:, 10:15, 3] = 255  # opaque black
    rgba[:, 15:, 3] = 128  # half transparent black -> grey
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    image = read_image(tmp_path / "rgba.png")
    assert image.shape == (20, 20, 3)
    assert (image[:, :10] == 255).all() and (image[:, 10:15] == 0).all()
    assert np.abs(image[:, 15:].astype(int) - 127).max() <= 1
    assert np.array_equal(read_image(rgba), image)  # the same from an (H, W, 4) array


def test_palette_with_transparent_index(tmp_path: Path) -> None:
    palette_image = Image.new("P", (20, 20), 0)
    palette_image.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    palette_image.paste(1, (0, 0, 20, 10))  # top half: colour 1 (red), bottom: colour 0, declared transparent
    palette_image.save(tmp_path / "palette.png", transparency=0)
    image = read_image(tmp_path / "palette.png")
    assert image.shape == (20, 20, 3)
    assert (image[:10] == (200, 30, 30)).all() and (image[10:] == 255).all()


def test_16_bit_is_scaled_to_8_bit(tmp_path: Path) -> None:
    values = np.array([0, 257, 32896, 65535], np.uint16)  # 8-bit 0, 1, 128, 255
    deep = np.repeat(np.repeat(values[None, :], 20, axis=0), 5, axis=1)  # (20, 20)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    with Image.open(tmp_path / "deep.png") as check:
        assert check.mode.startswith("I")  # really stored and opened as 16 bit
    image = read_image(tmp_path / "deep.png")
    assert image.dtype == np.uint8 and image.shape == (20, 20, 3)
    assert image[0, ::5, 0].tolist() == [0, 1, 128, 255]


def test_cmyk_and_icc_tagged_images(tmp_path: Path) -> None:
    Image.new("CMYK", (20, 20), (0, 255, 255, 0)).save(tmp_path / "print.jpg", quality=95)
    assert np.abs(read_image(tmp_path / "print.jpg").astype(int) - (255, 0, 0)).max() < 8

    rgb = np.broadcast_to(np.array([200, 120, 40], np.uint8), (20, 20, 3))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    Image.fromarray(rgb).save(tmp_path / "tagged.png", icc_profile=srgb)
    assert np.abs(read_image(tmp_path / "tagged.png").astype(int) - rgb).max() <= 2
    Image.fromarray(rgb).save(tmp_path / "bad_profile.png", icc_profile=b"not a profile")
    assert np.array_equal(read_image(tmp_path / "bad_profile.png"), rgb)


def test_read_image_from_pil_and_arrays() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(read_image(Image.fromarray(rgb)), rgb)
    assert np.array_equal(read_image(rgb), rgb)
    assert np.array_equal(read_image(rgb / 255.0), rgb)  # float in [0, 1]
    assert read_image(rgb[..., 0]).shape == (20, 30, 3)


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (no pixel data): Pillow reads the size without decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


def test_read_image_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(GIDInputError, match=r"image file not found: .*missing\.jpg"):
        read_image(tmp_path / "missing.jpg")
    (tmp_path / "notes.jpg").write_text("not a picture\n")
    with pytest.raises(GIDInputError, match=r"notes\.jpg is not an image"):
        read_image(tmp_path / "notes.jpg")
    Image.new("RGB", (100, MIN_IMAGE_SIDE - 1)).save(tmp_path / "thin.png")
    with pytest.raises(GIDInputError, match=r"thin\.png is too small: 100x15"):
        read_image(tmp_path / "thin.png")
    side = int(MAX_IMAGE_PIXELS**0.5) + 100
    (tmp_path / "big.png").write_bytes(png_header(side, side))
    with pytest.raises(GIDInputError, match=rf"big\.png is too large: {side}x{side}"):
        read_image(tmp_path / "big.png")
    (tmp_path / "bomb.png").write_bytes(png_header(30000, 30000))  # above Pillow's own bomb limit
    with pytest.raises(GIDInputError, match=r"bomb\.png is too large"):
        read_image(tmp_path / "bomb.png")
    buffer = tmp_path / "whole.jpg"
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buffer)
    (tmp_path / "cut.jpg").write_bytes(buffer.read_bytes()[:1500])
    with pytest.raises(GIDInputError, match=r"cut\.jpg: it is corrupt or truncated"):
        read_image(tmp_path / "cut.jpg")
    with pytest.raises(GIDInputError, match="image array must be"):
        read_image(np.zeros((20, 20, 2), np.uint8))
