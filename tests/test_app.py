"""The Gradio app, driven over HTTP with gradio_client: Loop, Click to poke and From video, and what bad input gets.

The app runs in this process on a free port with a tiny random GIDPipeline (tests/test_pipeline.py's dummy
components), so that a prediction takes a fraction of a second; everything else (the app, Gradio's server, the
renderers, the video files) is the real thing.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_pipeline import get_dummy_components

import gid_pipeline.app as gid_app
from gid_pipeline import DEFAULT_CHECKPOINT, GIDInputError, GIDPipeline
from gid_pipeline.app.brush import painted_mask
from gid_pipeline.app.clips import ClipRequest
from gid_pipeline.app.engine import MotionEngine, PredictionSettings, storable
from gid_pipeline.app.loops import app_timing, gif_plan, loop_controls
from gid_pipeline.app.photos import draw_poke_marker, force_vector, to_image_pixels
from gid_pipeline.app.pokes import PokeRequest
from gid_pipeline.app.sessions import ShownPhotos
from gid_pipeline.app.storage import SHARED_SESSION, OutputFolder, session_folder_name
from gid_pipeline.guidance import PAPER_GUIDANCE_SCALE
from gid_pipeline.media.images import read_image
from gid_pipeline.media.video import probe_video, read_video
from gid_pipeline.media.writer import write_video
from gid_pipeline.player import LoopTiming
from gid_pipeline.sizing import working_size
from gid_pipeline.spectral.volume import SpectralVolume

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls from tests
gradio_client = pytest.importorskip("gradio_client")
from gradio.utils import get_upload_folder  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEADOW = ROOT / "assets" / "examples" / "meadow.jpg"
STEPS = 2
pytestmark = pytest.mark.usefixtures("one_thread")




@pytest.fixture(scope="module")
def app_module():
    return gid_app


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny GIDPipeline folder (K = 4, with a learned renderer), as save_pretrained writes it."""
    folder = tmp_path_factory.mktemp("tiny") / "pipeline"
    GIDPipeline(**get_dummy_components(renderer=True)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def mask_checkpoint(tmp_path_factory) -> Path:
    """A tiny GIDPipeline folder whose U-Net takes motion masks (the motion brush)."""
    folder = tmp_path_factory.mktemp("tiny-mask") / "pipeline"
    GIDPipeline(**get_dummy_components(renderer=False, motion_mask=True)).save_pretrained(folder)
    return folder


def serve(app_module, checkpoint: Path, downloads: Path):
    """Build and launch the app on a checkpoint: (demo, client, engine)."""
    demo = app_module.build_demo(checkpoint)
    app_module.launch(demo, prevent_thread_lock=True, quiet=True)
    client = gradio_client.Client(demo.local_url, verbose=False, download_files=downloads)
    return demo, client, app_module.engine_for(str(checkpoint.resolve()))


@pytest.fixture(scope="module")
def served(app_module, checkpoint, tmp_path_factory):
    """(client, engine): the app launched in this process, and the MotionEngine behind it."""
    demo, client, engine = serve(app_module, checkpoint, tmp_path_factory.mktemp("downloads"))
    yield client, engine
    demo.close()


@pytest.fixture(scope="module")
def mask_served(app_module, mask_checkpoint, tmp_path_factory):
    """(client, engine) of the app on the checkpoint that takes motion masks."""
    demo, client, engine = serve(app_module, mask_checkpoint, tmp_path_factory.mktemp("mask-downloads"))
    yield client, engine
    demo.close()


def video_path(result) -> str:
    """A Video output as gradio_client returns it (a path, or a dict holding one)."""
    return result["video"] if isinstance(result, dict) else result


def loop(
    client, photo=MEADOW, size=128, fps=8, duration=5, speed=1.0, scale=1.0, seed=0, renderer="learned", **kw
) -> tuple:
    """/loop: (video, gif, heatmap, spectral volume, timing line). Small and slow by default (8 fps: 40 frames).
    brush: an optional motion-brush layer (an image file) to paint with; without it no brush is passed at all."""
    photo = gradio_client.handle_file(str(photo)) if photo is not None else None
    steps, guidance = kw.get("steps", STEPS), kw.get("guidance", 2.0)
    args = [photo, size, fps, duration, speed, scale, steps, guidance, seed, renderer]
    if "brush" in kw:
        args.append({"background": None, "layers": [gradio_client.handle_file(str(kw["brush"]))], "composite": None})
    return client.predict(*args, api_name="/loop")


def poke(client, photo, motion=None, x=10.0, y=10.0, direction=0, force=8, frames=20, size=128, seed=0, **kw):
    photo = gradio_client.handle_file(str(photo)) if photo is not None else None
    motion = gradio_client.handle_file(str(motion)) if motion is not None else None
    damping, hold = kw.get("damping", 0.2), kw.get("hold", 0.0)
    return client.predict(
        photo, motion, x, y, direction, force, damping, hold, frames, size, seed, STEPS, 2.0, api_name="/poke"
    )


def from_video(client, clip, start=0, duration=3.6, size=128, scale=1.0):
    clip = gradio_client.handle_file(str(clip)) if clip is not None else None
    return client.predict(clip, start, duration, size, scale, api_name="/from_video")


# --------------------------------------------------------------------------------------------- Loop


def test_loop_on_an_example_gives_a_playable_loop_a_gif_a_heatmap_and_its_spectral_volume(served):
    client, _ = served
    video, gif, heatmap, spectrum, timing = loop(client)
    info = probe_video(video_path(video))
    # meadow.jpg is 1024x819: 128 px on the long side, even sides; 40 frames at 8 fps over the model's 5 s period.
    assert (info.codec, info.pix_fmt, info.width, info.height, info.num_frames) == ("h264", "yuv420p", 128, 102, 40)
    assert info.fps == pytest.approx(8.0)
    assert timing == "5 s loop; 40 frames per loop at 8 fps"
    # The GIF: one period (a GIF loops by itself), delays of 13/100 s (the whole delay nearest below 8 fps).
    gif_info = probe_video(gif)
    assert (gif_info.codec, gif_info.width, gif_info.height, gif_info.num_frames) == ("gif", 128, 102, 38)
    assert gif_info.duration_s == pytest.approx(5.0, abs=0.1)
    gif_frames = read_video(gif).frames.astype(float)
    assert np.abs(gif_frames[0] - read_video(video_path(video), num_frames=1).frames[0]).mean() < 8  # same start
    # The heatmap: the photo at the video's size, a colour bar under it.
    picture = read_image(heatmap)
    assert picture.shape == (102 + 18, 128, 3)
    assert not np.array_equal(picture[:102, :, 0], picture[:102, :, 2])  # coloured, not the grey photo alone
    volume = SpectralVolume.load(spectrum)
    assert volume.size == (204, 256) and volume.num_frequencies == 4  # the model's scale, not the video's
    assert (volume.num_frames, volume.fps) == (150, 30.0)  # the model's time base: `gid render` replays it
    first = read_video(video_path(video), num_frames=1).frames[0].astype(float)
    photo = np.asarray(Image.fromarray(read_image(MEADOW)).resize((128, 102), Image.Resampling.LANCZOS))
    # Frame 0 is the photo, up to H.264 on fine grass at 128 px (about 4 levels; a 1 px shift would give 15).
    assert np.abs(first - photo).mean() < 6


def test_speed_and_length_set_the_period_and_the_whole_loops_in_the_file(served):
    client, engine = served
    loop(client, size=64, seed=5)
    predictions = engine.predictions
    # Speed 2: a 2.5 s period of 20 frames at 8 fps, repeated 4 times for 10 s; rendered once, copied 4 times.
    video, gif, _, spectrum, timing = loop(client, size=64, seed=5, speed=2.0, duration=10, renderer="pixel")
    assert engine.predictions == predictions  # same photo and seed: the cached motion
    assert timing == "2.5 s loop x 4 = 10 s; 20 frames per loop at 8 fps"
    info = probe_video(video_path(video))
    assert (info.num_frames, info.fps) == (40 * 2, 8.0)
    frames = read_video(video_path(video)).frames
    assert np.array_equal(frames[:20], frames[20:40]) and np.array_equal(frames[:20], frames[60:])  # copies
    assert probe_video(gif).num_frames == 19  # one period: round(2.5 s / 0.13 s)
    # Stored as predicted (playback controls are never baked in): `gid render --speed 2` replays this loop.
    assert SpectralVolume.load(spectrum).period_seconds == pytest.approx(5.0)
    # Speed 4 at 30 fps: 1.25 s is 37.5 frames, so 38 at 30.4 fps; 6 s of video holds 5 whole loops.
    video, *_, timing = loop(client, size=64, seed=5, speed=4.0, fps=30, duration=6, renderer="pixel")
    assert timing == "1.25 s loop x 5 = 6.25 s; 38 frames per loop at 30.4 fps"
    assert probe_video(video_path(video)).num_frames == 38 * 5
    loop(client, size=64, seed=6)
    assert engine.predictions == predictions + 1


# --------------------------------------------------------------------------------------------- Motion brush


def brush_layer(path: Path, width: int, height: int, moves=None, still=None) -> Path:
    """An RGBA brush layer PNG: white (opaque) over the box ``moves`` = (x0, y0, x1, y1), black over ``still``,
    transparent elsewhere, as the editor's canvas exports it."""
    layer = np.zeros((height, width, 4), np.uint8)
    for box, level in ((moves, 255), (still, 0)):
        if box is not None:
            x0, y0, x1, y1 = box
            layer[y0:y1, x0:x1] = (level, level, level, 255)
    Image.fromarray(layer, "RGBA").save(path)
    return path


def test_the_brush_painting_white_moves_black_stays_still_unpainted_is_unknown():
    layer = np.zeros((40, 64, 4), np.uint8)  # as the editor exports it: transparent black where unpainted
    assert painted_mask(None) is None and painted_mask({"layers": []}) is None
    assert painted_mask({"background": np.full((40, 64, 4), 255, np.uint8), "layers": [layer]}) is None  # photo only
    layer[5:15, 8:24] = (255, 255, 255, 255)
    layer[25:35, 40:56] = (0, 0, 0, 255)
    mask = painted_mask({"layers": [layer]}).fitted(40, 64)
    assert mask.shape == (2, 40, 64)
    assert bool((mask[0, 5:15, 8:24] == 1).all()) and float(mask[0].sum()) == 10 * 16  # white: moves, only there
    assert bool((mask[1, 25:35, 40:56] == 1).all()) and float(mask[1].sum()) == 10 * 16  # black: stays still
    # A later layer paints over an earlier one; erased (transparent again) is unknown; the mask fits the photo.
    over = np.zeros_like(layer)
    over[5:15, 8:16] = (0, 0, 0, 255)
    stacked = painted_mask({"layers": [layer, over]}).fitted(40, 64)
    assert bool((stacked[1, 5:15, 8:16] == 1).all()) and not stacked[0, 5:15, 8:16].any()
    assert bool((stacked[0, 5:15, 16:24] == 1).all())
    assert painted_mask({"layers": [layer]}).fitted(80, 128).shape == (2, 80, 128)
    erased = layer.copy()
    erased[..., 3] = 0
    assert painted_mask({"layers": [erased]}) is None
    # The same painting is the same cache key; another is another.
    assert painted_mask({"layers": [layer]}) == painted_mask({"layers": [layer.copy()]})
    assert painted_mask({"layers": [layer]}) != painted_mask({"layers": [layer, over]})
    with pytest.raises(GIDInputError, match="aspect ratio"):
        painted_mask({"layers": [layer]}).fitted(64, 64)
    with pytest.raises(GIDInputError, match="differ in size"):
        painted_mask({"layers": [layer, layer[:20]]})


def test_a_painted_loop_moves_where_painted_and_keys_the_cache_and_no_painting_is_the_prior(mask_served, tmp_path):
    client, engine = mask_served
    width, height = 256, 205  # meadow.jpg's aspect ratio (1024x819)
    moves = brush_layer(tmp_path / "moves.png", width, height, moves=(0, 0, 128, 205), still=(128, 0, 256, 205))
    blank = brush_layer(tmp_path / "blank.png", width, height)
    plain = dict(size=64, renderer="pixel", seed=3)
    *_, spectrum, _ = loop(client, **plain)
    prior = SpectralVolume.load(spectrum)
    assert prior.motion_mask is None
    predictions = engine.predictions
    *_, spectrum, _ = loop(client, brush=moves, **plain)
    painted = SpectralVolume.load(spectrum)
    assert engine.predictions == predictions + 1  # another painting: predicted again
    assert not torch.allclose(painted.spectrum, prior.spectrum)
    # The file holds the mask the model was given, on the model's grid: left half moves, right half stays still.
    mask = painted.motion_mask
    left, right = slice(0, mask.shape[-1] // 2 - 2), slice(mask.shape[-1] // 2 + 2, None)  # off the resized edge
    assert bool((mask[0, :, left] > 0.99).all()) and bool((mask[0, :, right] < 0.01).all())
    assert bool((mask[1, :, right] > 0.99).all()) and bool((mask[1, :, left] < 0.01).all())
    loop(client, brush=moves, **plain)
    assert engine.predictions == predictions + 1  # the same painting: the cached motion
    # Nothing painted (no brush, or a blank layer) is the same prior as before, from the cache.
    for brush in ({}, {"brush": blank}):
        *_, spectrum, _ = loop(client, **brush, **plain)
        again = SpectralVolume.load(spectrum)
        assert torch.equal(again.spectrum, prior.spectrum) and again.motion_mask is None
    assert engine.predictions == predictions + 1
    square = brush_layer(tmp_path / "square.png", 100, 100, moves=(0, 0, 50, 50))
    with pytest.raises(AppError, match=r"^The motion mask is 100x100, the photo 1024x819: paint the mask") as caught:
        loop(client, brush=square, **plain)
    assert "Traceback" not in str(caught.value)


def test_painting_with_a_checkpoint_without_masks_warns_and_loops_without(served, tmp_path):
    client, engine = served
    moves = brush_layer(tmp_path / "moves.png", 256, 205, moves=(0, 0, 128, 205))
    *_, spectrum, _ = loop(client, size=64, renderer="pixel", seed=4)
    predictions = engine.predictions
    photo = gradio_client.handle_file(str(MEADOW))
    brush = {"background": None, "layers": [gradio_client.handle_file(str(moves))], "composite": None}
    job = client.submit(photo, 64, 8, 5, 1.0, 1.0, STEPS, 2.0, 4, "pixel", brush, api_name="/loop")
    *_, ignored, _ = job.result()
    assert engine.predictions == predictions  # the painting was ignored: the unpainted motion, from the cache
    assert torch.equal(SpectralVolume.load(ignored).spectrum, SpectralVolume.load(spectrum).spectrum)
    messages = []
    while not job.communicator.updates.empty():
        update = job.communicator.updates.get_nowait()
        messages += [update.log] if getattr(update, "log", None) else []
    assert ("This checkpoint was not trained with a motion brush; the painting is ignored.", "warning") in messages


# --------------------------------------------------------------------------------------------- From video


@pytest.fixture(scope="module")
def tree_motion(served, tree_clip_path, tmp_path_factory):
    """From video on the real clip's first 3.6 s (frames 0-53): (video, spectral volume path, frame 0 as PNG)."""
    client, _ = served
    video, spectrum = from_video(client, tree_clip_path, start=0, duration=3.6, size=256)
    still = tmp_path_factory.mktemp("tree") / "still.png"
    Image.fromarray(read_video(tree_clip_path, num_frames=1, long_side=256).frames[0]).save(still)
    return video_path(video), spectrum, still


def test_from_video_on_the_tree_clip_gives_a_loop_and_its_spectral_volume(tree_motion):
    video, spectrum, _ = tree_motion
    info = probe_video(video)
    assert (info.codec, info.width, info.height, info.num_frames, info.fps) == ("h264", 256, 192, 54, 15.0)
    volume = SpectralVolume.load(spectrum)
    assert (volume.size, volume.num_frames, volume.fps, volume.num_frequencies) == ((192, 256), 54, 15.0, 16)
    assert float(volume.amplitude()[1:].sum(dim=0).amax()) > 0.5  # the tree sways by pixels


# --------------------------------------------------------------------------------------------- Poke


def test_poke_with_the_clip_motion_moves_the_poked_point_and_starts_from_the_still(served, tree_motion):
    client, engine = served
    _, spectrum, still = tree_motion
    amplitude = SpectralVolume.load(spectrum).amplitude()[1:].sum(dim=0)
    y, x = divmod(int(amplitude.argmax()), amplitude.shape[1])  # the most pliable point of the tree
    predictions = engine.predictions
    video = video_path(poke(client, still, spectrum, x=float(x), y=float(y), force=10, frames=30, size=256))
    assert engine.predictions == predictions  # a given spectral volume: the model is not asked
    info = probe_video(video)
    assert (info.codec, info.width, info.height, info.num_frames, info.fps) == ("h264", 256, 192, 30, 30.0)
    frames = read_video(video).frames.astype(float)
    photo = np.asarray(Image.open(still)).astype(float)
    assert np.abs(frames[0] - photo).mean() < 3  # nothing has moved at the poke's first frame
    assert np.abs(frames - frames[:1]).mean(axis=(1, 2, 3)).max() > 0.5  # then the scene sways


def test_poke_predicts_once_per_photo_and_settings_then_reuses_the_motion(served):
    client, engine = served
    predictions = engine.predictions
    first = video_path(poke(client, MEADOW, x=500.0, y=400.0, seed=11))
    second = video_path(poke(client, MEADOW, x=200.0, y=300.0, direction=90, force=20, seed=11))
    assert engine.predictions == predictions + 1
    assert probe_video(first).num_frames == probe_video(second).num_frames == 20


# --------------------------------------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, tree_clip_path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad")
    text = folder / "notes.png"
    text.write_text("this is text, not a picture")
    renamed = folder / "notes.jpg"
    renamed.write_text("this is text, not a picture")
    huge = folder / "huge.png"
    Image.new("1", (10_000, 5_000)).save(huge)  # 50 megapixels in a 6 kB file (1 bit per pixel, all black)
    tiny = folder / "tiny.png"
    Image.new("RGB", (1, 1), (200, 30, 30)).save(tiny)
    strip = folder / "strip.png"
    Image.new("RGB", (1000, 100)).save(strip)
    one_frame = folder / "one_frame.mp4"
    write_video(one_frame, np.zeros((1, 64, 64, 3), np.uint8), fps=30)
    garbage = folder / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    corrupt = folder / "motion.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    return {
        "text": text,
        "renamed": renamed,
        "huge": huge,
        "tiny": tiny,
        "strip": strip,
        "one_frame": one_frame,
        "garbage": garbage,
        "corrupt": corrupt,
        "still": MEADOW,
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c, f: loop(c, photo=None), r"^No photo: upload an image"),
        (lambda c, f: loop(c, photo=f["text"]), r"notes\.png is not an image"),
        (lambda c, f: loop(c, photo=f["renamed"]), r"notes\.jpg is not an image"),
        (lambda c, f: loop(c, photo=f["huge"]), r"too large \(10000x5000, 50 MP\)"),
        (lambda c, f: loop(c, photo=f["tiny"]), r"^The photo is too small \(1x1\): its shorter side must be"),
        (lambda c, f: loop(c, photo=f["strip"]), r"^The photo is too elongated \(1000x100\)"),
        (lambda c, f: loop(c, fps=1000), r"^Frame rate must be between 8 and 60, got 1000"),
        (lambda c, f: loop(c, speed=0), r"^Speed must be between 0\.25 and 4, got 0"),
        (lambda c, f: loop(c, duration=60), r"^Duration must be between 1 and 20, got 60"),
        (lambda c, f: loop(c, steps=0), r"^Steps must be between 1 and 100"),
        (lambda c, f: loop(c, renderer="magic"), r"^Renderer must be one of \['learned', 'pixel'\]"),
        (lambda c, f: poke(c, f["tiny"]), r"^The photo is too small \(1x1\)"),
        (lambda c, f: poke(c, MEADOW, x=None, y=None), r"^No point chosen: click the photo"),
        (lambda c, f: poke(c, MEADOW, x=5000.0, y=3.0), r"outside the 1024x819 photo"),
        (lambda c, f: poke(c, MEADOW, motion=f["corrupt"]), r"is not a safetensors spectral volume"),
        (lambda c, f: from_video(c, None), r"^No clip: upload a short video"),
        (lambda c, f: from_video(c, f["one_frame"]), r"too short: it has 1 frame \(0\.0 s at 30 fps\)"),
        (lambda c, f: from_video(c, f["garbage"]), r"garbage\.mp4: not a video file, or it is corrupt"),
        (lambda c, f: from_video(c, f["still"]), r"is a still image, not a video"),
    ],
    ids=[
        "no-photo",
        "text-as-png",
        "text-as-jpg",
        "50-megapixels",
        "1x1-photo",
        "elongated-photo",
        "fps-too-high",
        "zero-speed",
        "too-long",
        "zero-steps",
        "unknown-renderer",
        "poke-1x1-photo",
        "poke-without-point",
        "point-off-photo",
        "corrupt-motion",
        "no-clip",
        "one-frame-clip",
        "garbage-clip",
        "photo-as-clip",
    ],
)
def test_bad_input_gets_a_clear_message(served, bad_files, call, message):
    client, _ = served
    with pytest.raises(AppError, match=message) as caught:
        call(client, bad_files)
    assert "Traceback" not in str(caught.value)


