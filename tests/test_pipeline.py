"""GIDPipeline: diffusers pipeline behaviour (as diffusers' PipelineTesterMixin checks it) on tiny random models,
the loop properties, and the shipped checkpoint."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler
from pipeline_mixin import PipelineTesterMixin

from gid_pipeline import DEFAULT_CHECKPOINT, GIDInputError, GIDPipeline, GIDPipelineOutput
from gid_pipeline.models import FrequencyUNet, SplatRenderer, make_spectral_vae
from gid_pipeline.models.spectral_vae import decode_latents
from gid_pipeline.player import PlaybackControls
from gid_pipeline.sizing import model_resolution, output_resolution
from gid_pipeline.spectral.transform import resize_spectrum, spectrum_to_motion
from gid_pipeline.spectral.volume import SpectralVolume
from gid_pipeline.training.train_unet import make_noise_scheduler

NUM_FREQUENCIES = 4
NUM_FRAMES = 8  # the fewest a 4-frequency loop allows: 2 (K - 1) = 6, rounded up
MODEL_SIZE = (32, 48)  # (height, width) the tiny models "were trained at"
STEPS = 2

pytestmark = pytest.mark.usefixtures("one_thread")


class TestGIDPipelineConventions(PipelineTesterMixin):
    """diffusers' conventions (tests/pipeline_mixin.py) on the tiny random GIDPipeline."""

    pipeline_class = GIDPipeline
    batch_atol = 0.02  # frames: the learned renderer can turn last-bit differences into a level at a stray pixel

    def get_dummy_components(self) -> dict:
        return get_dummy_components()

    def get_dummy_inputs(self, seed: int = 0, **overrides) -> dict:
        return get_dummy_inputs(seed, **overrides)


def get_dummy_components(
    prediction_type: str = "v_prediction", renderer: bool = True, motion_mask: bool = False
) -> dict:
    """Tiny random vae, unet (K = 4, with frequency attention and normalisation statistics), scheduler, renderer.

    The VAE and the U-Net each downsample by 2, so sampling sides are multiples of 4. motion_mask: a U-Net that takes
    motion masks, its adapters random (a new one adds nothing), so that a mask changes the sample.
    """
    torch.manual_seed(0)
    unet = FrequencyUNet(
        num_frequencies=NUM_FREQUENCIES,
        latent_channels=4,
        image_embedding_channels=4,
        image_encoder_channels=(8, 8),
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=8,
        norm_num_groups=4,
        frequency_attention_levels=(0, 1),
        frequency_attention_head_dim=8,
        normalization_scales=(2.0, 1.0, 0.5, 0.25),
        motion_mask=motion_mask,
    )
    # A random null embedding, so that the unconditional branch differs from the conditional one.
    torch.nn.init.normal_(unet.null_image_embedding)
    for adapter in unet.condition_adapters:
        torch.nn.init.normal_(adapter.conv2.weight, std=0.1)
    vae = make_spectral_vae(
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        norm_num_groups=4,
        scaling_factor=0.8,
    )
    training = make_noise_scheduler(prediction_type)
    scheduler = DPMSolverMultistepScheduler.from_config(training.config, algorithm_type="dpmsolver++")
    return {
        "vae": vae.eval(),
        "unet": unet.eval(),
        "scheduler": scheduler,
        "renderer": SplatRenderer(scale_channels=(4, 8)).eval() if renderer else None,
        "model_size": MODEL_SIZE,
    }


def get_dummy_inputs(seed: int = 0, **overrides) -> dict:
    """A 48x32 float image (rendered at its own size) and settings for a fast call."""
    image = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(123))
    inputs = {
        "image": image,
        "num_inference_steps": STEPS,
        "num_frames": NUM_FRAMES,
        "generator": torch.Generator().manual_seed(seed),
        "output_type": "pt",
    }
    return {**inputs, **overrides}


