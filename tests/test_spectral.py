import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gid_pipeline.errors import GIDInputError
from gid_pipeline.spectral.transform import (
    SpectralNormalizer,
    amplitude,
    channels_to_complex,
    complex_to_channels,
    frequencies_hz,
    motion_to_spectrum,
    resize_spectrum,
    spectrum_to_motion,
)


def band_limited_motion(num_frames: int, num_frequencies: int, size=(6, 7), seed=0) -> torch.Tensor:
    """(T, 2, H, W) real motion with content only in bins < K and F_0 = 0."""
    generator = torch.Generator().manual_seed(seed)
    coeffs = torch.randn(num_frequencies, 2, *size, dtype=torch.complex64, generator=generator)
    coeffs[0] = coeffs[0].real.to(torch.complex64)
    full = torch.zeros(num_frames // 2 + 1, 2, *size, dtype=torch.complex64)
    full[:num_frequencies] = coeffs
    motion = torch.fft.irfft(full, n=num_frames, dim=0, norm="forward")
    return motion - motion[:1]


def test_pure_sinusoid_lands_in_one_bin():
    num_frames, k0 = 150, 7
    t = torch.arange(num_frames, dtype=torch.float64)
    amplitude_px, phase = 1.5, 0.4
    signal = amplitude_px * torch.cos(2 * math.pi * k0 * t / num_frames + phase)
    motion = torch.zeros(num_frames, 2, 3, 4)
    motion[:, 0] = (signal - signal[0]).float().view(-1, 1, 1)
    amp = amplitude(motion_to_spectrum(motion, 16))[:, 0, 0]
    nonzero = (amp[1:] > 1e-5).nonzero().flatten() + 1
    assert nonzero.tolist() == [k0]
    assert amp[k0] == pytest.approx(amplitude_px / 2, rel=1e-5)


@settings(max_examples=25, deadline=None)
@given(num_frames=st.integers(32, 200), num_frequencies=st.integers(1, 16), seed=st.integers(0, 1000))
def test_band_limited_round_trip(num_frames, num_frequencies, seed):
    motion = band_limited_motion(num_frames, num_frequencies, seed=seed)
    spectrum = motion_to_spectrum(motion, num_frequencies)
    assert spectrum.shape == (num_frequencies, 4, 6, 7)
    restored = spectrum_to_motion(spectrum, num_frames)
    assert torch.allclose(restored, motion, atol=1e-5)


def test_motion_is_periodic_and_pinned():
    spectrum = torch.randn(16, 4, 5, 5)
    motion = spectrum_to_motion(spectrum, 150, frame_indices=torch.tensor([0.0, 150.0, 300.0, 37.0, 187.0]))
    assert torch.all(motion[0] == 0)
    assert torch.allclose(motion[1], motion[0], atol=1e-5)
    assert torch.allclose(motion[2], motion[0], atol=1e-5)
    assert torch.allclose(motion[3], motion[4], atol=1e-4)


def test_unpinned_motion_keeps_dc():
    spectrum = torch.zeros(4, 4, 2, 2)
    spectrum[0, 0] = 3.0  # DC x displacement
    motion = spectrum_to_motion(spectrum, 10, pin_first_frame=False)
    assert torch.allclose(motion[:, 0], torch.full((10, 2, 2), 3.0))


def test_linearity():
    a, b = torch.randn(16, 4, 3, 3), torch.randn(16, 4, 3, 3)
    lhs = spectrum_to_motion(2.0 * a - 0.5 * b, 90)
    rhs = 2.0 * spectrum_to_motion(a, 90) - 0.5 * spectrum_to_motion(b, 90)
    assert torch.allclose(lhs, rhs, atol=1e-4)


def test_batched_shapes():
    motion = torch.randn(2, 3, 40, 2, 5, 6)
    assert motion_to_spectrum(motion, 8).shape == (2, 3, 8, 4, 5, 6)
    assert spectrum_to_motion(torch.randn(2, 8, 4, 5, 6), 40).shape == (2, 40, 2, 5, 6)


def test_complex_channel_round_trip():
    spectrum = torch.randn(3, 16, 4, 5, 6)
    assert torch.equal(complex_to_channels(channels_to_complex(spectrum)), spectrum)


def test_frequencies_hz_paper_defaults():
    freqs = frequencies_hz(16, 150, 30)
    assert freqs[0] == 0 and freqs[1] == pytest.approx(0.2) and freqs[-1] == pytest.approx(3.0)


@pytest.mark.parametrize("bad", [0, 77])
def test_too_many_or_zero_frequencies(bad):
    with pytest.raises(GIDInputError, match="num_frequencies"):
        motion_to_spectrum(torch.zeros(150, 2, 2, 2), bad)


def test_resize_scales_displacements():
    # A uniform 1 px x shift and 2 px y shift stays uniform and scales with the grid.
    motion = torch.zeros(20, 2, 8, 10)
    t = torch.arange(20, dtype=torch.float32)
    wave = torch.sin(2 * math.pi * t / 20).view(-1, 1, 1)
    motion[:, 0], motion[:, 1] = wave, 2 * wave
    spectrum = motion_to_spectrum(motion, 4)
    resized = resize_spectrum(spectrum, (16, 30))
    restored = spectrum_to_motion(resized, 20)
    assert torch.allclose(restored[:, 0], 3 * wave.expand(20, 16, 30), atol=1e-5)
    assert torch.allclose(restored[:, 1], 4 * wave.expand(20, 16, 30), atol=1e-5)
    shrunk = resize_spectrum(spectrum, (4, 5))
    assert torch.allclose(spectrum_to_motion(shrunk, 20)[:, 0], 0.5 * wave.expand(20, 4, 5), atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), scale=st.floats(1e-3, 1e3))