def test_the_server_keeps_serving_after_errors(served, bad_files):
    client, _ = served
    for name in ("text", "huge", "tiny", "text", "renamed"):
        with pytest.raises(AppError):
            loop(client, photo=bad_files[name])
    with pytest.raises(AppError):
        from_video(client, bad_files["garbage"])
    video, *_ = loop(client, size=64)
    assert probe_video(video_path(video)).width == 64
    video = poke(client, MEADOW, x=100.0, y=100.0, size=64, frames=8)
    assert probe_video(video_path(video)).num_frames == 8


# --------------------------------------------------------------------------------------------- the glue


def test_a_sessions_outputs_are_stored_once_and_deleted_when_it_ends(served, tmp_path):
    """A loop's files are written once, in the session's folder inside Gradio's cache (Gradio serves them from there
    instead of copying them), and go when the session ends (its heartbeat stops: the tab closed)."""
    client, _ = served
    visitor = gradio_client.Client(client.src, verbose=False, download_files=tmp_path)
    folder = OutputFolder().root / session_folder_name(visitor.session_hash)
    video, _, _, spectrum, _ = loop(visitor, size=64, fps=8, duration=2)
    written = sorted(path.name for path in folder.iterdir())
    assert len(written) == 3 and {Path(name).suffix for name in written} == {".mp4", ".gif", ".safetensors"}
    cache = Path(get_upload_folder())
    for name in written:  # no second copy anywhere in Gradio's cache
        assert list(cache.rglob(name)) == [folder / name], name
    assert Path(video_path(video)).name in written and Path(spectrum).name in written
    visitor.close()
    deadline = time.monotonic() + 60.0
    while folder.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not folder.exists()


