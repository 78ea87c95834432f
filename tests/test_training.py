import json
import math
import shutil

import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler
from safetensors.torch import load_file

from gid_pipeline.cli import main
from gid_pipeline.data import SampleConfig, prepare_procedural_dataset
from gid_pipeline.errors import GIDInputError
from gid_pipeline.models import FrequencyUNet, PoolingSpectralAutoencoder, load_spectral_autoencoder
from gid_pipeline.spectral.transform import SpectralNormalizer
from gid_pipeline.training import TrainConfig, read_losses, train_unet, train_vae
from gid_pipeline.training.common import random_crops, random_slices

K = 4
TINY_VAE = {"block_out_channels": (8, 8, 16, 16), "norm_num_groups": 4}
TINY_UNET = {
    "image_embedding_channels": 4,
    "image_encoder_channels": (4, 8, 8, 8),
    "block_out_channels": (8, 16),
    "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
    "up_block_types": ("AttnUpBlock2D", "UpBlock2D"),
    "attention_head_dim": 8,
    "norm_num_groups": 4,
    "frequency_attention_levels": (0, 1),
    "frequency_attention_head_dim": 8,
}
FAST = {"batch_size": 2, "num_workers": 0, "warmup_steps": 0, "learning_rate": 2e-3, "scale_batches": 2}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """6 procedural scenes, 64x48 (latents 8x6), T = 32, K = 4, in 2 shards."""
    root = tmp_path_factory.mktemp("data")
    config = SampleConfig(size=(64, 48), num_frames=32, fps=30.0, num_frequencies=K)
    prepare_procedural_dataset(6, root, config, workers=1, samples_per_shard=3)
    return root


def vae_config(data, output, **overrides) -> TrainConfig:
    values = {"model": "vae", "data": [str(data)], "output": str(output), "model_config": TINY_VAE, **FAST}
    return TrainConfig(**{**values, **overrides})


def unet_config(data, output, vae, **overrides) -> TrainConfig:
    values = {"model": "unet", "data": [str(data)], "output": str(output), "vae": str(vae), "model_config": TINY_UNET}
    return TrainConfig(**{**values, **FAST, **overrides})


@pytest.fixture(scope="module")
def trained_vae(data, tmp_path_factory):
    """A tiny VAE trained for 8 steps; its run directory."""
    output = tmp_path_factory.mktemp("vae_run")
    train_vae(vae_config(data, output, steps=8, checkpoint_every=4))
    return output


@pytest.fixture(scope="module")
def stage1(data, trained_vae, tmp_path_factory):
    """A tiny per-slice U-Net trained for 3 steps; its run directory."""
    output = tmp_path_factory.mktemp("unet_run")
    train_unet(unet_config(data, output, trained_vae / "vae", steps=3))
    return output


def test_vae_training_lowers_the_loss_and_exports(data, trained_vae):
    losses = read_losses(trained_vae)
    assert [record["step"] for record in losses] == list(range(1, 9))
    assert all(math.isfinite(record["loss"]) for record in losses)
    assert sum(r["loss"] for r in losses[-3:]) < sum(r["loss"] for r in losses[:3])
    vae = AutoencoderKL.from_pretrained(trained_vae / "vae")
    assert tuple(vae.config.block_out_channels) == TINY_VAE["block_out_channels"]
    assert vae.config.scaling_factor != 1.0 and 0.05 < vae.config.scaling_factor < 50
    saved = SpectralNormalizer.load(trained_vae / "vae" / "normalization.json")
    assert saved == SpectralNormalizer.load(data / "normalization.json")
    assert TrainConfig.load(trained_vae / "run.json")["steps"] == 8
    assert sorted(p.name for p in (trained_vae / "checkpoints").iterdir()) == ["step-0000004", "step-0000008"]


def _final_weights(output, name):
    return load_file(output / name / "diffusion_pytorch_model.safetensors")


@pytest.mark.parametrize("model", ["vae", "unet"])
def test_resume_continues_exactly(model, data, trained_vae, tmp_path):
    """4 steps straight == 2 steps, stop, resume to 4; with gradient accumulation, so that skipping is exercised."""

    def config(output, steps):
        common = {"steps": steps, "checkpoint_every": 2, "gradient_accumulation_steps": 2}
        if model == "vae":
            return vae_config(data, output, **common)
        return unet_config(data, output, trained_vae / "vae", **common)

    train = train_vae if model == "vae" else train_unet
    train(config(tmp_path / "straight", 4))
    train(config(tmp_path / "resumed", 2))
    train(config(tmp_path / "resumed", 4), resume=True)

    straight, resumed = read_losses(tmp_path / "straight"), read_losses(tmp_path / "resumed")
    assert [r["step"] for r in resumed] == [1, 2, 3, 4]
    for one, other in zip(straight, resumed, strict=True):
        assert one["loss"] == pytest.approx(other["loss"], rel=1e-6, abs=1e-7)
    first, second = _final_weights(tmp_path / "straight", model), _final_weights(tmp_path / "resumed", model)
    for name, tensor in first.items():
        torch.testing.assert_close(second[name], tensor, rtol=1e-6, atol=1e-7)


