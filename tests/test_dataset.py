"""The dataset format and the PyTorch datasets: round trip, mixing, sharding, checks, statistics, augmentation."""

import shutil
import tarfile
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from gid_pipeline.data.augment import Augment, crop_resize, hflip, photometric
from gid_pipeline.data.builder import SampleConfig, prepare_procedural_dataset
from gid_pipeline.data.dataset import SpectralMapDataset, SpectralShardDataset, collate
from gid_pipeline.data.shards import (
    compute_normalization,
    decode_spectrum,
    fit_normalizer,
    iter_dataset,
    iter_shard,
    open_dataset,
)
from gid_pipeline.errors import GIDInputError
from gid_pipeline.media.images import image_to_tensor
from gid_pipeline.procedural.scenes import generate_scene
from gid_pipeline.rendering.loop import render_loop
from gid_pipeline.spectral.transform import SpectralNormalizer
from gid_pipeline.spectral.volume import SpectralVolume

SMALL = SampleConfig(size=(64, 48), num_frames=20, fps=30.0, num_frequencies=4)


# One thread, as in DataLoader workers (see the fixture).
pytestmark = pytest.mark.usefixtures("one_thread")


def build(root, num_samples, config=SMALL, seed_offset=0, samples_per_shard=3):
    prepare_procedural_dataset(
        num_samples, root, config, seed_offset=seed_offset, workers=1, samples_per_shard=samples_per_shard
    )
    return root


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """10 scenes (seeds 0-9) in shards of 3, 3, 3, 1."""
    return build(tmp_path_factory.mktemp("first"), 10)


@pytest.fixture(scope="module")
def second(tmp_path_factory):
    """6 scenes (seeds 100-105) in 3 shards of 2."""
    return build(tmp_path_factory.mktemp("second"), 6, seed_offset=100, samples_per_shard=2)


def keys(dataset):
    return [item["meta"]["key"] for item in dataset]


def test_round_trip_keeps_images_spectra_and_metadata(first):
    info = open_dataset(first)
    assert [count for _, count in info.shards] == [3, 3, 3, 1]
    assert (info.size, info.num_frames, info.fps, info.num_frequencies) == ((64, 48), 20, 30.0, 4)
    items = list(SpectralShardDataset(first, shuffle=False))
    assert [item["meta"]["seed"] for item in items] == list(range(10))
    for item in items:
        scene = generate_scene(item["meta"]["seed"], (64, 48), 20, 30.0, 4, return_displacements=False)
        np.testing.assert_array_equal(item["image"].permute(1, 2, 0).mul(255).round().byte().numpy(), scene.image)
        assert item["image"].dtype == torch.float32 and item["spectrum"].dtype == torch.float32
        # float16 storage: relative rounding 2^-11, absolute below that for small coefficients.
        torch.testing.assert_close(item["spectrum"], scene.spectrum, rtol=1e-3, atol=1e-3 * scene.spectrum.abs().max())
        assert item["meta"]["procedural"] == scene.meta and item["meta"]["dataset"] == 0
        assert item["meta"]["key"] == f"procedural-{item['meta']['seed']:09d}"


def test_a_stored_spectrum_is_a_spectral_volume_file(first, tmp_path):
    with tarfile.open(first / "shard-000000.tar") as tar:
        names = tar.getnames()
        member = tar.extractfile("procedural-000000000.spectrum.safetensors").read()
    assert names[:3] == ["procedural-000000000.png", "procedural-000000000.spectrum.safetensors",
                         "procedural-000000000.json"]  # fmt: skip
    (tmp_path / "s.safetensors").write_bytes(member)
    volume = SpectralVolume.load(tmp_path / "s.safetensors")
    assert (volume.num_frames, volume.fps, volume.spectrum.shape) == (20, 30.0, (4, 4, 48, 64))


def test_map_dataset_matches_the_stream(first, second):
    stream = list(SpectralShardDataset([first, second], shuffle=False, repeat=False))
    mapped = SpectralMapDataset([first, second])
    assert len(mapped) == 16 and sorted(keys(mapped)) == sorted(keys(stream))
    by_key = {item["meta"]["key"]: item for item in stream}
    for item in mapped:
        other = by_key[item["meta"]["key"]]
        assert torch.equal(item["image"], other["image"]) and torch.equal(item["spectrum"], other["spectrum"])
    batch = collate([mapped[0], mapped[15]])
    assert batch["image"].shape == (2, 3, 48, 64) and batch["spectrum"].shape == (2, 4, 4, 48, 64)
    assert [m["dataset"] for m in batch["meta"]] == [0, 1]


