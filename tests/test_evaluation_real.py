"""Evaluation on real clips: Spearman, band-profile error, the moving / still / uncertain masks on a synthetic clip,
ignore regions and files, and the texture baseline. (The command line on tests/data/tree.avi is tested in
test_evaluation.py, beside the prepared dataset it takes its reference spectrum from.)"""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gid_pipeline.errors import GIDInputError
from gid_pipeline.evaluation import (
    BAND_EDGES_HZ,
    MeanSpectrum,
    MotionCase,
    band_error,
    band_rms,
    evaluate_motion,
    ignore_mask,
    load_ignore,
    motion_amplitude,
    spearman,
    texture_map,
    texture_volume,
)
from gid_pipeline.evaluation.clips import clip_num_frequencies, window_masks, window_starts
from gid_pipeline.evaluation.masks import MOVING_GREY_STD, grey_change
from gid_pipeline.evaluation.metrics import BAND_FLOOR_PX, band_indices
from gid_pipeline.motion.clip import clip_motion
from gid_pipeline.spectral.volume import SpectralVolume

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------------ Spearman


def reference_ranks(values: np.ndarray) -> np.ndarray:
    """1 + (number of smaller values) + (number of equal others) / 2: average ranks, by counting."""
    return 1.0 + (values[None, :] < values[:, None]).sum(1) + ((values[None, :] == values[:, None]).sum(1) - 1) / 2.0


pairs = st.integers(3, 50).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=st.sampled_from([-1.0, 0.0, 0.5, 2.0, 7.0])),  # many ties
        arrays(np.float64, n, elements=st.floats(-100, 100).map(lambda x: round(x, 2))),
    )
)


@settings(max_examples=60, deadline=None)
@given(pairs)
def test_spearman_is_pearson_of_average_ranks_and_rank_invariant(data):
    a, b = data
    value = spearman(torch.from_numpy(a), torch.from_numpy(b))
    ra, rb = reference_ranks(a), reference_ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        assert math.isnan(value)
        return
    assert value == pytest.approx(float(np.corrcoef(ra, rb)[0, 1]), abs=1e-9)
    # Strictly increasing transforms keep every rank; negating one map flips the sign.
    assert spearman(torch.from_numpy(np.exp(a / 10) * 3 + 1), torch.from_numpy(b**3 + b)) == pytest.approx(value)
    assert spearman(torch.from_numpy(-a), torch.from_numpy(b)) == pytest.approx(-value)


def test_spearman_identical_reversed_ties_mask():
    a = torch.rand(12, 9, generator=torch.Generator().manual_seed(0))
    assert spearman(a, a) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, a.square() * 5 + 2) == pytest.approx(1.0)
    # Ties: two levels against a map that is monotone in them -> the point-biserial of ranks, here 1.
    levels = (a > 0.5).float()
    assert spearman(levels, levels * 10 - 3) == pytest.approx(1.0)
    assert math.isnan(spearman(torch.ones(5), torch.arange(5.0)))  # a constant map has no ranking
    mask = torch.zeros(12, 9, dtype=torch.bool)
    mask[:6] = True
    scrambled = torch.where(mask, a, torch.rand(12, 9))  # only the masked half agrees
    assert spearman(scrambled, a, mask) == pytest.approx(1.0)
    with pytest.raises(GIDInputError, match="one shape"):
        spearman(a, a[:3])


# ------------------------------------------------------------------------------------------------ bands


def _spectrum(num_frames: int, fps: float, num_frequencies: int, seed: int = 0) -> SpectralVolume:
    generator = torch.Generator().manual_seed(seed)
    return SpectralVolume(torch.randn(num_frequencies, 4, 6, 7, generator=generator), num_frames, fps)


def test_band_membership_in_hz():
    # 150 frames at 30 fps: 0.2 Hz bins; bands 0.2-0.4, 0.4-0.8, 0.8-1.6, 1.6-3 Hz hold 1, 2, 4 and 8 of them.
    index = band_indices(np.arange(16) * 0.2)
    assert index[0] == -1 and np.bincount(index[1:]).tolist() == [1, 2, 4, 8]
    assert band_indices(np.array([0.1, 3.0, 3.2])).tolist() == [-1, len(BAND_EDGES_HZ) - 2, -1]


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.05, 20.0), st.sampled_from([(150, 30.0, 16), (101, 25.0, 13)]))
def test_band_error_of_the_truth_and_of_scaled_predictions(seed, factor, time_base):
    volume = _spectrum(*time_base, seed=seed)
    mask = torch.rand(6, 7, generator=torch.Generator().manual_seed(seed + 1)) > 0.4
    mask[0, 0] = True
    true = band_rms(volume.spectrum, mask, volume.frequencies_hz)
    assert np.all(np.isfinite(true))
    assert band_error(true, true) == 0.0
    assert band_error(band_rms(volume.spectrum * 2, mask, volume.frequencies_hz), true) == pytest.approx(
        math.log10(2.0), abs=1e-9
    )
    scaled = band_rms(volume.spectrum * factor, mask, volume.frequencies_hz)
    assert band_error(scaled, true) == pytest.approx(abs(math.log10(factor)), abs=1e-6)
    # Parseval: the bands add up to the mean squared amplitude over the mask (every bin lies in a band).
    assert float(np.sum(true**2)) == pytest.approx(float(motion_amplitude(volume.spectrum)[mask].square().mean()),
                                                   rel=1e-5)  # fmt: skip