def test_random_slices_and_crops():
    generator = torch.Generator().manual_seed(0)
    spectrum = torch.arange(2 * 6, dtype=torch.float32).view(2, 6, 1, 1, 1).expand(-1, -1, 4, 16, 24)
    picked, indices = random_slices(spectrum, 3, generator)
    assert picked.shape == (2, 3, 4, 16, 24) and indices.shape == (2, 3)
    for b in range(2):
        assert len(set(indices[b].tolist())) == 3
        torch.testing.assert_close(picked[b, :, 0, 0, 0], spectrum[b, indices[b], 0, 0, 0])
    everything, order = random_slices(spectrum, None, generator)
    assert everything is spectrum and order.tolist() == [list(range(6))] * 2
    with pytest.raises(GIDInputError, match="exceeds"):
        random_slices(spectrum, 7, generator)
    images = torch.arange(16 * 24, dtype=torch.float32).view(1, 1, 16, 24).expand(5, 2, -1, -1)
    crops = random_crops(images, 8, generator)
    assert crops.shape == (5, 2, 8, 8)
    # Each crop is a contiguous window: rows step by 24, columns by 1.
    assert torch.all(crops.diff(dim=-1) == 1) and torch.all(crops.diff(dim=-2) == 24)
    assert random_crops(images, None, generator) is images
    with pytest.raises(GIDInputError, match="does not fit"):
        random_crops(images, 20, generator)


def test_subset_training_of_both_models(data, trained_vae, tmp_path):
    """slices_per_sample and crop_size train and export; the U-Net export carries its normalisation."""
    train_vae(vae_config(data, tmp_path / "vae_run", steps=2, slices_per_sample=2, crop_size=16))
    assert AutoencoderKL.from_pretrained(tmp_path / "vae_run" / "vae").config.scaling_factor != 1.0
    train_unet(unet_config(data, tmp_path / "unet_run", trained_vae / "vae", steps=2, slices_per_sample=2))
    unet = FrequencyUNet.from_pretrained(tmp_path / "unet_run" / "unet")
    assert unet.normalizer == SpectralNormalizer.load(data / "normalization.json")
    with pytest.raises(GIDInputError, match="per-slice models"):
        train_unet(unet_config(
            data, tmp_path / "bad", trained_vae / "vae", slices_per_sample=2, stage="frequency_attention",
            init_from=str(tmp_path / "unet_run" / "unet"),
        ))  # fmt: skip
    # init_from with stage 1 trains that export further (same architecture, no model_config allowed).
    more = train_unet(unet_config(data, tmp_path / "more", trained_vae / "vae", steps=1, slices_per_sample=2,
                                  model_config={}, init_from=str(tmp_path / "unet_run" / "unet")))  # fmt: skip
    assert FrequencyUNet.from_pretrained(more).config.block_out_channels == unet.config.block_out_channels
    with pytest.raises(GIDInputError, match="not both"):
        train_unet(unet_config(data, tmp_path / "both", trained_vae / "vae",
                               init_from=str(tmp_path / "unet_run" / "unet")))  # fmt: skip
    with pytest.raises(GIDInputError, match="VAE option"):
        unet_config(data, tmp_path / "bad", trained_vae / "vae", crop_size=16)


def test_pooling_autoencoder_export_trains_a_unet(data, tmp_path):
    """model_config {"autoencoder": "pooling"} exports the fixed autoencoder with a fitted latent scale, and a U-Net
    trains on its latents."""
    export = train_vae(vae_config(data, tmp_path / "pool", model_config={"autoencoder": "pooling"}))
    autoencoder = load_spectral_autoencoder(export)
    assert isinstance(autoencoder, PoolingSpectralAutoencoder)
    assert autoencoder.config.scaling_factor != 1.0 and 0.05 < autoencoder.config.scaling_factor < 50
    stats = SpectralNormalizer.load(data / "normalization.json")
    assert SpectralNormalizer.load(export / "normalization.json") == stats
    train_unet(unet_config(data, tmp_path / "unet", export, steps=2, slices_per_sample=2))
    assert len(read_losses(tmp_path / "unet")) == 2
    with pytest.raises(GIDInputError, match="pooling autoencoder"):
        train_vae(vae_config(data, tmp_path / "bad", model_config={"autoencoder": "pooling", "width": 3}))