def test_working_size_keeps_the_aspect_ratio_with_even_sides():
    assert working_size(1024, 819, 512) == (512, 410)
    assert working_size(819, 1024, 128) == (102, 128)
    assert working_size(300, 200, 600) == (600, 400)  # enlarged when asked


def test_points_map_between_grids_pixel_centre_to_pixel_centre():
    x, y = to_image_pixels(0.0, 9.0, (10, 10), (20, 40))
    assert (x, y) == (0.5, 37.5)  # pixel 0 of 10 covers target pixels 0-1, pixel 9 rows 36-39
    assert to_image_pixels(*to_image_pixels(3.2, 7.7, (64, 48), (1024, 819)), (1024, 819), (64, 48)) == (
        pytest.approx(3.2),
        pytest.approx(7.7),
    )


def test_force_vector_points_where_the_direction_says_image_y_down():
    assert force_vector(0, 10) == pytest.approx((10.0, 0.0))
    assert force_vector(90, 10) == pytest.approx((0.0, -10.0), abs=1e-9)  # up
    assert force_vector(225, 2**0.5) == pytest.approx((-1.0, 1.0))  # down-left


def test_the_marker_is_drawn_around_the_point_and_leaves_the_rest():
    image = np.full((100, 160, 3), 128, np.uint8)
    marked = draw_poke_marker(image, 40, 30, force=(10.0, 0.0))
    changed = np.argwhere(np.any(marked != image, axis=2))
    assert changed[:, 0].min() >= 30 - 10 and changed[:, 0].max() <= 30 + 10  # rows near y = 30
    assert changed[:, 1].min() >= 40 - 10 and changed[:, 1].max() > 40 + 10  # the arrow points right
    assert np.array_equal(image, np.full((100, 160, 3), 128, np.uint8))  # a copy was drawn on


