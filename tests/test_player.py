"""The player: playback controls and their timing, loops and pokes rendered from a spectral volume without any
diffusion model, and the pipeline rendering through it."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from test_pipeline import get_dummy_components, get_dummy_inputs

from gid_pipeline import GIDInputError, GIDPipeline, GIDPipelineOutput
from gid_pipeline.player import LoopTiming, PlaybackControls, Player, loop_timing, played
from gid_pipeline.rendering.loop import render_loop
from gid_pipeline.spectral.controls import band_limited, masked, scaled
from gid_pipeline.spectral.transform import resize_spectrum, spectrum_to_motion
from gid_pipeline.spectral.volume import SpectralVolume

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def pipe() -> GIDPipeline:
    pipeline = GIDPipeline(**get_dummy_components())
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture
def volume(pipe) -> SpectralVolume:
    """A sampled 48x32 volume with a 16-frame period (so speed 2 still holds its 4 frequencies)."""
    return pipe(**get_dummy_inputs(output_type="spectrum", num_frames=16)).spectral_volumes[0]


def make_volume(num_frequencies: int = 6, num_frames: int = 30, fps: float = 30.0) -> SpectralVolume:
    spectrum = torch.randn(num_frequencies, 4, 24, 40, generator=torch.Generator().manual_seed(0))
    return SpectralVolume(spectrum * 0.5, num_frames, fps)


# ---------------------------------------------------------------------------------------------- timing


def test_speed_scales_the_period_and_keeps_the_spectrum():
    volume = make_volume()
    for speed, frames in ((2.0, 15), (0.5, 60), (3.0, 10), (1.0, 30)):
        timing = loop_timing(volume, PlaybackControls(speed=speed))
        assert (timing.frames, timing.fps) == (frames, pytest.approx(volume.fps))
        assert timing.period_seconds == pytest.approx(volume.period_seconds / speed)
        out = played(volume, PlaybackControls(speed=speed))
        assert out.spectrum is volume.spectrum  # shared, unchanged
        torch.testing.assert_close(out.frequencies_hz, volume.frequencies_hz * speed)
    # Frame n of the loop at speed 2 is frame 2n of the original loop, and it still wraps around seamlessly.
    fast = played(volume, PlaybackControls(speed=2.0))
    motion = spectrum_to_motion(volume.spectrum, 30)
    torch.testing.assert_close(spectrum_to_motion(fast.spectrum, 15), motion[::2], atol=1e-4, rtol=0)
    # Another frame rate keeps the period in seconds; only the frame count follows.
    other = loop_timing(volume, PlaybackControls(speed=2.0, fps=60.0))
    assert (other.frames, other.fps) == (30, 60.0) and other.period_seconds == pytest.approx(0.5)


def test_timing_rounds_to_whole_frames_raises_what_aliases_and_repeats_to_a_length():
    volume = make_volume(num_frequencies=6)  # needs 10 frames a period
    assert loop_timing(volume) == LoopTiming(1.0, 30, 30.0, 1)
    odd = loop_timing(volume, PlaybackControls(speed=0.7))
    assert odd.frames == 43 and odd.fps == pytest.approx(43 * 0.7) and odd.period_seconds == pytest.approx(1 / 0.7)
    fast = loop_timing(volume, PlaybackControls(speed=4.0))  # 7.5 frames would alias: 10, at a higher rate
    assert (fast.frames, fast.fps) == (10, pytest.approx(40.0))
    long = loop_timing(volume, PlaybackControls(length_seconds=7.4))
    assert long.repeats == 7 and long.duration_seconds == pytest.approx(7.0)
    stretched = loop_timing(volume, PlaybackControls(num_frames=60))  # more frames, the same period
    assert (stretched.frames, stretched.fps, stretched.period_seconds) == (60, 60.0, pytest.approx(1.0))
    explicit = loop_timing(volume, PlaybackControls(num_frames=45, fps=30.0))
    assert explicit.period_seconds == pytest.approx(1.5)
    assert "loop x 7 = 7 s" in long.describe()


def test_played_composes_band_region_and_amplitude_on_the_loops_time_base():
    volume = make_volume()
    region = torch.rand(24, 40, generator=torch.Generator().manual_seed(5))
    controls = PlaybackControls(speed=2.0, amplitude=0.5, frequency_band=(1.0, 3.0), region_mask=region)
    out = played(volume, controls)
    expected = scaled(masked(band_limited(volume, 1.0, 3.0), region), 0.5)
    torch.testing.assert_close(out.spectrum, expected.spectrum, atol=0, rtol=0)
    assert (out.num_frames, out.fps) == (15, pytest.approx(30.0))
    assert torch.equal(played(volume, PlaybackControls()).spectrum, volume.spectrum)


@pytest.mark.parametrize(
    ("controls", "message"),
    [({"speed": 0.0}, "speed must be between"), ({"speed": float("nan")}, "speed must be a finite"),
     ({"speed": True}, "speed must be a finite"), ({"amplitude": -1.0}, "amplitude must be between 0 and"),
     ({"fps": 0.0}, "fps must be greater than 0"), ({"num_frames": 2.5}, "whole number"),
     ({"length_seconds": -1.0}, "length_seconds"), ({"frequency_band": (1.0,)}, "pair")],
)  # fmt: skip
def test_bad_controls_are_named(controls, message):
    with pytest.raises(GIDInputError, match=message):
        PlaybackControls(**controls)


def test_timing_limits_name_themselves():
    with pytest.raises(GIDInputError, match="MAX_NUM_FRAMES = 1000"):
        loop_timing(make_volume(), PlaybackControls(speed=0.01))
    with pytest.raises(GIDInputError, match="at least 10 to hold 6 frequencies"):
        loop_timing(make_volume(), PlaybackControls(num_frames=5))


# ---------------------------------------------------------------------------------------------- loops


@pytest.mark.parametrize("output_type", ["np", "pt", "pil"])
def test_render_output_types_and_return_dict(pipe, volume, output_type):
    image = get_dummy_inputs()["image"]
    out = pipe.player.render(image, volume, output_type=output_type)
    assert isinstance(out, GIDPipelineOutput)
    (played_volume,) = out.spectral_volumes
    assert isinstance(played_volume, SpectralVolume) and (played_volume.num_frames, played_volume.fps) == (16, 30.0)
    torch.testing.assert_close(played_volume.spectrum, volume.spectrum, atol=0, rtol=0)
    if output_type == "np":
        assert out.frames.shape == (1, 16, 32, 48, 3) and out.frames.dtype == np.float32
        np.testing.assert_allclose(out.frames[0, 0], image.permute(1, 2, 0).numpy(), atol=1e-6)
    elif output_type == "pt":
        assert out.frames.shape == (1, 16, 3, 32, 48) and out.frames.dtype == torch.float32
        # The same frames as rendering the volume by hand with the pipeline's renderer.
        expected = render_loop(image, volume.spectrum, 16, renderer=pipe.renderer)
        torch.testing.assert_close(out.frames[0], expected)
    else:
        assert len(out.frames) == 1 and len(out.frames[0]) == 16
        assert all(isinstance(frame, PIL.Image.Image) and frame.size == (48, 32) for frame in out.frames[0])
    frames, volumes = pipe.player.render(image, volume, output_type=output_type, return_dict=False)
    assert len(volumes) == 1 and len(frames[0]) == 16
    with pytest.raises(GIDInputError, match="output_type"):
        pipe.player.render(image, volume, output_type="spectrum")


def test_iter_loop_frames_streams_what_render_returns(pipe, volume):
    image = get_dummy_inputs()["image"]
    controls = PlaybackControls(amplitude=3.0, frequency_band=(1.8, None), num_frames=20)
    chunks = list(pipe.player.iter_loop_frames(image, volume, controls))
    assert all(chunk.ndim == 4 and chunk.shape[1:] == (3, 32, 48) for chunk in chunks)
    out = pipe.player.render(image, volume, controls, output_type="pt")
    torch.testing.assert_close(torch.cat(chunks), out.frames[0])
    (played_volume,) = out.spectral_volumes
    # 20 frames over the volume's own period (16 frames at 30 fps): the frame rate follows.
    assert played_volume.num_frames == 20 and played_volume.fps == pytest.approx(20 / (16 / 30))
    assert played_volume.period_seconds == pytest.approx(volume.period_seconds)
    expected = 3.0 * volume.spectrum * (volume.frequencies_hz >= 1.8).float().view(-1, 1, 1, 1)
    torch.testing.assert_close(played_volume.spectrum, expected)


def test_learned_renderer_false_renders_with_pixel_splatting(pipe, volume):
    """The switch gives the frames of a player without a renderer; the default uses the renderer."""
    image = get_dummy_inputs()["image"]
    controls = PlaybackControls(amplitude=3.0, num_frames=20)
    pixel = torch.cat(list(pipe.player.iter_loop_frames(image, volume, controls, learned_renderer=False)))
    torch.testing.assert_close(pixel, torch.cat(list(Player().iter_loop_frames(image, volume, controls))))
    learned = torch.cat(list(pipe.player.iter_loop_frames(image, volume, controls)))
    assert not torch.allclose(learned, pixel)


def test_speed_two_halves_the_loop_at_the_same_fps_and_stays_seamless(pipe, volume):
    image = get_dummy_inputs()["image"]
    normal = pipe.player.render(image, volume, PlaybackControls(amplitude=5.0), output_type="pt")
    fast = pipe.player.render(image, volume, PlaybackControls(amplitude=5.0, speed=2.0), output_type="pt")
    (played_volume,) = fast.spectral_volumes
    assert (played_volume.num_frames, played_volume.fps) == (8, pytest.approx(volume.fps))
    assert fast.frames.shape == (1, 8, 3, 32, 48)
    # The fast loop moves as every second frame of the normal one (the frames differ a little: the splatting
    # metric averages |F_t| over the frames of the loop) ...
    normal_motion = spectrum_to_motion(normal.spectral_volumes[0].spectrum, 16)
    torch.testing.assert_close(spectrum_to_motion(played_volume.spectrum, 8), normal_motion[::2], atol=1e-4, rtol=0)
    assert float((fast.frames[0, 1:] - image).abs().amax()) > 0.05
    # ... and its frame num_frames would be frame 0 again (the input image).
    ends = spectrum_to_motion(played_volume.spectrum, 8, frame_indices=torch.tensor([0.0, 8.0]))
    torch.testing.assert_close(ends[1], ends[0], atol=1e-4, rtol=0)
    torch.testing.assert_close(fast.frames[0, 0], image, atol=1e-6, rtol=0)


def test_controls_that_remove_all_motion_give_the_still_image(pipe, volume):
    image = get_dummy_inputs()["image"]
    for controls in (PlaybackControls(amplitude=0.0), PlaybackControls(frequency_band=(0.5, 1.5)),
                     PlaybackControls(region_mask=torch.zeros(16, 24))):  # fmt: skip
        frames = pipe.player.render(image, volume, controls, output_type="pt").frames[0]
        assert torch.equal(frames, image.expand_as(frames)), controls
    moving = pipe.player.render(image, volume, PlaybackControls(amplitude=5.0), output_type="pt").frames[0]
    assert float((moving - image).abs().max()) > 0.05


def test_a_masked_region_stays_still():
    """Pixel splatting (no learned renderer): columns far from the moving half keep the input's pixels."""
    pipe = GIDPipeline(**get_dummy_components(renderer=False))
    pipe.set_progress_bar_config(disable=True)
    volume = pipe(**get_dummy_inputs(output_type="spectrum", num_frames=16)).spectral_volumes[0]
    image = get_dummy_inputs()["image"]
    mask = np.zeros((32, 48), dtype=np.float32)
    mask[:, 24:] = 1.0
    amplitude = 4.0 / float(volume.spectrum.abs().amax())  # moves by a few pixels
    out = Player().render(image, volume, PlaybackControls(amplitude=amplitude, region_mask=mask))
    frames = out.frames[0]  # (16, 32, 48, 3)
    largest = float(spectrum_to_motion(out.spectral_volumes[0].spectrum, 16).norm(dim=1).max())
    assert 0.5 < largest < 10.0
    still = image.permute(1, 2, 0).numpy()[:, :12]
    np.testing.assert_allclose(frames[:, :, :12], np.broadcast_to(still, frames[:, :, :12].shape), atol=1e-6)
    assert np.abs(frames[:, :, 24:] - image.permute(1, 2, 0).numpy()[:, 24:]).max() > 0.05