def test_unet_export_loads_with_its_scheduler(stage1):
    losses = read_losses(stage1)
    assert len(losses) == 3 and all(math.isfinite(r["loss"]) for r in losses)
    unet = FrequencyUNet.from_pretrained(stage1 / "unet")
    assert unet.config.num_frequencies == K and not unet.config.frequency_attention
    scheduler = DDPMScheduler.from_pretrained(stage1 / "scheduler")
    assert scheduler.config.prediction_type == "v_prediction" and not scheduler.config.clip_sample
    assert (stage1 / "unet" / "normalization.json").is_file()


def test_stage2_trains_only_frequency_attention(data, trained_vae, stage1, tmp_path):
    config = unet_config(
        data, tmp_path, trained_vae / "vae", stage="frequency_attention", init_from=str(stage1 / "unet"), steps=2
    )
    train_unet(config)
    model = FrequencyUNet.from_pretrained(tmp_path / "unet")
    assert model.config.frequency_attention
    before = FrequencyUNet.from_per_slice(FrequencyUNet.from_pretrained(stage1 / "unet")).state_dict()
    changed = {name for name, tensor in model.state_dict().items() if not torch.equal(tensor, before[name])}
    assert changed and all(name.startswith("frequency_layers.") for name in changed)
    assert any("to_out" in name for name in changed)  # the zero-initialised outputs moved


def test_stage_motion_mask_trains_only_the_mask_adapters(data, trained_vae, stage1, tmp_path):
    """A finished export gets motion-mask adapters; only they change, so its prior without a mask is exactly kept."""
    base = train_unet(unet_config(data, tmp_path / "base", trained_vae / "vae", steps=2, slices_per_sample=2,
                                  motion_mask=True))  # fmt: skip
    bare_vae = tmp_path / "bare_vae"  # as a checkpoint's vae folder: the U-Net's own normalisation is used
    shutil.copytree(trained_vae / "vae", bare_vae)
    (bare_vae / "normalization.json").unlink()
    config = unet_config(data, tmp_path / "masked", bare_vae, stage="motion_mask", init_from=str(base),
                         model_config={}, steps=3, slices_per_sample=2, motion_mask=True, mask_probability=1.0,
                         mask_edit_probability=0.5, ema_decay=0.0)  # fmt: skip
    model = FrequencyUNet.from_pretrained(train_unet(config)).eval()
    assert model.config.motion_mask_adapters
    assert model.normalizer == SpectralNormalizer.load(trained_vae / "vae" / "normalization.json")
    before = FrequencyUNet.from_pretrained(base).eval()
    own = before.state_dict()
    changed = {name for name, tensor in model.state_dict().items() if name not in own or not torch.equal(tensor,
                                                                                                         own[name])}
    assert changed and all(name.startswith("mask_adapters.") for name in changed)
    sample, image = torch.randn(1, K, 4, 6, 8), torch.rand(1, 3, 48, 64) * 2 - 1
    mask = torch.zeros(1, 2, 48, 64)
    mask[:, 0, :, :32] = 1.0
    with torch.no_grad():
        # The same weights (loaded from two files: float rounding may differ in the last bits).
        torch.testing.assert_close(model(sample, 5, image).sample, before(sample, 5, image).sample, atol=1e-6, rtol=0)
        assert not torch.equal(model(sample, 5, image, motion_mask=mask).sample,
                               before(sample, 5, image, motion_mask=mask).sample)  # fmt: skip
    with pytest.raises(GIDInputError, match="not trained with motion masks"):
        train_unet(unet_config(data, tmp_path / "x", trained_vae / "vae", stage="motion_mask", model_config={},
                               init_from=str(stage1 / "unet"), motion_mask=True, mask_probability=1.0))  # fmt: skip
    other = tmp_path / "other_vae"
    shutil.copytree(trained_vae / "vae", other)
    SpectralNormalizer((1.0,) * K, 95.0).save(other / "normalization.json")
    with pytest.raises(GIDInputError, match="other normalisation statistics"):
        train_unet(unet_config(data, tmp_path / "z", other, stage="motion_mask", model_config={}, init_from=str(base),
                               motion_mask=True, mask_probability=1.0))  # fmt: skip
    with pytest.raises(GIDInputError, match="needs a unet, motion_mask"):
        unet_config(data, tmp_path / "y", trained_vae / "vae", stage="motion_mask", init_from=str(base))