def test_volumes_handed_out_are_at_most_the_model_scale_with_displacements_scaled():
    spectrum = torch.zeros(3, 4, 240, 320)
    spectrum[:, 0], spectrum[:, 1] = 10.0, 5.0  # x.real, y.real in pixels of the 320x240 grid
    stored = storable(SpectralVolume(spectrum, 30, 15.0))
    assert stored.size == (192, 256) and (stored.num_frames, stored.fps) == (30, 15.0)
    assert float(stored.spectrum[0, 0].mean()) == pytest.approx(8.0) and float(stored.spectrum[0, 1].mean()) == 4.0
    small = SpectralVolume(spectrum[..., :100, :160], 30, 15.0)
    assert storable(small) is small


def test_the_app_defaults_are_the_pipeline_defaults(app_module):
    signature = inspect.signature(GIDPipeline.__call__).parameters
    assert app_module.DEFAULT_STEPS == signature["num_inference_steps"].default
    assert app_module.DEFAULT_FPS == signature["fps"].default
    assert app_module.DEFAULT_DURATION * app_module.DEFAULT_FPS == signature["num_frames"].default  # one loop


def test_the_guidance_default_is_the_checkpoints(tmp_path):
    """The slider starts at the checkpoint's tuned default_guidance_scale; the paper's when it does not say."""
    shipped = json.loads((DEFAULT_CHECKPOINT / "model_index.json").read_text())["default_guidance_scale"]
    assert MotionEngine(DEFAULT_CHECKPOINT).default_guidance == shipped
    (tmp_path / "model_index.json").write_text("{}")
    assert MotionEngine(tmp_path).default_guidance == PAPER_GUIDANCE_SCALE
    assert MotionEngine("org/some-repo").default_guidance == PAPER_GUIDANCE_SCALE