def test_mixing_follows_the_weights(first, second):
    dataset = SpectralShardDataset([first, second], weights=[0.3, 0.7], seed=1, shuffle_buffer=4)
    sources = [item["meta"]["dataset"] for _, item in zip(range(2000), dataset, strict=False)]
    fraction = sources.count(0) / len(sources)
    assert abs(fraction - 0.3) < 0.04  # 4 standard deviations of a binomial fraction
    # The endless stream cycles through every sample of both.
    seen = Counter(item["meta"]["key"] for _, item in zip(range(400), dataset, strict=False))
    assert len(seen) == 16


def test_shuffling_is_seeded(first):
    same = [keys(SpectralShardDataset(first, seed=3, shuffle_buffer=4)) for _ in range(2)]
    other = keys(SpectralShardDataset(first, seed=4, shuffle_buffer=4))
    assert same[0] == same[1] and sorted(same[0]) == sorted(other) and same[0] != other
    dataset = SpectralShardDataset(first, seed=3, shuffle_buffer=4)
    dataset.set_epoch(1)
    assert keys(dataset) != same[0]


@pytest.mark.parametrize("dataset_fixture", ["first", "second"])  # 4 shards (split by shard), 3 (by sample)
def test_ranks_and_workers_read_each_sample_once(dataset_fixture, request):
    root = request.getfixturevalue(dataset_fixture)
    seen = []
    for rank in range(2):
        dataset = SpectralShardDataset(root, rank=rank, world_size=2, shuffle_buffer=2)
        loader = DataLoader(dataset, batch_size=2, num_workers=2, collate_fn=collate)
        seen += [meta["key"] for batch in loader for meta in batch["meta"]]
    assert sorted(seen) == sorted(keys(SpectralShardDataset(root, shuffle=False)))
    assert len(seen) == len(set(seen))


def test_datasets_must_agree_on_frequencies_and_size(first, tmp_path):
    other_k = build(tmp_path / "k", 1, SampleConfig((64, 48), 20, 30.0, 3))
    other_size = build(tmp_path / "size", 1, SampleConfig((48, 64), 20, 30.0, 4))
    other_rate = build(tmp_path / "rate", 1, SampleConfig((64, 48), 20, 15.0, 4))
    with pytest.raises(GIDInputError, match=r"K \(number of frequencies\): 4 vs 3"):
        SpectralShardDataset([first, other_k])
    with pytest.raises(GIDInputError, match=r"size \(width, height\): \(64, 48\) vs \(48, 64\)"):
        SpectralMapDataset([first, other_size])
    with pytest.raises(GIDInputError, match="frequency spacing"):
        SpectralShardDataset([first, other_rate])
    with pytest.raises(GIDInputError, match=r"no manifest\.json"):
        SpectralShardDataset(tmp_path)
    with pytest.raises(GIDInputError, match="one positive weight per dataset"):
        SpectralShardDataset([first, first], weights=[1.0])


def test_normalisation_statistics_match_a_direct_fit(first, second):
    info = open_dataset(first)
    stored = [sample.spectrum for sample in iter_dataset(info)]
    assert info.normalizer == SpectralNormalizer.fit(stored)  # the same values, so the same percentiles
    originals = [generate_scene(s, (64, 48), 20, 30.0, 4, return_displacements=False).spectrum for s in range(10)]
    np.testing.assert_allclose(info.normalizer.scales, SpectralNormalizer.fit(originals).scales, rtol=2e-3)
    assert SpectralShardDataset([first, second]).normalizer == info.normalizer  # the first dataset's
    # Fitted on the stream: every sample of one dataset gives the saved statistics; a mix gives its own.
    assert SpectralShardDataset(first, augment=Augment()).fit_normalizer(num_samples=10) == info.normalizer
    mixed = SpectralShardDataset([first, second], weights=[0.5, 0.5]).fit_normalizer(num_samples=40)
    assert mixed.num_frequencies == 4 and mixed != info.normalizer


def test_normalisation_subsamples_large_sets(first, tmp_path):
    spectra = [decode_spectrum(files) for path, _ in open_dataset(first).shards for _, files in iter_shard(path)]
    exact = SpectralNormalizer.fit(spectra)
    pixels = fit_normalizer(spectra, len(spectra), max_values_per_frequency=20_000)  # 1/6 of every sample's pixels
    np.testing.assert_allclose(pixels.scales, exact.scales, rtol=0.1)
    shutil.copytree(first, tmp_path / "copy")
    samples = compute_normalization(tmp_path / "copy", max_samples=6)  # 6 of the 10 samples
    assert samples != exact and SpectralNormalizer.load(tmp_path / "copy" / "normalization.json") == samples
    np.testing.assert_allclose(samples.scales, exact.scales, rtol=0.5)


def test_flip_keeps_image_and_motion_consistent():
    scene = generate_scene(1, size=(96, 64), num_frames=30, fps=30.0, num_frequencies=6, return_displacements=False)
    image, spectrum = image_to_tensor(scene.image), scene.spectrum
    rendered = render_loop(image, spectrum, 6)
    flipped = render_loop(*hflip(image, spectrum), 6).flip(-1)
    assert (rendered - flipped).abs().max() < 1e-3
    wrong = render_loop(image.flip(-1), spectrum.flip(-1), 6).flip(-1)  # mirrored without negating x
    assert (rendered - wrong).abs().max() > 0.1