@pytest.fixture
def pipe() -> GIDPipeline:
    pipeline = GIDPipeline(**get_dummy_components())
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def test_size_rules():
    assert model_resolution(160, 256, 32) == (160, 256)
    assert model_resolution(320, 512, 32) == (160, 256)  # same aspect, native pixel count
    assert model_resolution(1000, 1000, 32) == (192, 192)
    assert model_resolution(1080, 1920, 32) == (160, 256)  # 16:9 rounds to the native 1.6
    assert model_resolution(1000, 3000, 32) == (128, 352)
    assert model_resolution(16, 4000, 32) == (32, 1280)  # never below one multiple, pixel count kept
    assert model_resolution(4000, 16, 32) == (1280, 32)
    assert output_resolution(32, 48) == (32, 48)
    assert output_resolution(1080, 1920) == (288, 512)  # long side capped, even
    assert output_resolution(333, 333, max_long_side=1000) == (332, 332)
    assert output_resolution(100, 200, height=50) == (50, 100)
    assert output_resolution(100, 200, width=64) == (32, 64)
    with pytest.raises(GIDInputError, match="even"):
        output_resolution(100, 200, height=51, width=100)


@pytest.mark.parametrize("output_type", ["pil", "np", "pt", "spectrum"])
def test_output_types(pipe, output_type):
    out = pipe(**get_dummy_inputs(output_type=output_type))
    assert isinstance(out, GIDPipelineOutput)
    (volume,) = out.spectral_volumes
    assert isinstance(volume, SpectralVolume)
    assert volume.spectrum.shape == (NUM_FREQUENCIES, 4, 32, 48)
    assert (volume.num_frames, volume.fps) == (NUM_FRAMES, 30.0)
    if output_type == "pil":
        assert len(out.frames) == 1 and len(out.frames[0]) == NUM_FRAMES
        assert all(isinstance(frame, PIL.Image.Image) and frame.size == (48, 32) for frame in out.frames[0])
    elif output_type == "np":
        assert out.frames.shape == (1, NUM_FRAMES, 32, 48, 3) and out.frames.dtype == np.float32
    elif output_type == "pt":
        assert out.frames.shape == (1, NUM_FRAMES, 3, 32, 48)
        assert 0.0 <= float(out.frames.min()) and float(out.frames.max()) <= 1.0
    else:
        assert out.frames is None


def test_batch_of_images_and_output_size(pipe):
    images = torch.rand(2, 3, 64, 96)
    out = pipe(**get_dummy_inputs(image=images, height=32))  # width follows the aspect ratio
    assert out.frames.shape == (2, NUM_FRAMES, 3, 32, 48)
    assert [volume.size for volume in out.spectral_volumes] == [(32, 48), (32, 48)]
    assert not torch.equal(out.spectral_volumes[0].spectrum, out.spectral_volumes[1].spectrum)
    array = (np.random.default_rng(0).random((40, 60, 3)) * 255).astype(np.uint8)
    listed = pipe(**get_dummy_inputs(image=[array, PIL.Image.fromarray(array)]))
    assert listed.frames.shape == (2, NUM_FRAMES, 3, 40, 60)


def test_predict_spectral_volume_matches_call(pipe):
    volumes = pipe.predict_spectral_volume(**{k: v for k, v in get_dummy_inputs().items() if k != "output_type"})
    out = pipe(**get_dummy_inputs())
    assert torch.equal(volumes[0].spectrum, out.spectral_volumes[0].spectrum)
    with pytest.raises(GIDInputError, match="output_type"):
        pipe.predict_spectral_volume(**get_dummy_inputs())


def test_playback_amplitude_plays_the_volume_scaled_and_returns_it_as_predicted(pipe):
    base = pipe(**get_dummy_inputs(output_type="pt"))
    double = pipe(**get_dummy_inputs(output_type="pt", playback=PlaybackControls(amplitude=2.0)))
    torch.testing.assert_close(double.spectral_volumes[0].spectrum, base.spectral_volumes[0].spectrum)
    assert not torch.allclose(double.frames, base.frames)
    still = pipe(**get_dummy_inputs(playback=PlaybackControls(amplitude=0.0))).frames[0]
    torch.testing.assert_close(still, get_dummy_inputs()["image"].expand_as(still), atol=1e-5, rtol=0)