def test_band_error_compares_shared_bands_and_floors_a_still_prediction():
    coarse = _spectrum(30, 15.0, 7)  # 0.5 Hz bins: nothing in the 0.2-0.4 Hz band
    mask = torch.ones(6, 7, dtype=torch.bool)
    bands = band_rms(coarse.spectrum, mask, coarse.frequencies_hz)
    assert math.isnan(bands[0]) and np.all(np.isfinite(bands[1:]))
    fine = band_rms(_spectrum(150, 30.0, 16).spectrum, mask, np.arange(16) * 0.2)
    shared = np.abs(np.log10(fine[1:] / bands[1:])).mean()
    assert band_error(fine, bands) == pytest.approx(shared)
    still = band_rms(torch.zeros(7, 4, 6, 7), mask, coarse.frequencies_hz)
    assert band_error(still, bands) == pytest.approx(float(np.mean(np.log10(bands[1:] / BAND_FLOOR_PX))))
    assert math.isnan(band_error(np.full(4, np.nan), bands))


# ------------------------------------------------------------------------------------------------ masks

SYNTH_SIZE, SYNTH_FRAMES, SYNTH_FPS = (96, 64), 40, 10.0
PATCH = (slice(10, 42), slice(8, 40))  # rows, columns: texture seen through a still window, oscillating 1 Hz
DARK = (slice(8, 56), slice(58, 90))  # dark, noisy and flickering: its flow is noise


def _texture(shape: tuple[int, int], seed: int) -> np.ndarray:
    noise = np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)
    return cv2.normalize(cv2.GaussianBlur(noise, (0, 0), 1.2), None, 30, 225, cv2.NORM_MINMAX)