def test_engine_cache_keeps_the_most_recently_used_volumes():
    engine = MotionEngine("unused", cache_size=2)
    photos = [np.full((16, 16, 3), value, np.uint8) for value in range(3)]
    settings = PredictionSettings(seed=0, steps=1, guidance=1.0)

    def compute(image, settings):
        return SpectralVolume(torch.full((2, 4, 16, 16), float(image[0, 0, 0])), 4, 4.0)

    for photo in [*photos, photos[2], photos[0]]:
        engine.predict(photo, settings, compute)
    assert engine.predictions == 4  # photos 0, 1, 2, then 0 again after it was evicted; 2 was a hit
    assert engine.lookup(photos[1], settings) is None
    assert float(engine.lookup(photos[2], settings).spectrum[0, 0, 0, 0]) == 2.0
    assert engine.lookup(photos[2], PredictionSettings(seed=1, steps=1, guidance=1.0)) is None


def test_loop_timing_divides_the_period_by_the_speed_in_whole_frames_and_whole_loops():
    volume = SpectralVolume(torch.zeros(16, 4, 8, 8), 150, 30.0)  # the model's: K = 16, 5 s
    assert app_timing(volume, loop_controls())[1] == LoopTiming(5.0, 150, 30.0, 1)
    timing = app_timing(volume, loop_controls(speed=3.0, fps=24, length_seconds=20))[1]
    assert (timing.frames, timing.repeats) == (40, 12)  # 5/3 s = 40 frames at 24 fps; 12 loops = 20 s
    assert timing.fps == pytest.approx(24.0) and timing.duration_seconds == pytest.approx(20.0)
    # 30 frames at least (K = 16 frequencies), so a fast loop at a low rate gets a higher rate.
    fast = app_timing(volume, loop_controls(speed=4.0, fps=8))[1]
    assert (fast.frames, fast.fps) == (30, 24.0)
    # At most MAX_FRAMES a period: a slow loop at a high rate gets a lower rate; never past MAX_LOOP_SECONDS.
    slow = app_timing(volume, loop_controls(speed=0.25, fps=60, length_seconds=20))[1]
    assert (slow.period_seconds, slow.frames, slow.fps, slow.repeats) == (20.0, 300, 15.0, 1)
    assert app_timing(volume, loop_controls(speed=0.3, length_seconds=20))[1].repeats == 1  # 16.7 s: once
    assert app_timing(volume, loop_controls(length_seconds=1))[1].repeats == 1  # at least one loop
    clip = SpectralVolume(torch.zeros(16, 4, 8, 8), 54, 15.0)  # a clip's 3.6 s window: kept as measured
    assert app_timing(clip, loop_controls())[1] == LoopTiming(3.6, 54, 15.0, 1)