def test_render_takes_images_of_any_form_and_fits_the_volume(pipe, volume):
    array = (np.random.default_rng(2).random((64, 96, 3)) * 255).astype(np.uint8)  # twice the volume's size
    out = pipe.player.render(PIL.Image.fromarray(array), volume, output_type="np")
    assert out.frames.shape == (1, 16, 64, 96, 3)
    (played_volume,) = out.spectral_volumes
    assert played_volume.size == (64, 96)
    torch.testing.assert_close(played_volume.spectrum, resize_spectrum(volume.spectrum, (64, 96)))
    np.testing.assert_allclose(out.frames[0, 0], array / 255.0, atol=1e-6)
    assert pipe.player.render(array, volume, output_type="pt").frames.shape == (1, 16, 3, 64, 96)


@pytest.mark.parametrize(
    ("image", "controls", "message"),
    [(torch.rand(3, 32, 32), {}, "aspect ratios differ"), (torch.rand(2, 3, 32, 48), {}, "one image"),
     (torch.rand(3, 32, 48), {"speed": 0.01}, "MAX_NUM_FRAMES = 1000"),
     (torch.rand(3, 32, 48), {"num_frames": 3}, "at least 6"),
     (torch.rand(3, 32, 48), {"num_frames": 10**6}, "num_frames must be between 2 and 1000"),
     (torch.rand(3, 32, 48), {"frequency_band": (2.0, 1.0)}, "reversed"),
     (torch.rand(3, 32, 48), {"region_mask": torch.ones(1, 32, 48)}, "2-D")],
)  # fmt: skip
def test_render_bad_input(pipe, volume, image, controls, message):
    with pytest.raises(GIDInputError, match=message):
        pipe.player.render(image, volume, PlaybackControls(**controls))
    with pytest.raises(GIDInputError, match=message):
        pipe.player.iter_loop_frames(image, volume, PlaybackControls(**controls))  # checked before any frame
    with pytest.raises(GIDInputError, match="SpectralVolume"):
        pipe.player.render(get_dummy_inputs()["image"], volume.spectrum)


