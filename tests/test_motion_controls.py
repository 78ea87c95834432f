"""spectral.controls: properties of band_limited, masked, scaled and amplitude_map, checked
on the spectra and on rendered frames (pixel softmax splatting)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gid_pipeline.errors import GIDInputError
from gid_pipeline.rendering.loop import render_loop
from gid_pipeline.spectral.controls import amplitude_map, band_limited, masked, scaled
from gid_pipeline.spectral.transform import spectrum_to_motion
from gid_pipeline.spectral.volume import SpectralVolume

pytestmark = pytest.mark.usefixtures("one_thread")

HEIGHT, WIDTH = 24, 40


def make_volume(num_frequencies: int = 6, num_frames: int = 30, fps: float = 30.0, seed: int = 0) -> SpectralVolume:
    """A random spectral volume with displacements of a few pixels; K = 6 bins at 0, 1, ..., 5 Hz by default."""
    spectrum = torch.randn(num_frequencies, 4, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(seed))
    return SpectralVolume(spectrum * 0.5, num_frames, fps)


def image() -> torch.Tensor:
    return torch.rand(3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(7))


def motion(volume: SpectralVolume) -> torch.Tensor:
    """(T, 2, H, W) displacements of one period, frame 0 pinned."""
    return spectrum_to_motion(volume.spectrum, volume.num_frames)


def test_band_limited_full_band_is_identity_and_an_empty_band_is_still():
    volume = make_volume()
    torch.testing.assert_close(band_limited(volume).spectrum, volume.spectrum, atol=0, rtol=0)
    full = band_limited(volume, 0.0, volume.fps / 2)
    torch.testing.assert_close(full.spectrum, volume.spectrum, atol=0, rtol=0)
    # Without the DC slice (0 Hz) the motion is the same: the pinned frame 0 cancels it.
    no_dc = band_limited(volume, 1.0, None)
    assert float(no_dc.spectrum[0].abs().max()) == 0.0
    torch.testing.assert_close(motion(no_dc), motion(volume), atol=1e-5, rtol=0)
    # Edges are inclusive: (2, 3) Hz keeps exactly bins 2 and 3.
    kept = band_limited(volume, 2.0, 3.0).spectrum
    assert [bool(kept[k].abs().max() > 0) for k in range(6)] == [False, False, True, True, False, False]
    torch.testing.assert_close(kept[2:4], volume.spectrum[2:4], atol=0, rtol=0)
    # A band between two bins holds no slice: no motion, and the rendered frames are the input image exactly.
    empty = band_limited(volume, 1.2, 1.8)
    assert float(empty.spectrum.abs().max()) == 0.0
    picture = image()
    frames = render_loop(picture, empty.spectrum, empty.num_frames)
    assert torch.equal(frames, picture.expand_as(frames))


@pytest.mark.parametrize(
    ("band", "message"),
    [((3.0, 2.0), "reversed"), ((-1.0, None), r"low_hz must be a frequency in \[0, 15\]"),
     ((None, 15.5), "high_hz must be"), ((float("nan"), None), "low_hz"), (("1", None), "low_hz")],
)  # fmt: skip
def test_band_limited_bad_band(band, message):
    with pytest.raises(GIDInputError, match=message):
        band_limited(make_volume(), *band)


def test_masked_ones_is_identity_zeros_is_still_and_soft_in_between():
    volume = make_volume()
    ones = masked(volume, torch.ones(HEIGHT, WIDTH))
    torch.testing.assert_close(ones.spectrum, volume.spectrum, atol=0, rtol=0)
    zeros = masked(volume, np.zeros((HEIGHT, WIDTH), dtype=np.float32))
    assert float(zeros.spectrum.abs().max()) == 0.0
    picture = image()
    frames = render_loop(picture, zeros.spectrum, zeros.num_frames)
    assert torch.equal(frames, picture.expand_as(frames))
    half = masked(volume, torch.full((HEIGHT, WIDTH), 0.5))
    torch.testing.assert_close(half.spectrum, 0.5 * volume.spectrum)
    # A bool mask of another size with the same aspect ratio is resized to the volume's grid.
    region = torch.zeros(2 * HEIGHT, 2 * WIDTH, dtype=torch.bool)
    region[:, WIDTH:] = True  # right half moves
    resized = masked(volume, region).spectrum
    assert float(resized[..., : WIDTH // 2 - 1].abs().max()) == 0.0
    torch.testing.assert_close(resized[..., WIDTH // 2 + 1 :], volume.spectrum[..., WIDTH // 2 + 1 :])


def test_a_masked_region_stays_pixel_still_in_rendered_frames():
    """The left half is held still; every moving pixel is at least 8 px away from the checked columns, farther than
    any displacement, so nothing is splatted over them: their pixels are the input's."""
    volume = make_volume(seed=3)
    region = torch.ones(HEIGHT, WIDTH)
    region[:, : WIDTH // 2] = 0.0
    held = masked(scaled(volume, 0.3), region)
    largest = float(motion(held).norm(dim=1).max())
    assert 1.0 < largest < 8.0  # the right half really moves, by less than the margin
    picture = image()
    frames = render_loop(picture, held.spectrum, held.num_frames)
    still = slice(0, WIDTH // 2 - 8)
    # Softmax splatting normalises each pixel (w I / w), which may round in the last bit: pixel-still means equal
    # to within 1e-6, i.e. identical 8-bit pixels in a video.
    difference = (frames[..., still] - picture[..., still]).abs()
    assert float(difference.max()) <= 1e-6
    assert torch.equal((frames[..., still] * 255).round(), (picture[..., still] * 255).round().expand_as(difference))
    assert float((frames[..., WIDTH // 2 :] - picture[..., WIDTH // 2 :]).abs().max()) > 0.1


@pytest.mark.parametrize(
    ("mask", "message"),
    [(torch.ones(1, HEIGHT, WIDTH), r"2-D \(H, W\)"), (torch.full((HEIGHT, WIDTH), 2.0), r"in \[0, 1\]"),
     (np.full((HEIGHT, WIDTH), 255, dtype=np.uint8), r"in \[0, 1\].*255"), (torch.ones(HEIGHT, HEIGHT), "aspect"),
     (torch.full((HEIGHT, WIDTH), float("nan")), "finite"), ([[1.0]], "tensor or numpy")],
)  # fmt: skip
def test_masked_bad_mask(mask, message):
    with pytest.raises(GIDInputError, match=message):
        masked(make_volume(), mask)


def test_scaled_is_linear_and_amplitude_map_scales_by_its_magnitude():
    volume, other = make_volume(seed=1), make_volume(seed=2)
    torch.testing.assert_close(scaled(volume, 2.5).spectrum, 2.5 * volume.spectrum)
    combined = SpectralVolume(scaled(volume, 2.0).spectrum + scaled(other, -3.0).spectrum, 30, 30.0)
    torch.testing.assert_close(motion(combined), 2.0 * motion(volume) - 3.0 * motion(other), atol=1e-4, rtol=1e-5)
    base = amplitude_map(volume)
    for amplitude in (0.0, 0.5, -2.0):
        torch.testing.assert_close(amplitude_map(scaled(volume, amplitude)), abs(amplitude) * base)
    with pytest.raises(GIDInputError, match="amplitude must be a finite number"):
        scaled(volume, float("inf"))


@pytest.mark.parametrize(("num_frequencies", "num_frames"), [(6, 30), (5, 8)])  # the second has a bin at T / 2
def test_amplitude_map_is_the_rms_swing_over_a_loop(num_frequencies, num_frames):
    volume = make_volume(num_frequencies, num_frames)
    displacements = motion(volume)  # (T, 2, H, W)
    swing = displacements - displacements.mean(dim=0)
    expected = swing.square().sum(dim=1).mean(dim=0).sqrt()
    result = amplitude_map(volume)
    assert result.shape == (HEIGHT, WIDTH) and result.dtype == torch.float32
    torch.testing.assert_close(result, expected, atol=1e-5, rtol=1e-5)
    # One harmonic of amplitude A pixels along x swings by A / sqrt(2).
    spectrum = torch.zeros(num_frequencies, 4, HEIGHT, WIDTH)
    spectrum[1, 0] = 1.5  # S_1 = 1.5 px: x(t) = 3 cos(2 pi t / T) - 3
    single = amplitude_map(SpectralVolume(spectrum, num_frames, 30.0))
    torch.testing.assert_close(single, torch.full((HEIGHT, WIDTH), 3.0 / math.sqrt(2.0)))