def test_the_gif_keeps_evenly_spread_frames_of_one_period_at_a_whole_delay():
    plan = gif_plan(LoopTiming(5.0, 150, 30.0, 2), 512, 410)
    assert plan.size == (320, 256) and plan.fps == pytest.approx(100 / 7)  # 7/100 s delays: 14.3 fps
    kept = torch.nonzero(plan.keep).flatten()
    assert len(kept) == 71 and kept[0] == 0  # round(5 s / 0.07 s)
    assert set(torch.diff(kept).tolist()) == {2, 3}  # 150 frames thinned evenly
    small = gif_plan(LoopTiming(5.0, 40, 8.0, 1), 128, 102)
    assert small.size == (128, 102) and int(small.keep.sum()) == 38  # never enlarged; 13/100 s delays


def test_prediction_settings_and_requests_refuse_out_of_range_values():
    with pytest.raises(GIDInputError, match="steps must be between 1 and 100"):
        PredictionSettings(seed=0, steps=101, guidance=1.0)
    with pytest.raises(GIDInputError, match=r"damping must be between 0 and 0\.95"):
        PokeRequest(x=1.0, y=1.0, damping=1.0)
    with pytest.raises(GIDInputError, match="duration must be between 1 and 20"):
        ClipRequest(duration=60.0)
    with pytest.raises(GIDInputError, match=r"speed must be between 0\.25 and 4"):
        loop_controls(speed=5.0)
    with pytest.raises(GIDInputError, match="frame rate must be a finite number"):
        loop_controls(fps=float("nan"))