def test_save_load_keeps_the_renderer_model_size_and_statistics(pipe, tmp_path):
    pipe.save_pretrained(tmp_path)
    loaded = GIDPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.renderer, SplatRenderer)
    assert tuple(loaded.config.model_size) == MODEL_SIZE
    assert list(loaded.unet.config.normalization_scales) == list(pipe.unet.config.normalization_scales)
    assert type(loaded.scheduler) is DPMSolverMultistepScheduler


def test_without_renderer_and_it_stays_none(tmp_path):
    pipe = GIDPipeline(**get_dummy_components(renderer=False))
    pipe.set_progress_bar_config(disable=True)
    assert pipe.renderer is None
    out = pipe(**get_dummy_inputs())
    assert out.frames.shape == (1, NUM_FRAMES, 3, 32, 48)
    pipe.save_pretrained(tmp_path)
    loaded = GIDPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.renderer is None
    assert torch.equal(loaded(**get_dummy_inputs()).frames, out.frames)


@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon"])
def test_ddim_and_dpm_solver(prediction_type):
    components = get_dummy_components(prediction_type)
    training_config = make_noise_scheduler(prediction_type).config
    results = {}
    for name, scheduler in (
        ("dpm", DPMSolverMultistepScheduler.from_config(training_config, algorithm_type="dpmsolver++")),
        ("ddim", DDIMScheduler.from_config(training_config, clip_sample=False)),
    ):
        pipe = GIDPipeline(**{**components, "scheduler": scheduler})
        pipe.set_progress_bar_config(disable=True)
        spectrum = pipe(**get_dummy_inputs(output_type="spectrum", num_inference_steps=4)).spectral_volumes[0]
        assert torch.isfinite(spectrum.spectrum).all()
        results[name] = spectrum.spectrum
    # Same model and noise, different samplers: close-ish but not identical trajectories.
    assert not torch.equal(results["dpm"], results["ddim"])


def test_guidance_scale_one_skips_the_unconditional_pass(pipe):
    batches = []
    hook = pipe.unet.register_forward_pre_hook(lambda module, args: batches.append(args[0].shape[0]))
    guided = pipe(**get_dummy_inputs(guidance_scale=3.0, output_type="spectrum"))
    assert batches == [2] * STEPS
    batches.clear()
    plain = pipe(**get_dummy_inputs(guidance_scale=1.0, output_type="spectrum"))
    assert batches == [1] * STEPS
    hook.remove()
    # Scale 1 is the conditional model alone: breaking the null condition cannot change it.
    with torch.no_grad():
        pipe.unet.null_image_embedding.fill_(float("nan"))
    again = pipe(**get_dummy_inputs(guidance_scale=1.0, output_type="spectrum"))
    assert torch.equal(plain.spectral_volumes[0].spectrum, again.spectral_volumes[0].spectrum)
    assert not torch.allclose(plain.spectral_volumes[0].spectrum, guided.spectral_volumes[0].spectrum)