def test_the_pipeline_renders_through_the_player_and_returns_volumes_as_predicted(pipe):
    out = pipe(**get_dummy_inputs(playback=PlaybackControls(amplitude=2.0, speed=2.0)))
    again = pipe(**get_dummy_inputs(output_type="spectrum"))
    torch.testing.assert_close(out.spectral_volumes[0].spectrum, again.spectral_volumes[0].spectrum)  # unscaled
    expected = pipe.player.render(get_dummy_inputs()["image"], again.spectral_volumes[0],
                                  PlaybackControls(amplitude=2.0, speed=2.0), output_type="pt")  # fmt: skip
    torch.testing.assert_close(out.frames, expected.frames)
    still = pipe(**get_dummy_inputs(playback=PlaybackControls(amplitude=0.0))).frames[0]
    torch.testing.assert_close(still, get_dummy_inputs()["image"].expand_as(still), atol=1e-5, rtol=0)


def test_player_from_a_checkpoint_reads_only_its_renderer(pipe, tmp_path):
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = Player.from_pretrained(tmp_path / "pipe")
    assert isinstance(loaded.renderer, type(pipe.renderer))
    for name, tensor in pipe.renderer.state_dict().items():
        torch.testing.assert_close(loaded.renderer.state_dict()[name], tensor)
    assert Player.from_pretrained(None).renderer is None
    with pytest.raises(GIDInputError, match=r"model_index\.json"):
        Player.from_pretrained(tmp_path)