def synthetic_clip() -> np.ndarray:
    """(T, H, W, 3) uint8: a textured still background; in PATCH a texture sliding +-3 px at 1 Hz; in DARK grey
    level 12 with per-frame noise (std 3) and a 0.7 Hz flicker of +-2 levels."""
    width, height = SYNTH_SIZE
    rng = np.random.default_rng(1)
    background = _texture((height, width), 2)
    moving = _texture((height, width + 16), 3)
    frames = np.empty((SYNTH_FRAMES, height, width), np.float32)
    for t in range(SYNTH_FRAMES):
        shift = 3.0 * math.sin(2 * math.pi * 1.0 * t / SYNTH_FPS)
        matrix = np.float32([[1, 0, shift - 8], [0, 1, 0]])  # content at x moves to x + shift
        slid = cv2.warpAffine(moving, matrix, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
        frame = background.copy()
        frame[PATCH] = slid[PATCH]
        flicker = 2.0 * math.sin(2 * math.pi * 0.7 * t / SYNTH_FPS)
        frame[DARK] = 12.0 + flicker + rng.normal(0.0, 3.0, frame[DARK].shape)
        frames[t] = frame
    return np.repeat(np.clip(frames, 0, 255).round().astype(np.uint8)[..., None], 3, axis=-1)


@pytest.fixture(scope="module")
def synthetic():
    frames = synthetic_clip()
    motion = clip_motion(frames, SYNTH_FPS, clip_num_frequencies(SYNTH_FRAMES, SYNTH_FPS, 3.0))
    return frames, motion


def _interior(region: tuple[slice, slice], margin: int) -> tuple[slice, slice]:
    return tuple(slice(s.start + margin, s.stop - margin) for s in region)


def test_masks_of_a_synthetic_clip(synthetic):
    frames, motion = synthetic
    masks = window_masks(frames, motion)
    assert not bool((masks.moving & masks.still).any()) and not bool(masks.ignore.any())
    patch, dark = _interior(PATCH, 4), _interior(DARK, 2)
    assert float(masks.moving[patch].float().mean()) > 0.9
    background = torch.ones(SYNTH_SIZE[::-1], dtype=torch.bool)
    for region in (PATCH, DARK):
        background[_interior(region, -6)] = False  # 6 px away from either region
    assert float(masks.still[background].float().mean()) > 0.95
    # The dark region's flow is made-up noise: never moving (its grey levels change by less than a few levels).
    assert not bool(masks.moving[dark].any())
    assert float(grey_change(frames)[dark].mean()) < MOVING_GREY_STD
    assert float(motion_amplitude(motion.volume.spectrum)[dark].median()) > masks.threshold / 4  # noisy flow there
    assert masks.noise_floor > 0 and masks.threshold >= masks.noise_floor


def test_ignored_pixels_are_left_out_of_masks_and_metrics(synthetic):
    frames, motion = synthetic
    ignore = torch.zeros(SYNTH_SIZE[::-1], dtype=torch.bool)
    ignore[:, 24:] = True  # the right half of the patch and everything beyond
    masks = window_masks(frames, motion, ignore)
    assert not bool((masks.moving | masks.still)[ignore].any()) and bool(masks.moving.any())
    assert torch.equal(masks.scored, ~ignore)
    image = torch.from_numpy(frames[0]).permute(2, 0, 1).float() / 255
    case = MotionCase("synthetic@0", "synthetic", "clip", image, motion.volume, masks=masks)
    other = MotionCase("other@0", "other", "clip", image, motion.volume, masks=window_masks(frames, motion))

    def predictor(garbage: float):
        def predict(image: torch.Tensor, generator: torch.Generator) -> SpectralVolume:
            spectrum = motion.volume.spectrum.clone()
            spectrum[..., ignore] = garbage * torch.randn(spectrum[..., ignore].shape, generator=generator)
            return SpectralVolume(spectrum, motion.volume.num_frames, motion.volume.fps)

        return predict

    clean = evaluate_motion([case, other], predictor(0.0), seeds=(0,)).report["cases"][0]["results"]["gid"][0]
    noisy = evaluate_motion([case, other], predictor(50.0), seeds=(0,)).report["cases"][0]["results"]["gid"][0]
    assert noisy == clean and clean["spearman"] == pytest.approx(1.0) and clean["band_error"] == pytest.approx(0.0)


def test_window_starts_spread_over_the_clip():
    assert window_starts(300, 150, 3, 15) == (0, 75, 150)
    assert window_starts(101, 125, 3, 13) == (0, 13, 26)  # a clip shorter than one window: starts 0.5 s apart
    assert window_starts(300, 150, 1, 15) == (0,)


# ------------------------------------------------------------------------------------------------ ignore files


def test_ignore_file_forms_and_mapping(tmp_path):
    path = tmp_path / "ignore.json"
    path.write_text(json.dumps({"a.mp4": [[0, 0, 1, 0.4]], "b.mp4": {"boxes": [[0.5, 0, 1, 1]], "reason": "cars"}}))
    regions = load_ignore(path)
    assert regions == {"a.mp4": ((0.0, 0.0, 1.0, 0.4),), "b.mp4": ((0.5, 0.0, 1.0, 1.0),)}
    # 640x360 covers 256x160 at 284x160: rows are not cropped, so y < 0.4 is the first 64 rows.
    mask = ignore_mask(regions["a.mp4"], (640, 360), (256, 160))
    assert mask.shape == (160, 256) and bool(mask[:64].all()) and not bool(mask[64:].any())
    # 640x480 covers 256x160 at 256x192, cropped 16 rows at the top: the right half, every row.
    mask = ignore_mask(regions["b.mp4"], (640, 480), (256, 160))
    assert bool(mask[:, 128:].all()) and not bool(mask[:, :128].any())
    assert not bool(ignore_mask((), (640, 480), (256, 160)).any())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read ignore file"),
        ("[1, 2]", "JSON object"),
        ('{"tree.avi": 3}', "tree.avi must map to a list of boxes"),
        ('{"tree.avi": [[0, 0, 1]]}', "box of tree.avi must be 4 numbers"),
        ('{"tree.avi": [[0.5, 0, 0.2, 1]]}', "of tree.avi must have 0 <= x0 < x1 <= 1"),
        ('{"tree.avi": {"boxes": [[0, 0, 1, 1.5]]}}', "of tree.avi must have"),
        ('{"tree.avi": [[true, 0, 1, 1]]}', "box of tree.avi must be 4 numbers"),
    ],
)
def test_bad_ignore_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "ignore.json"
    path.write_text(content)
    with pytest.raises(GIDInputError, match=message):
        load_ignore(path)


def test_missing_ignore_file(tmp_path):
    with pytest.raises(GIDInputError, match="does not exist"):
        load_ignore(tmp_path / "none.json")


# ------------------------------------------------------------------------------------------------ texture baseline


def test_texture_baseline_follows_the_laplacian_and_keeps_the_mean_amplitude():
    image = torch.full((3, 32, 48), 0.5)
    image[:, 8:24, 30:44] = torch.rand(3, 16, 14, generator=torch.Generator().manual_seed(0))  # one textured patch
    texture = texture_map(image)
    assert float(texture[12:20, 33:41].mean()) > 10 * float(texture[:, :20].mean())
    mean = MeanSpectrum(torch.tensor([0.0, 0.3, 0.2, 0.1], dtype=torch.float64), 12, 4.0, (32, 48), "flat")
    flat = mean.volume(32, 48)
    volume = texture_volume(image, flat)
    assert (volume.num_frames, volume.fps) == (flat.num_frames, flat.fps)
    amplitude, flat_amplitude = motion_amplitude(volume.spectrum), motion_amplitude(flat.spectrum)
    assert float(amplitude.mean()) == pytest.approx(float(flat_amplitude.mean()), rel=1e-5)
    torch.testing.assert_close(amplitude / amplitude.max(), texture / texture.max(), rtol=1e-4, atol=1e-6)
    # A textureless image: the mean spectrum itself.
    torch.testing.assert_close(texture_volume(torch.full((3, 32, 48), 0.2), flat).spectrum, flat.spectrum)