def test_output_folder_keeps_a_folder_per_session_and_sweeps_files_older_than_its_max_age(tmp_path):
    folder = OutputFolder(tmp_path, max_age=60.0)
    stale_session = tmp_path / "gone"
    stale_session.mkdir()
    old, fresh = stale_session / "old.mp4", tmp_path / "fresh.mp4"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    for path in (old, stale_session):
        os.utime(path, (time.time() - 120, time.time() - 120))
    path = folder.new_path("loop", ".mp4", "abc123")
    assert path.parent == tmp_path / "abc123" and path.suffix == ".mp4" and not path.exists()
    assert not old.exists() and not stale_session.exists() and fresh.exists()  # the emptied old folder goes too
    path.write_bytes(b"12345")
    assert folder.usage() == (2, 6)
    folder.end_session("abc123")
    assert not (tmp_path / "abc123").exists() and fresh.exists()
    folder.end_session("never-seen")  # nothing to delete: fine
    assert folder.new_path("loop", ".mp4").parent == tmp_path / SHARED_SESSION  # no session: the shared folder


@pytest.mark.parametrize("session", ["../../etc", "a/b", "x" * 65, "shared", "\\server\\share", "."])
def test_a_session_string_never_names_a_path_outside_the_output_folder(tmp_path, session):
    name = session_folder_name(session)
    assert re.fullmatch(r"h[0-9a-f]{32}", name) and OutputFolder(tmp_path).new_path("x", ".mp4", session).parent == (
        tmp_path / name
    )