def test_default_guidance_scale_comes_from_the_checkpoint(tmp_path):
    """guidance_scale=None uses the pipeline config's default_guidance_scale, which save/load keeps."""
    pipe = GIDPipeline(**get_dummy_components(), default_guidance_scale=6.0)
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path)
    loaded = GIDPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.default_guidance_scale == 6.0
    implicit = loaded(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    explicit = loaded(**get_dummy_inputs(output_type="spectrum", guidance_scale=6.0)).spectral_volumes[0].spectrum
    paper = loaded(**get_dummy_inputs(output_type="spectrum", guidance_scale=2.75)).spectral_volumes[0].spectrum
    assert torch.equal(implicit, explicit) and not torch.equal(implicit, paper)
    assert GIDPipeline(**get_dummy_components()).config.default_guidance_scale == 2.75


def test_motion_calibration_scales_every_displacement_and_is_saved(tmp_path):
    """A checkpoint's motion_calibration multiplies the sampled volume exactly (same seed, same noise) and
    save/load keeps it; values outside its bounds are refused."""
    plain = GIDPipeline(**get_dummy_components())
    plain.set_progress_bar_config(disable=True)
    calibrated = GIDPipeline(**get_dummy_components(), motion_calibration=2.5)
    calibrated.save_pretrained(tmp_path)
    loaded = GIDPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.motion_calibration == 2.5 and plain.config.motion_calibration == 1.0
    base = plain(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    scaled = loaded(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    torch.testing.assert_close(scaled, 2.5 * base, rtol=1e-5, atol=1e-7)
    for bad in (0.0, -1.0, 1e3, float("nan")):
        with pytest.raises(GIDInputError, match="motion_calibration"):
            GIDPipeline(**get_dummy_components(), motion_calibration=bad)


def test_callback_on_step_end_sees_and_replaces_latents(pipe):
    seen = []

    def callback(pipeline, step, timestep, tensors):
        seen.append((step, int(timestep), tuple(tensors)))
        assert tensors["latents"].shape == (1, NUM_FREQUENCIES, 4, 16, 24)
        if step == pipeline.num_timesteps - 1:
            return {"latents": torch.zeros_like(tensors["latents"])}
        return {}

    out = pipe(**get_dummy_inputs(output_type="spectrum", callback_on_step_end=callback))
    assert [entry[0] for entry in seen] == list(range(STEPS)) and all(entry[2] == ("latents",) for entry in seen)
    # The replaced final latents are what gets decoded.
    decoded = pipe.unet.normalizer.denormalize(decode_latents(pipe.vae, torch.zeros(1, NUM_FREQUENCIES, 4, 16, 24)))
    torch.testing.assert_close(out.spectral_volumes[0].spectrum, decoded[0])
    with pytest.raises(GIDInputError, match="callback_on_step_end_tensor_inputs"):
        pipe(**get_dummy_inputs(callback_on_step_end=callback, callback_on_step_end_tensor_inputs=["noise"]))


def test_loop_starts_at_the_input_and_is_periodic(pipe):
    array = (np.random.default_rng(1).random((32, 48, 3)) * 255).astype(np.uint8)
    out = pipe(**get_dummy_inputs(image=PIL.Image.fromarray(array), output_type="pil",
                                  playback=PlaybackControls(amplitude=20.0)))  # fmt: skip
    frames = [np.asarray(frame) for frame in out.frames[0]]
    np.testing.assert_array_equal(frames[0], array)  # pinned F_0: frame 0 is the input, exactly
    assert any(np.abs(frame.astype(int) - array).max() > 20 for frame in frames[1:])  # and the rest move
    spectrum = out.spectral_volumes[0].spectrum
    ends = spectrum_to_motion(spectrum, NUM_FRAMES, frame_indices=torch.tensor([0.0, NUM_FRAMES, 2.5 * NUM_FRAMES]))
    torch.testing.assert_close(ends[1], ends[0], atol=1e-4, rtol=0)
    assert float(ends[0].abs().max()) == 0.0
    middle = spectrum_to_motion(spectrum, NUM_FRAMES, frame_indices=torch.tensor([0.5 * NUM_FRAMES]))
    torch.testing.assert_close(ends[2], middle[0], atol=1e-4, rtol=0)


def test_spectrum_lives_on_the_output_grid(pipe):
    """The volume at the output size is the model-resolution volume resized, displacements scaled."""
    captured = {}

    def callback(pipeline, step, timestep, tensors):
        captured["latents"] = tensors["latents"]
        return {}

    out = pipe(**get_dummy_inputs(height=64, output_type="spectrum", callback_on_step_end=callback))
    assert out.spectral_volumes[0].size == (64, 96)
    model = pipe.unet.normalizer.denormalize(decode_latents(pipe.vae, captured["latents"]))[0]  # (K, 4, 32, 48)
    torch.testing.assert_close(out.spectral_volumes[0].spectrum, resize_spectrum(model, (64, 96)))


def test_self_guidance_calms_the_seam(pipe):
    from gid_pipeline.guidance import self_guidance_loss

    inputs = get_dummy_inputs(output_type="spectrum", num_inference_steps=4)
    plain = pipe(**inputs).spectral_volumes[0].spectrum
    guided = pipe(**{**inputs, "generator": torch.Generator().manual_seed(0), "self_guidance_scale": 0.3})
    guided = guided.spectral_volumes[0].spectrum
    before = float(self_guidance_loss(plain[None], NUM_FRAMES))
    after = float(self_guidance_loss(guided[None], NUM_FRAMES))
    assert after < 0.85 * before  # 2849 against 4362 when written
    with torch.inference_mode():  # autograd inside the step works under inference mode too
        again = pipe(**{**inputs, "generator": torch.Generator().manual_seed(0), "self_guidance_scale": 0.3})
    torch.testing.assert_close(again.spectral_volumes[0].spectrum, guided)
    with pytest.raises(GIDInputError, match="self_guidance_scale must be between 0 and 10000"):
        pipe(**{**inputs, "self_guidance_scale": 1e30})


def test_a_sample_that_diverges_is_refused_with_advice(pipe, monkeypatch):
    nan = torch.full((1, 4, 4, 32, 48), torch.nan)
    monkeypatch.setattr(pipe, "decode_latents", lambda latents, chunk_size=None: nan)
    with pytest.raises(GIDInputError, match=r"diverged.*lower self_guidance_scale"):
        pipe(**get_dummy_inputs(output_type="spectrum", self_guidance_scale=0.3))


def test_dtype_float64_matches_float32(pipe):
    expected = pipe(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    pipe.to(torch.float64)
    assert pipe.unet.dtype == torch.float64 and pipe.vae.dtype == torch.float64
    out = pipe(**get_dummy_inputs())
    torch.testing.assert_close(out.spectral_volumes[0].spectrum, expected, atol=1e-4, rtol=1e-4)
    assert out.frames.dtype == torch.float32


def test_dtype_bfloat16_runs(pipe):
    pipe.to(torch.bfloat16)
    out = pipe(**get_dummy_inputs())
    assert torch.isfinite(out.spectral_volumes[0].spectrum).all()
    assert out.frames.dtype == torch.float32  # frames and volumes stay float32 whatever the models' dtype
    torch.testing.assert_close(out.frames[0, 0], get_dummy_inputs()["image"], atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"output_type": "latent"}, "output_type"),
        ({"num_frames": 5}, "num_frames"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
        ({"self_guidance_scale": -1.0}, "self_guidance_scale"),
        ({"guidance_scale": -3.0}, "guidance_scale"),
        ({"num_inference_steps": 10_000}, "num_inference_steps"),
        ({"playback": {"amplitude": 2}}, "PlaybackControls"),
        ({"generator": [torch.Generator(), torch.Generator()]}, "2 generators for 1 images"),
        ({"generator": [0, 1]}, "2 generators for 1 images"),
        ({"generator": 0}, "generator must be a torch.Generator"),
        ({"decode_chunk_size": 0}, "decode_chunk_size"),
        ({"fps": 0.0}, "fps"),
        ({"image": torch.rand(3, 8, 40)}, "at least 16"),
        ({"image": torch.rand(3, 32, 48) * 3}, r"\[0, 1\]"),
        ({"image": torch.rand(4, 32, 48)}, r"\(3, H, W\)"),
        ({"image": [torch.rand(3, 32, 48), torch.rand(3, 40, 48)]}, "same size"),
        ({"image": "missing.png"}, "not found"),
        ({"image": 42}, "must be a PIL image"),
        ({"latents": torch.randn(1, 4, 4, 8, 8)}, "latents must have shape"),
        ({"height": 33, "width": 48}, "even"),
    ],
)
def test_bad_inputs(pipe, overrides, message):
    with pytest.raises(GIDInputError, match=message):
        pipe(**get_dummy_inputs(**overrides))


def test_untrained_unet_and_unsupported_self_guidance():
    components = get_dummy_components()
    untrained = FrequencyUNet.from_config({**components["unet"].config, "normalization_scales": None})
    with pytest.raises(GIDInputError, match="normalization_scales"):
        GIDPipeline(**{**components, "unet": untrained})(**get_dummy_inputs())
    flow_matching = FlowMatchEulerDiscreteScheduler()  # no variance-preserving schedule to guide with
    with pytest.raises(GIDInputError, match="alphas_cumprod"):
        GIDPipeline(**{**components, "scheduler": flow_matching})(**get_dummy_inputs(self_guidance_scale=1.0))


def test_shipped_checkpoint_samples_offline(monkeypatch):
    """The default checkpoint (assets/gid-default) loads without network and samples a small loop."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pipe = GIDPipeline.from_pretrained(DEFAULT_CHECKPOINT)
    pipe.set_progress_bar_config(disable=True)
    image = torch.rand(3, 80, 128, generator=torch.Generator().manual_seed(0))
    out = pipe(image, num_inference_steps=2, num_frames=32, generator=torch.Generator().manual_seed(0),
               output_type="pt")  # fmt: skip
    volume = out.spectral_volumes[0]
    assert volume.spectrum.shape == (pipe.unet.config.num_frequencies, 4, 80, 128)
    assert torch.isfinite(volume.spectrum).all()
    assert out.frames.shape == (1, 32, 3, 80, 128)
    torch.testing.assert_close(out.frames[0, 0], image, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------- batches and inputs


def test_a_batch_gives_what_single_calls_give_with_the_same_generators(pipe):
    """diffusers' convention: one generator per image; a batch of two equals two single calls."""
    images = torch.rand(2, 3, 32, 48, generator=torch.Generator().manual_seed(9))
    generators = [torch.Generator().manual_seed(11), torch.Generator().manual_seed(12)]
    batch = pipe(**get_dummy_inputs(image=[images[0], images[1]], generator=generators))
    for index, seed in enumerate((11, 12)):
        single = pipe(**get_dummy_inputs(image=images[index], generator=torch.Generator().manual_seed(seed)))
        torch.testing.assert_close(
            batch.spectral_volumes[index].spectrum, single.spectral_volumes[0].spectrum, atol=1e-5, rtol=1e-5
        )
        # Batched convolutions round differently in the last bits, and the learned renderer can turn that into a
        # level or two at a stray pixel (1 of 36864 values off by 0.0065 in one run): all but a few are equal.
        difference = (batch.frames[index] - single.frames[0]).abs()
        assert float((difference > 1e-4).float().mean()) < 1e-3 and float(difference.max()) < 0.02
    assert not torch.allclose(batch.spectral_volumes[0].spectrum, batch.spectral_volumes[1].spectrum)


def _png_header_only(path, width: int, height: int) -> None:
    """A PNG with only its signature, IHDR (8-bit RGB, width x height) and IEND: no pixel data at all."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))


@pytest.mark.parametrize(
    ("make", "message"),
    [(lambda path: path.write_text("this is not a picture"), "not an image"),
     (lambda path: None, "not found|does not exist"),
     (lambda path: PIL.Image.new("RGB", (8, 8)).save(path, format="PNG"), "too small: 8x8"),
     (lambda path: _png_header_only(path, 20000, 20000), "too large"),
     (lambda path: _png_header_only(path, 10000, 6000), "too large: 10000x6000 is over 50 megapixels")],
)  # fmt: skip
def test_bad_image_files(pipe, tmp_path, make, message):
    """Refused with a clear message; the huge ones from their header alone (they hold no pixel data, so decoding
    would fail with another message)."""
    path = tmp_path / "photo.png"
    make(path)
    with pytest.raises(GIDInputError, match=message):
        pipe(**get_dummy_inputs(image=str(path)))
    with pytest.raises(GIDInputError, match=message):
        pipe.player.render(path, SpectralVolume(torch.zeros(4, 4, 32, 48), 8, 30.0))


def _rgb(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(array)).permute(2, 0, 1).float() / 255


@pytest.mark.parametrize("kind", ["grayscale", "rgba", "16-bit", "exif-rotated"])
def test_image_files_of_every_kind_are_converted_to_rgb(pipe, tmp_path, kind):
    """Frame 0 of the loop is the photo as a viewer shows it: grey as RGB, transparency on white, 16 bit scaled to
    8, EXIF orientation applied."""
    rng = np.random.default_rng(4)
    path = tmp_path / ("photo.jpg" if kind == "exif-rotated" else "photo.png")
    if kind == "grayscale":
        gray = (rng.random((32, 48)) * 255).astype(np.uint8)
        PIL.Image.fromarray(gray).save(path)
        expected = _rgb(np.repeat(gray[..., None], 3, axis=2))
    elif kind == "rgba":
        rgba = (rng.random((32, 48, 4)) * 255).astype(np.uint8)
        PIL.Image.fromarray(rgba, "RGBA").save(path)
        alpha = rgba[..., 3:].astype(np.float64) / 255
        expected = _rgb(np.rint(rgba[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8))
    elif kind == "16-bit":
        deep = (rng.random((32, 48)) * 65535).astype(np.uint16)
        PIL.Image.fromarray(deep).save(path)
        assert PIL.Image.open(path).mode.startswith("I")
        expected = _rgb(np.repeat(np.rint(deep / 257.0).astype(np.uint8)[..., None], 3, axis=2))
    else:
        photo = PIL.Image.fromarray((rng.random((32, 48, 3)) * 255).astype(np.uint8))
        exif = PIL.Image.Exif()
        exif[0x0112] = 6  # orientation: shown rotated 90 degrees clockwise
        photo.save(path, exif=exif.tobytes(), quality=95)
        stored = PIL.Image.open(path)
        stored.load()
        expected = _rgb(np.asarray(stored.transpose(PIL.Image.Transpose.ROTATE_270)))
    out = pipe(**get_dummy_inputs(image=str(path)))
    height, width = expected.shape[-2:]
    assert out.frames.shape == (1, NUM_FRAMES, 3, height, width)
    torch.testing.assert_close(out.frames[0, 0], expected, atol=1.5 / 255, rtol=0)
    if kind == "exif-rotated":
        assert (height, width) == (48, 32)


@pytest.mark.parametrize("num_frames", [0, 10**6])
def test_frame_counts_out_of_range_name_the_limit(pipe, num_frames):
    with pytest.raises(GIDInputError, match=r"num_frames \(to hold 4 frequencies\) must be between 6 and 1000"):
        pipe(**get_dummy_inputs(num_frames=num_frames))
    with pytest.raises(GIDInputError, match="num_frames must be between 2 and 1000"):
        PlaybackControls(num_frames=num_frames)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="enable_model_cpu_offload needs a CUDA device")
def test_enable_model_cpu_offload_samples_what_the_cpu_samples(pipe):
    expected = pipe(**get_dummy_inputs())
    pipe.enable_model_cpu_offload()
    out = pipe(**get_dummy_inputs())
    assert pipe.unet.device.type == "cpu"  # offloaded again after the call
    torch.testing.assert_close(out.spectral_volumes[0].spectrum, expected.spectral_volumes[0].spectrum, atol=1e-3,
                               rtol=1e-3)  # fmt: skip
    assert out.frames.shape == expected.frames.shape
    volume = out.spectral_volumes[0]
    frames = pipe.player.render(get_dummy_inputs()["image"], volume, output_type="pt").frames
    torch.testing.assert_close(frames[0, 0], get_dummy_inputs()["image"], atol=1e-5, rtol=0)
