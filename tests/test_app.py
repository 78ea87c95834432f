"""The Gradio app, driven over HTTP with gradio_client: Loop, Click to poke and From video, and what bad input gets.

The app runs in this process on a free port with a tiny random GIDPipeline (tests/test_pipeline.py's dummy
components), so that a prediction takes a fraction of a second; everything else (the app, Gradio's server, the
renderers, the video files) is the real thing.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_pipeline import get_dummy_components

from gid_pipeline import DEFAULT_CHECKPOINT, GIDInputError, GIDPipeline
from gid_pipeline import app_logic as logic
from gid_pipeline.guidance import PAPER_GUIDANCE_SCALE
from gid_pipeline.spectral_volume import SpectralVolume
from gid_pipeline.video import probe_video, read_image, read_video, write_video

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry calls from tests
gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MEADOW = ROOT / "assets" / "examples" / "meadow.jpg"
STEPS = 2
pytestmark = pytest.mark.usefixtures("one_thread")


def load_app():
    """app.py (it lives at the repository root, outside the package) as a module."""
    spec = importlib.util.spec_from_file_location("gid_app", ROOT / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gid_app"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def app_module():
    return load_app()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny GIDPipeline folder (K = 4, with a learned renderer), as save_pretrained writes it."""
    folder = tmp_path_factory.mktemp("tiny") / "pipeline"
    GIDPipeline(**get_dummy_components(renderer=True)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def served(app_module, checkpoint, tmp_path_factory):
    """(client, engine): the app launched in this process, and the MotionEngine behind it."""
    demo = app_module.build_demo(checkpoint)
    app_module.launch(demo, prevent_thread_lock=True, quiet=True)
    client = gradio_client.Client(demo.local_url, verbose=False, download_files=tmp_path_factory.mktemp("downloads"))
    yield client, app_module.engine_for(str(checkpoint.resolve()))
    demo.close()


def video_path(result) -> str:
    """A Video output as gradio_client returns it (a path, or a dict holding one)."""
    return result["video"] if isinstance(result, dict) else result


def loop(client, photo=MEADOW, size=128, frames=30, scale=1.0, steps=STEPS, guidance=2.0, seed=0, renderer="learned"):
    photo = gradio_client.handle_file(str(photo)) if photo is not None else None
    return client.predict(photo, size, frames, scale, steps, guidance, seed, renderer, api_name="/loop")


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


def test_loop_on_an_example_gives_a_playable_loop_and_its_spectral_volume(served):
    client, _ = served
    video, spectrum = loop(client)
    info = probe_video(video_path(video))
    # meadow.jpg is 1024x819: 128 px on the long side, even sides; 30 frames over the model's 5 s period.
    assert (info.codec, info.pix_fmt, info.width, info.height, info.num_frames) == ("h264", "yuv420p", 128, 102, 30)
    assert info.fps == pytest.approx(6.0)
    volume = SpectralVolume.load(spectrum)
    assert volume.size == (204, 256) and volume.num_frequencies == 4  # the model's scale, not the video's
    assert (volume.num_frames, volume.fps) == (150, 30.0)  # the model's time base: `gid render` replays it
    first = read_video(video_path(video), num_frames=1).frames[0].astype(float)
    photo = np.asarray(Image.fromarray(read_image(MEADOW)).resize((128, 102), Image.Resampling.LANCZOS))
    # Frame 0 is the photo, up to H.264 on fine grass at 128 px (about 4 levels; a 1 px shift would give 15).
    assert np.abs(first - photo).mean() < 6


def test_a_second_loop_of_the_same_photo_and_seed_reuses_the_prediction(served):
    client, engine = served
    loop(client, size=64, seed=5)
    predictions = engine.predictions
    video, _ = loop(client, size=64, seed=5, scale=2.0, frames=40, renderer="pixel")
    assert engine.predictions == predictions
    assert probe_video(video_path(video)).num_frames == 40
    loop(client, size=64, seed=6)
    assert engine.predictions == predictions + 1


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
    huge = folder / "huge.png"
    Image.new("L", (8000, 6000)).save(huge)  # 48 megapixels, a small file
    one_frame = folder / "one_frame.mp4"
    write_video(one_frame, np.zeros((1, 64, 64, 3), np.uint8), fps=30)
    corrupt = folder / "motion.safetensors"
    corrupt.write_bytes(b"\x00" * 64)
    return {"text": text, "huge": huge, "one_frame": one_frame, "corrupt": corrupt, "still": MEADOW}


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c, f: loop(c, photo=None), r"^No photo: upload an image"),
        (lambda c, f: loop(c, photo=f["text"]), r"notes\.png is not an image"),
        (lambda c, f: loop(c, photo=f["huge"]), r"too large \(8000x6000, 48 MP\)"),
        (lambda c, f: loop(c, frames=1000), r"^Frames must be between 8 and 300, got 1000"),
        (lambda c, f: loop(c, steps=0), r"^Steps must be between 1 and 100"),
        (lambda c, f: loop(c, renderer="magic"), r"^Renderer must be one of \['learned', 'pixel'\]"),
        (lambda c, f: poke(c, MEADOW, x=None, y=None), r"^No point chosen: click the photo"),
        (lambda c, f: poke(c, MEADOW, x=5000.0, y=3.0), r"outside the 1024x819 photo"),
        (lambda c, f: poke(c, MEADOW, motion=f["corrupt"]), r"is not a safetensors spectral volume"),
        (lambda c, f: from_video(c, None), r"^No clip: upload a short video"),
        (lambda c, f: from_video(c, f["one_frame"]), r"too short: it has 1 frame \(0\.0 s at 30 fps\)"),
        (lambda c, f: from_video(c, f["still"]), r"is a still image, not a video"),
    ],
    ids=[
        "no-photo",
        "text-as-png",
        "huge-photo",
        "too-many-frames",
        "zero-steps",
        "unknown-renderer",
        "poke-without-point",
        "point-off-photo",
        "corrupt-motion",
        "no-clip",
        "one-frame-clip",
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
    for _ in range(2):
        with pytest.raises(AppError):
            loop(client, photo=bad_files["text"])
    video, _ = loop(client, size=64, frames=30)
    assert probe_video(video_path(video)).width == 64


# --------------------------------------------------------------------------------------------- the glue


def test_working_size_keeps_the_aspect_ratio_with_even_sides():
    assert logic.working_size(1024, 819, 512) == (512, 410)
    assert logic.working_size(819, 1024, 128) == (102, 128)
    assert logic.working_size(300, 200, 600) == (600, 400)  # enlarged when asked


def test_points_map_between_grids_pixel_centre_to_pixel_centre():
    x, y = logic.to_image_pixels(0.0, 9.0, (10, 10), (20, 40))
    assert (x, y) == (0.5, 37.5)  # pixel 0 of 10 covers target pixels 0-1, pixel 9 rows 36-39
    assert logic.to_image_pixels(*logic.to_image_pixels(3.2, 7.7, (64, 48), (1024, 819)), (1024, 819), (64, 48)) == (
        pytest.approx(3.2),
        pytest.approx(7.7),
    )


def test_force_vector_points_where_the_direction_says_image_y_down():
    assert logic.force_vector(0, 10) == pytest.approx((10.0, 0.0))
    assert logic.force_vector(90, 10) == pytest.approx((0.0, -10.0), abs=1e-9)  # up
    assert logic.force_vector(225, 2**0.5) == pytest.approx((-1.0, 1.0))  # down-left


def test_the_marker_is_drawn_around_the_point_and_leaves_the_rest():
    image = np.full((100, 160, 3), 128, np.uint8)
    marked = logic.draw_poke_marker(image, 40, 30, force=(10.0, 0.0))
    changed = np.argwhere(np.any(marked != image, axis=2))
    assert changed[:, 0].min() >= 30 - 10 and changed[:, 0].max() <= 30 + 10  # rows near y = 30
    assert changed[:, 1].min() >= 40 - 10 and changed[:, 1].max() > 40 + 10  # the arrow points right
    assert np.array_equal(image, np.full((100, 160, 3), 128, np.uint8))  # a copy was drawn on


def test_volumes_handed_out_are_at_most_the_model_scale_with_displacements_scaled():
    spectrum = torch.zeros(3, 4, 240, 320)
    spectrum[:, 0], spectrum[:, 1] = 10.0, 5.0  # x.real, y.real in pixels of the 320x240 grid
    stored = logic.storable(SpectralVolume(spectrum, 30, 15.0))
    assert stored.size == (192, 256) and (stored.num_frames, stored.fps) == (30, 15.0)
    assert float(stored.spectrum[0, 0].mean()) == pytest.approx(8.0) and float(stored.spectrum[0, 1].mean()) == 4.0
    small = SpectralVolume(spectrum[..., :100, :160], 30, 15.0)
    assert logic.storable(small) is small


def test_the_app_defaults_are_the_pipeline_defaults(app_module):
    signature = inspect.signature(GIDPipeline.__call__).parameters
    assert app_module.DEFAULT_STEPS == signature["num_inference_steps"].default
    assert app_module.DEFAULT_FRAMES == signature["num_frames"].default


def test_the_guidance_default_is_the_checkpoints(tmp_path):
    """The slider starts at the checkpoint's tuned default_guidance_scale; the paper's when it does not say."""
    shipped = json.loads((DEFAULT_CHECKPOINT / "model_index.json").read_text())["default_guidance_scale"]
    assert logic.MotionEngine(DEFAULT_CHECKPOINT).default_guidance == shipped
    (tmp_path / "model_index.json").write_text("{}")
    assert logic.MotionEngine(tmp_path).default_guidance == PAPER_GUIDANCE_SCALE
    assert logic.MotionEngine("org/some-repo").default_guidance == PAPER_GUIDANCE_SCALE


def test_engine_cache_keeps_the_most_recently_used_volumes():
    engine = logic.MotionEngine("unused", cache_size=2)
    photos = [np.full((16, 16, 3), value, np.uint8) for value in range(3)]
    settings = logic.PredictionSettings(seed=0, steps=1, guidance=1.0)

    def compute(image, settings):
        return SpectralVolume(torch.full((2, 4, 16, 16), float(image[0, 0, 0])), 4, 4.0)

    for photo in [*photos, photos[2], photos[0]]:
        engine.predict(photo, settings, compute)
    assert engine.predictions == 4  # photos 0, 1, 2, then 0 again after it was evicted; 2 was a hit
    assert engine.lookup(photos[1], settings) is None
    assert float(engine.lookup(photos[2], settings).spectrum[0, 0, 0, 0]) == 2.0
    assert engine.lookup(photos[2], logic.PredictionSettings(seed=1, steps=1, guidance=1.0)) is None


def test_prediction_settings_and_requests_refuse_out_of_range_values():
    with pytest.raises(GIDInputError, match="steps must be between 1 and 100"):
        logic.PredictionSettings(seed=0, steps=101, guidance=1.0)
    with pytest.raises(GIDInputError, match=r"damping must be between 0 and 0\.95"):
        logic.PokeRequest(x=1.0, y=1.0, damping=1.0)
    with pytest.raises(GIDInputError, match="duration must be between 1 and 20"):
        logic.ClipRequest(duration=60.0)


def test_output_folder_sweeps_files_older_than_its_max_age(tmp_path):
    folder = logic.OutputFolder(tmp_path, max_age=60.0)
    old, fresh = tmp_path / "old.mp4", tmp_path / "fresh.mp4"
    old.write_bytes(b"x")
    fresh.write_bytes(b"x")
    os.utime(old, (time.time() - 120, time.time() - 120))
    path = folder.new_path("loop", ".mp4")
    assert path.parent == tmp_path and path.suffix == ".mp4" and not path.exists()
    assert not old.exists() and fresh.exists()