def test_bad_inputs_fail_before_training(data, trained_vae, stage1, tmp_path):
    no_stats = tmp_path / "no_stats"
    shutil.copytree(data, no_stats)
    (no_stats / "normalization.json").unlink()
    with pytest.raises(GIDInputError, match=r"normalization\.json"):
        train_vae(vae_config(no_stats, tmp_path / "a", steps=1))

    empty = tmp_path / "empty"
    empty.mkdir()
    manifest = json.loads((data / "manifest.json").read_text())
    (empty / "manifest.json").write_text(json.dumps({**manifest, "shards": []}))
    with pytest.raises(GIDInputError, match="no samples"):
        train_vae(vae_config(empty, tmp_path / "b", steps=1))

    with pytest.raises(GIDInputError, match="K = 3"):
        train_unet(unet_config(data, tmp_path / "c", trained_vae / "vae", model_config={**TINY_UNET,
                                                                                        "num_frequencies": 3}))
    with pytest.raises(GIDInputError, match=r"normalization\.json is missing"):
        train_unet(unet_config(data, tmp_path / "d", tmp_path / "missing"))
    corrupt = tmp_path / "corrupt"
    shutil.copytree(trained_vae / "vae", corrupt)
    (corrupt / "diffusion_pytorch_model.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(GIDInputError, match="cannot load the autoencoder"):
        train_unet(unet_config(data, tmp_path / "e", corrupt))
    with pytest.raises(GIDInputError, match="stage-1"):
        train_unet(unet_config(data, tmp_path / "f", trained_vae / "vae", stage="frequency_attention",
                               init_from=str(trained_vae / "vae")))  # fmt: skip
    with pytest.raises(GIDInputError, match="prediction type"):
        unet_config(data, tmp_path / "g", trained_vae / "vae", prediction_type="x0")
    with pytest.raises(GIDInputError, match="mixed precision"):
        vae_config(data, tmp_path / "h", mixed_precision="fp8")
    with pytest.raises(GIDInputError, match="--resume"):
        train_vae(vae_config(data, trained_vae, steps=1))
    assert not any((tmp_path / name / "run.json").exists() for name in "abcdef")


def test_cli_trains_and_exports(data, tmp_path):
    output = tmp_path / "run"
    args = ["train", "vae", "--data", str(data), "-o", str(output), "--steps", "2", "--batch-size", "2",
            "--num-workers", "0", "--no-augment", "--model-config", json.dumps(TINY_VAE)]  # fmt: skip
    assert main(args) == 0
    assert AutoencoderKL.from_pretrained(output / "vae").config.scaling_factor != 1.0
    saved = TrainConfig.load(output / "run.json")
    assert saved["steps"] == 2 and saved["augment"] is False and saved["data"] == [str(data)]
    assert main([*args[:-2], "--resume", "--steps", "3"]) == 0  # the saved model_config is reused
    assert len(read_losses(output)) == 3
    # A run saved before a config key existed resumes with that key at its default.
    saved = TrainConfig.load(output / "run.json")
    del saved["photometric"]
    (output / "run.json").write_text(json.dumps(saved))
    assert main([*args[:-2], "--resume", "--steps", "4"]) == 0
    assert main([*args[:-2], "--resume", "--steps", "5", "--photometric", "0.5"]) == 2  # a changed run is refused

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mixed_precision": "fp8"}))
    assert main(["train", "vae", "--data", str(data), "-o", str(tmp_path / "x"), "--config", str(bad)]) == 2
    assert main(["train", "unet", "--data", str(data), "-o", str(tmp_path / "y"), "--vae", str(tmp_path)]) == 2


def test_mixed_datasets_train_with_weights(data, tmp_path):
    second = tmp_path / "second"
    shutil.copytree(data, second)
    output = tmp_path / "run"
    args = ["train", "vae", "--data", str(data), "--data", str(second), "--weights", "0.3,0.7", "-o", str(output),
            "--steps", "1", "--batch-size", "2", "--num-workers", "0", "--model-config", json.dumps(TINY_VAE)]
    assert main(args) == 0
    assert TrainConfig.load(output / "run.json")["weights"] == [0.3, 0.7]
    # A mix is normalised with statistics refitted over the mixed stream, saved beside the export.
    assert SpectralNormalizer.load(output / "vae" / "normalization.json").num_frequencies == K


def test_resuming_at_the_last_step_exports_without_reading_data(data, trained_vae, tmp_path, monkeypatch):
    """Exporting a checkpoint (--resume --steps N at step N) skips no batches: it reads no data at all."""
    import gid_pipeline.training.common as common

    config = unet_config(data, tmp_path / "run", trained_vae / "vae", steps=2, checkpoint_every=2)
    train_unet(config)
    first = load_file(tmp_path / "run" / "unet" / "diffusion_pytorch_model.safetensors")
    shutil.rmtree(tmp_path / "run" / "unet")

    def no_data(*args, **kwargs):
        raise AssertionError("read the data")

    monkeypatch.setattr(common, "iterate_batches", no_data)
    train_unet(config, resume=True)
    again = load_file(tmp_path / "run" / "unet" / "diffusion_pytorch_model.safetensors")
    for name, tensor in first.items():
        torch.testing.assert_close(again[name], tensor, rtol=0, atol=0)