def test_normalizer_is_exactly_invertible(seed, scale):
    generator = torch.Generator().manual_seed(seed)
    spectra = [torch.randn(16, 4, 8, 8, generator=generator) * scale for _ in range(3)]
    normalizer = SpectralNormalizer.fit(spectra, generator=generator)
    for spectrum in spectra:
        assert torch.allclose(normalizer.denormalize(normalizer.normalize(spectrum)), spectrum, rtol=1e-5, atol=0)


def test_normalizer_percentile_and_range():
    # |coefficients| uniform in [0, k+1] at frequency k: the 95th percentile is 0.95 (k+1).
    values = torch.rand(16, 4, 64, 64) * torch.arange(1, 17).view(-1, 1, 1, 1)
    normalizer = SpectralNormalizer.fit([values])
    assert normalizer.scales == pytest.approx([0.95 * (k + 1) for k in range(16)], rel=0.02)
    normalized = normalizer.normalize(values)
    assert torch.quantile(normalized.abs().flatten(), 0.95) == pytest.approx(1.0, rel=0.02)


def test_normalizer_bounded_memory_subsample():
    spectra = (torch.rand(2, 4, 32, 32) for _ in range(10))
    normalizer = SpectralNormalizer.fit(spectra, max_values_per_frequency=5000, generator=torch.Generator())
    assert normalizer.scales == pytest.approx([0.95, 0.95], rel=0.05)


def test_normalizer_save_load(tmp_path):
    normalizer = SpectralNormalizer(scales=(1.0, 0.5, 0.25), percentile=95.0)
    normalizer.save(tmp_path / "stats.json")
    assert SpectralNormalizer.load(tmp_path / "stats.json") == normalizer
    assert SpectralNormalizer.from_dict(normalizer.to_dict()) == normalizer


def test_normalizer_bad_input(tmp_path):
    with pytest.raises(GIDInputError):
        SpectralNormalizer(scales=(1.0, 0.0))
    with pytest.raises(GIDInputError, match="empty"):
        SpectralNormalizer.fit([])
    with pytest.raises(GIDInputError, match="K = 3"):
        SpectralNormalizer(scales=(1.0, 1.0)).normalize(torch.zeros(3, 4, 2, 2))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(GIDInputError, match="cannot read"):
        SpectralNormalizer.load(tmp_path / "bad.json")


def test_normalizer_subsample_is_uniform_over_batches():
    # The first batch holds small values, later ones large: a biased thinning would drift towards later batches.
    batches = [torch.full((1, 4, 50, 50), 1.0)] + [torch.full((1, 4, 50, 50), 3.0) for _ in range(3)]
    normalizer = SpectralNormalizer.fit(batches, percentile=20, max_values_per_frequency=2000,
                                        generator=torch.Generator().manual_seed(0))
    # 25 % of all values are 1.0, so the 20th percentile must be 1.0.
    assert normalizer.scales == (1.0,)