def test_crop_resize_scales_displacements():
    spectrum = torch.zeros(2, 4, 160, 256)
    spectrum[1, 0] = 2.0  # a uniform translation: 2 px right, 1 px down at its peak
    spectrum[1, 1] = 1.0
    image = torch.rand(3, 160, 256)
    small_image, small = crop_resize(image, spectrum, (0, 0, 160, 256), (80, 128))
    assert small_image.shape == (3, 80, 128)
    torch.testing.assert_close(small[1, 0], torch.full((80, 128), 1.0))
    torch.testing.assert_close(small[1, 1], torch.full((80, 128), 0.5))
    zoom_image, zoom = crop_resize(image, spectrum, (40, 64, 80, 128), (160, 256))  # the centre, enlarged twice
    torch.testing.assert_close(zoom[1, 0], torch.full((160, 256), 4.0))
    torch.testing.assert_close(zoom_image[:, ::2, ::2].mean(), image[:, 40:120, 64:192].mean(), atol=0.01, rtol=0)
    with pytest.raises(GIDInputError, match="does not fit"):
        crop_resize(image, spectrum, (100, 0, 80, 128), (160, 256))


def test_augmentation_is_deterministic_and_consistent(first):
    augment = Augment(flip_probability=0.5, crop_probability=1.0, scale_range=(0.5, 0.9))
    image, spectrum = torch.rand(3, 48, 64), torch.randn(4, 4, 48, 64)
    runs = [augment(image, spectrum, np.random.default_rng(7)) for _ in range(2)]
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert runs[0][0].shape == image.shape and runs[0][1].shape == spectrum.shape
    assert not torch.equal(runs[0][1], augment(image, spectrum, np.random.default_rng(8))[1])
    # In a dataset, a sample's augmentation depends on the seed, epoch and key, not on who reads it.
    plain = {i["meta"]["key"]: i for i in SpectralMapDataset(first, augment=augment, seed=5)}
    streamed = {i["meta"]["key"]: i for i in SpectralShardDataset(first, augment=augment, seed=5, shuffle_buffer=3)}
    assert all(torch.equal(plain[k]["spectrum"], streamed[k]["spectrum"]) for k in plain)


def test_photometric_change_keeps_the_range_and_its_defaults_are_the_identity():
    image = torch.rand(3, 24, 32)
    torch.testing.assert_close(photometric(image), image)
    hazy = photometric(image, gamma=0.7, contrast=0.6, saturation=0.4, gain=1.6, haze=0.5, haze_colour=(0.9, 0.9, 1.0))
    assert hazy.shape == image.shape and 0.0 <= hazy.min() and hazy.max() <= 1.0
    assert hazy.std() < image.std()  # haze and low contrast wash the picture out
    grey = photometric(image, saturation=0.0)
    torch.testing.assert_close(grey[0], grey[1])
    torch.testing.assert_close(grey[1], grey[2])
    fog = photometric(image, haze=1.0, haze_colour=(0.8, 0.9, 1.0))
    torch.testing.assert_close(fog[:, 5, 5], torch.tensor([0.8, 0.9, 1.0]))
    assert photometric(image, gamma=0.5).mean() > image.mean() > photometric(image, gamma=2.0).mean()


def test_photometric_augmentation_changes_the_picture_never_the_motion():
    image, spectrum = torch.rand(3, 48, 64), torch.randn(4, 4, 48, 64)
    only_colour = Augment(flip_probability=0.0, crop_probability=0.0, photometric_probability=1.0)
    changed, motion = only_colour(image, spectrum, np.random.default_rng(3))
    assert motion is spectrum and not torch.allclose(changed, image) and 0.0 <= changed.min() <= changed.max() <= 1.0
    again = only_colour(image, spectrum, np.random.default_rng(3))[0]
    assert torch.equal(changed, again)
    # Off (the default), it draws no random numbers: runs from before it existed replay exactly.
    for seed in range(5):
        old, new = Augment()(image, spectrum, np.random.default_rng(seed)), Augment(photometric_probability=0.0)(
            image, spectrum, np.random.default_rng(seed)
        )
        assert all(torch.equal(a, b) for a, b in zip(old, new, strict=True))
    with pytest.raises(GIDInputError, match="probabilities"):
        Augment(photometric_probability=1.5)


def test_a_damaged_shard_is_a_clear_error(first, tmp_path):
    (tmp_path / "manifest.json").write_bytes((first / "manifest.json").read_bytes())
    for shard in first.glob("shard-*.tar"):
        (tmp_path / shard.name).write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(GIDInputError, match="cannot read shard"):
        list(SpectralShardDataset(tmp_path, shuffle=False))
