"""Motion masks: the painted-mask format the pipeline takes, and the rough masks training draws."""

from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import torch

from gid_pipeline import GIDInputError
from gid_pipeline.data.motion_masks import (
    MASK_STYLES,
    edit_for_mask,
    moving_region,
    random_motion_mask,
    random_motion_masks,
    rough_region,
)
from gid_pipeline.motion.mask import hold_still, to_motion_mask
from gid_pipeline.procedural import generate_scene


def _painted(height: int = 40, width: int = 64) -> np.ndarray:
    """Left third white (moves), middle grey (unknown), right third black (still)."""
    levels = np.full((height, width), 128, np.uint8)
    levels[:, : width // 3] = 255
    levels[:, 2 * width // 3 :] = 0
    return levels


def test_a_painted_image_becomes_moves_still_and_unknown():
    mask = to_motion_mask(PIL.Image.fromarray(_painted()), 40, 64)
    assert mask.shape == (2, 40, 64) and mask.dtype == torch.float32
    assert bool((mask[0, :, :21] == 1).all()) and bool((mask[1, :, :21] == 0).all())
    assert bool((mask[:, :, 22:42] == 0).all())  # grey: unknown
    assert bool((mask[1, :, 43:] == 1).all()) and bool((mask[0, :, 43:] == 0).all())


def test_transparent_pixels_are_unknown_and_every_form_is_accepted(tmp_path):
    rgba = np.zeros((40, 64, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:, :32, 3] = 255  # only the left half painted (opaque white)
    mask = to_motion_mask(PIL.Image.fromarray(rgba, "RGBA"), 40, 64)
    assert bool((mask[0, :, :32] == 1).all()) and bool((mask[:, :, 32:] == 0).all())
    PIL.Image.fromarray(_painted()).save(tmp_path / "mask.png")
    from_file = to_motion_mask(tmp_path / "mask.png", 40, 64)
    from_float = to_motion_mask(_painted().astype(np.float32) / 255.0, 40, 64)
    from_tensor = to_motion_mask(torch.from_numpy(_painted().astype(np.float32) / 255.0), 40, 64)
    from_bool = to_motion_mask(_painted() > 200, 40, 64)
    for other in (from_file, from_float, from_tensor):
        torch.testing.assert_close(other, to_motion_mask(_painted(), 40, 64))
    assert bool((from_bool[1, :, 22:42] == 1).all())  # a bool mask has no unknown: False is still


def test_a_mask_of_another_size_is_resized_by_area():
    mask = to_motion_mask(_painted(80, 128), 20, 32)
    assert mask.shape == (2, 20, 32)
    assert float(mask[0, :, :10].min()) > 0.99 and 0.0 < float(mask[0, :, 10:12].max()) <= 1.0
    torch.testing.assert_close(mask.sum(dim=(1, 2)) / (20 * 32), torch.tensor([1 / 3, 1 / 3]), atol=0.03, rtol=0)


def test_a_mask_goes_onto_a_rounded_model_grid_with_the_photos_aspect_ratio():
    """A 4:3 photo (256x192) samples on a 224x192 grid (sides rounded to 32): the mask painted on the photo is
    checked against the photo and stretched to the grid as the photo is."""
    mask = to_motion_mask(_painted(192, 256), 192, 224, photo_size=(192, 256))
    assert mask.shape == (2, 192, 224) and float(mask[0, :, :70].min()) == 1 and not mask[0, :, 80:].any()
    with pytest.raises(GIDInputError, match="the motion mask is 256x192, the photo 224x192"):
        to_motion_mask(_painted(192, 256), 192, 224)
    with pytest.raises(GIDInputError, match="the motion mask is 192x192, the photo 256x192"):
        to_motion_mask(_painted(192, 192), 192, 224, photo_size=(192, 256))


@pytest.mark.parametrize(
    ("mask", "message"),
    [
        (np.zeros((40, 40), np.float32), "aspect ratio"),
        (np.full((40, 64), np.nan, np.float32), "NaN"),
        (np.full((40, 64), 3.0, np.float32), r"must lie in \[0, 1\]"),
        (np.zeros((40, 64, 3), np.float32), r"\(H, W\) grey levels"),
        (np.zeros((40, 64), np.int64), "uint8, bool or float"),
        ("not a mask", "cannot read the mask image"),
        (3.5, "a motion mask must be"),
    ],
)
def test_bad_masks_are_named(mask, message):
    with pytest.raises(GIDInputError, match=message):
        to_motion_mask(mask, 40, 64)


def _region() -> np.ndarray:
    region = np.zeros((48, 64), bool)
    region[10:30, 20:50] = True
    return region


@pytest.mark.parametrize("seed", range(6))
def test_rough_regions_resemble_what_a_person_paints(seed):
    region = _region()
    rng = np.random.default_rng(seed)
    assert np.array_equal(rough_region(region, "exact", rng), region)
    assert not (rough_region(region, "eroded", rng) & ~region).any()
    dilated = rough_region(region, "dilated", rng)
    assert dilated[region].all() and dilated.sum() > region.sum()
    partial = rough_region(region, "partial", rng)
    assert partial.any() and not (partial & ~region).any()
    scribble = rough_region(region, "scribble", rng)
    assert scribble.any() and scribble[region].sum() >= 0.5 * scribble.sum() - 1  # strokes mostly inside
    with pytest.raises(GIDInputError, match="mask style"):
        rough_region(region, "blob", rng)


@pytest.mark.parametrize("seed", range(10))
def test_training_masks_never_mark_a_pixel_both_moving_and_still(seed):
    mask = random_motion_mask(_region(), np.random.default_rng(seed))
    assert mask.shape == (2, 48, 64) and mask.dtype == np.float32
    assert set(np.unique(mask)) <= {0.0, 1.0}
    assert not (mask[0].astype(bool) & mask[1].astype(bool)).any()
    assert mask[0].any()
    assert len(MASK_STYLES) == 5


def test_batch_masks_follow_the_probability_and_the_generator():
    scene = generate_scene(3, (64, 48), num_frames=32, num_frequencies=4, return_displacements=False)
    region = moving_region(scene.spectrum)
    assert not (region & ~scene.moving_mask).any()  # exact motion: still pixels are exactly zero
    assert float(region.sum()) >= 0.9 * float(scene.moving_mask.sum())  # all but what barely moves
    spectra = scene.spectrum[None].expand(4, -1, -1, -1, -1)
    none, same = random_motion_masks(spectra, 0.0, torch.Generator().manual_seed(0))
    assert not none.any() and same is spectra
    first, _ = random_motion_masks(spectra, 1.0, torch.Generator().manual_seed(7))
    again, _ = random_motion_masks(spectra, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(first, again) and bool((first[:, 0].flatten(1).sum(1) > 0).all())
    with pytest.raises(GIDInputError, match="mask probability"):
        random_motion_masks(spectra, 1.5, torch.Generator())
    with pytest.raises(GIDInputError, match="edit probability"):
        random_motion_masks(spectra, 1.0, torch.Generator(), edit_probability=-0.1)


@pytest.fixture(scope="module")
def scene_spectrum():
    scene = generate_scene(5, (64, 48), num_frames=32, num_frequencies=4, return_displacements=False)
    return scene.spectrum, moving_region(scene.spectrum).numpy()


@pytest.mark.parametrize("seed", range(4))
def test_an_override_stills_what_it_paints_still(scene_spectrum, seed):
    spectrum, moving = scene_spectrum
    edited, now_moving, stilled = edit_for_mask(spectrum, moving, "override", np.random.default_rng(seed))
    assert (stilled & moving).any() and (moving & ~stilled).any()  # a part of what moved (strokes may spill)
    assert float(edited[..., torch.from_numpy(stilled)].abs().max()) == 0.0
    keep = torch.from_numpy(~stilled)
    assert torch.equal(edited[..., keep], spectrum[..., keep])
    assert np.array_equal(now_moving, moving & ~stilled)
    mask = random_motion_mask(now_moving, np.random.default_rng(seed), forced_still=stilled)
    assert mask[1][stilled].all() and not mask[0][stilled].any()


@pytest.mark.parametrize("seed", range(4))
def test_a_transplant_moves_still_pixels_with_shifted_motion(scene_spectrum, seed):
    spectrum, moving = scene_spectrum
    edited, now_moving, stilled = edit_for_mask(spectrum, moving, "transplant", np.random.default_rng(seed))
    assert stilled is None and now_moving.sum() > moving.sum() and now_moving[moving].all()
    same = torch.from_numpy(moving)
    assert torch.equal(edited[..., same], spectrum[..., same])  # what moved keeps its own motion
    landed = torch.from_numpy(now_moving & ~moving)
    assert float(edited[..., landed].abs().amax(dim=(0, 1)).min()) > 0  # still pixels now move
    rest = torch.from_numpy(~now_moving)  # outside the new moving region the target is as it was
    assert torch.equal(edited[..., rest], spectrum[..., rest])
    with pytest.raises(GIDInputError, match="mask edit"):
        edit_for_mask(spectrum, moving, "swap", np.random.default_rng(seed))


def test_edited_batches_keep_masks_and_targets_consistent(scene_spectrum):
    spectrum, _ = scene_spectrum
    spectra = spectrum[None].repeat(8, 1, 1, 1, 1)
    masks, edited = random_motion_masks(spectra, 1.0, torch.Generator().manual_seed(2), edit_probability=1.0)
    assert edited is not spectra and not torch.equal(edited, spectra)
    assert torch.equal(spectra, spectrum[None].expand(8, -1, -1, -1, -1))  # the batch itself is not modified
    for mask, target in zip(masks, edited, strict=True):
        moves, still = mask.bool()
        assert moves.any() and not (moves & still).any()
        assert float((moves & moving_region(target)).sum()) >= 0.5 * float(moves.sum())  # painted where it moves


def test_hold_still_zeroes_only_what_is_painted_still():
    generator = torch.Generator().manual_seed(0)
    spectra = torch.randn(2, 3, 4, 16, 24, generator=generator)
    masks = torch.zeros(2, 2, 8, 12)
    masks[0, 1, :, :6] = 1.0  # left half stays still
    masks[1, 0] = 1.0  # all moves: nothing held
    held = hold_still(spectra, masks)
    assert float(held[0, ..., :10].abs().max()) == 0.0  # inside (the bilinear edge aside)
    torch.testing.assert_close(held[0, ..., 14:], spectra[0, ..., 14:])
    torch.testing.assert_close(held[1], spectra[1])
    torch.testing.assert_close(hold_still(2.0 * spectra, masks), 2.0 * held)  # linear in the motion
    assert torch.equal(hold_still(spectra, torch.ones(2, 2, 16, 24)), torch.zeros_like(spectra))


# ------------------------------------------------------------------------------------------ the pipeline's mask


@pytest.fixture(scope="module")
def masked_pipe():
    """The tiny pipeline of test_pipeline.py with a motion-mask U-Net whose mask adapters are random (a fresh one
    adds exactly nothing: its last conv starts at zero)."""
    from test_pipeline import get_dummy_components

    from gid_pipeline import GIDPipeline
    from gid_pipeline.models import FrequencyUNet

    components = get_dummy_components()
    unet = FrequencyUNet.with_conditions(components["unet"], None, None, motion_mask=True)
    generator = torch.Generator().manual_seed(3)
    for name, parameter in unet.named_parameters():
        if name.startswith("condition_adapters"):
            parameter.data = torch.randn(parameter.shape, generator=generator) * 0.3
    pipe = GIDPipeline(**{**components, "unet": unet.eval()})
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _sample(pipe, **kwargs):
    from test_pipeline import get_dummy_inputs

    return pipe(**get_dummy_inputs(output_type="spectrum", **kwargs)).spectral_volumes[0]


def test_a_mask_changes_the_sample_and_no_mask_is_the_ordinary_prior(masked_pipe):
    plain = _sample(masked_pipe)
    unknown = _sample(masked_pipe, motion_mask=np.full((32, 48), 128, np.uint8))  # all grey: asks nothing
    painted = _sample(masked_pipe, motion_mask=_painted(32, 48))
    assert plain.motion_mask is None
    torch.testing.assert_close(unknown.spectrum, plain.spectrum)  # same seed, nothing asked: the same sample
    assert not torch.allclose(painted.spectrum, plain.spectrum, atol=1e-4)
    # The volume keeps what was asked, on the model's grid: left third moves, right third stays still.
    mask = painted.motion_mask
    assert mask.shape[0] == 2 and float(mask[0, :, :4].min()) == 1.0 and float(mask[1, :, -4:].min()) == 1.0
    assert float(mask[0, :, -4:].max()) == 0.0


def test_what_is_painted_still_stays_still(masked_pipe):
    black = np.zeros((32, 48), np.uint8)
    assert float(_sample(masked_pipe, motion_mask=black).spectrum.abs().max()) == 0.0  # all "stays still"
    assert float(_sample(masked_pipe, motion_mask=black, hold_still_painted=False).spectrum.abs().max()) > 0
    painted = _painted(32, 48)
    held, free = (_sample(masked_pipe, motion_mask=painted, hold_still_painted=hold) for hold in (True, False))
    width = held.spectrum.shape[-1]
    assert float(held.spectrum[..., 3 * width // 4 :].abs().max()) == 0.0  # the right third: still
    torch.testing.assert_close(held.spectrum[..., : width // 4], free.spectrum[..., : width // 4])  # as sampled


def test_the_brush_has_its_own_motion_calibration(masked_pipe):
    from gid_pipeline import GIDPipeline

    calibrated = GIDPipeline(**masked_pipe.components, motion_calibration=1.5, mask_motion_calibration=3.0)
    calibrated.set_progress_bar_config(disable=True)
    reference = GIDPipeline(**masked_pipe.components, motion_calibration=1.5)
    reference.set_progress_bar_config(disable=True)
    painted = _painted(32, 48)
    torch.testing.assert_close(_sample(calibrated, motion_mask=painted).spectrum,
                               2.0 * _sample(reference, motion_mask=painted).spectrum)  # fmt: skip
    grey = np.full((32, 48), 128, np.uint8)  # paints nothing: motion_calibration applies
    assert torch.equal(_sample(calibrated, motion_mask=grey).spectrum, _sample(reference).spectrum)
    assert torch.equal(_sample(calibrated).spectrum, _sample(reference).spectrum)
    with pytest.raises(GIDInputError, match="mask_motion_calibration"):
        GIDPipeline(**masked_pipe.components, mask_motion_calibration=0.0)


def test_the_mask_travels_in_the_spectral_volume_file(masked_pipe, tmp_path):
    from gid_pipeline.player import PlaybackControls, played
    from gid_pipeline.spectral.volume import SpectralVolume

    painted = _sample(masked_pipe, motion_mask=PIL.Image.fromarray(_painted(32, 48)))
    loaded = SpectralVolume.load(painted.save(tmp_path / "painted.safetensors"))
    torch.testing.assert_close(loaded.motion_mask, painted.motion_mask, atol=1 / 255, rtol=0)
    assert loaded.resized(64, 96).motion_mask is not None
    assert played(loaded, PlaybackControls(amplitude=2.0)).motion_mask is not None  # replay shows what was asked
    assert SpectralVolume.load(_sample(masked_pipe).save(tmp_path / "plain.safetensors")).motion_mask is None


def test_a_checkpoint_without_mask_training_refuses_a_mask():
    from test_pipeline import get_dummy_components

    from gid_pipeline import GIDPipeline

    pipe = GIDPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    with pytest.raises(GIDInputError, match="not trained with motion masks"):
        _sample(pipe, motion_mask=_painted(32, 48))


def test_masks_in_a_batch_and_bad_masks_are_named(masked_pipe):
    from test_pipeline import get_dummy_inputs

    image = get_dummy_inputs()["image"]
    with pytest.raises(GIDInputError, match="2 motion masks for 3 images"):
        masked_pipe([image] * 3, motion_mask=[_painted(32, 48)] * 2, num_inference_steps=2, output_type="spectrum")
    with pytest.raises(GIDInputError, match="aspect"):
        _sample(masked_pipe, motion_mask=_painted(40, 40))
    with pytest.raises(GIDInputError, match="NaN"):
        _sample(masked_pipe, motion_mask=np.full((32, 48), np.nan, np.float32))


def test_gid_generate_mask(masked_pipe, tmp_path, capsys):
    from gid_pipeline.cli import main
    from gid_pipeline.spectral.volume import SpectralVolume

    masked_pipe.save_pretrained(tmp_path / "checkpoint")
    PIL.Image.fromarray((np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)).save(tmp_path / "p.png")
    PIL.Image.fromarray(_painted(32, 48)).save(tmp_path / "mask.png")
    common = ["generate", str(tmp_path / "p.png"), "--checkpoint", str(tmp_path / "checkpoint"), "--steps", "2",
              "--frames", "8", "--long-side", "96"]  # fmt: skip
    assert main([*common, "-o", str(tmp_path / "a.gif"), "--mask", str(tmp_path / "mask.png"),
                 "--spectrum-out", str(tmp_path / "a.safetensors")]) == 0  # fmt: skip
    assert SpectralVolume.load(tmp_path / "a.safetensors").motion_mask is not None
    PIL.Image.fromarray(_painted(50, 50)).save(tmp_path / "square.png")
    capsys.readouterr()
    assert main([*common, "-o", str(tmp_path / "b.gif"), "--mask", str(tmp_path / "square.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "aspect" in err[0] and not (tmp_path / "b.gif").exists()