def test_the_app_writes_its_outputs_inside_gradios_cache_so_they_are_served_without_a_copy(monkeypatch, tmp_path):
    from gradio.utils import is_in_or_equal

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))
    folder = OutputFolder()
    assert is_in_or_equal(str(folder.new_path("loop", ".mp4", "s1")), str(tmp_path / "cache"))


def test_a_photo_is_claimed_once_per_session_however_many_times_change_fires():
    now = [0.0]
    shown = ShownPhotos(max_sessions=2, repeat_window=30.0, clock=lambda: now[0])
    assert shown.claim("a", "/p/1.jpg") and not shown.claim("a", "/p/1.jpg")  # a repeat: keep the clicked point
    assert shown.claim("b", "/p/1.jpg")  # another browser showing the same photo
    assert shown.claim("a", "/p/2.jpg") and not shown.claim("a", "/p/2.jpg")  # a new photo resets the point
    shown.forget("a")  # cleared, or unreadable: the same photo shown again is new
    assert shown.claim("a", "/p/2.jpg")
    now[0] = 31.0  # long after: the same photo again is a new showing (the session state may have expired)
    assert shown.claim("a", "/p/2.jpg") and not shown.claim("a", "/p/2.jpg")
    shown.claim("c", "/p/3.jpg")  # the least recently claimed session ("b") is dropped
    assert shown.claim("b", "/p/1.jpg")


def test_concurrent_repeats_of_one_change_claim_the_photo_once():
    from concurrent.futures import ThreadPoolExecutor

    shown = ShownPhotos()
    with ThreadPoolExecutor(8) as pool:
        claims = list(pool.map(lambda _: shown.claim("s", "/p/1.jpg"), range(64)))
    assert claims.count(True) == 1


def test_messages_show_file_names_not_the_servers_folders():
    from gid_pipeline.app.server import public_message, sentence

    assert sentence("/tmp/gradio/3f2a/notes.png is not an image") == "notes.png is not an image."
    assert public_message("cannot read /srv/a/b/clip.mp4: corrupt") == "cannot read clip.mp4: corrupt"
    assert public_message("a 1024x819 photo, ratio 4/3, see https://x.org/a/b") == "a 1024x819 photo, ratio 4/3, see https://x.org/a/b"