# ---------------------------------------------------------------------------------------------- pokes


def test_poke_with_zero_force_is_the_still_image_and_a_push_moves(volume):
    image = get_dummy_inputs()["image"]
    player = Player()
    still = player.poke(image, volume, (24.0, 16.0), (0.0, 0.0), num_frames=12, output_type="pt")
    assert still.frames.shape == (1, 12, 3, 32, 48)
    assert torch.equal(still.frames[0], image.expand(12, -1, -1, -1))
    assert still.spectral_volumes[0].size == (32, 48)
    pushed = player.poke(image, volume, (24.0, 16.0), (6.0, -2.0), num_frames=12, output_type="np", hold=0.1)
    assert pushed.frames.shape == (1, 12, 32, 48, 3)
    assert np.abs(pushed.frames[0] - image.permute(1, 2, 0).numpy()).max() > 0.05
    chunks = list(player.iter_poke_frames(image, volume, (24.0, 16.0), (6.0, -2.0), num_frames=12, hold=0.1))
    np.testing.assert_allclose(torch.cat(chunks).permute(0, 2, 3, 1).numpy(), pushed.frames[0], atol=1e-6)
    frames, volumes = player.poke(image, volume, (1, 1), (1, 1), num_frames=3, output_type="pil", return_dict=False)
    assert len(frames[0]) == 3 and isinstance(frames[0][0], PIL.Image.Image) and len(volumes) == 1


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"point": (100.0, 5.0)}, "outside"), ({"point": 5.0}, r"point must be a pair"),
     ({"force": (1.0, float("nan"))}, r"force\[1\] must be a finite"),
     ({"num_frames": 0}, "num_frames must be between 1 and 1000"),
     ({"num_frames": 10**6}, "num_frames must be between 1 and 1000"), ({"damping": 1.5}, "damping"),
     ({"fps": 0.0}, "fps must be greater than 0"), ({"hold": -1.0}, "hold must be >= 0|start and hold")],
)  # fmt: skip
def test_poke_bad_input(volume, arguments, message):
    call = {"point": (5.0, 5.0), "force": (1.0, 0.0), **arguments}
    with pytest.raises(GIDInputError, match=message):
        Player().poke(get_dummy_inputs()["image"], volume, **call)
    with pytest.raises(GIDInputError, match=message):
        Player().iter_poke_frames(get_dummy_inputs()["image"], volume, **call)
