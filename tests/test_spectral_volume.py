import pickle

import pytest
import torch
from safetensors.torch import save_file

from gid_pipeline.errors import GIDInputError
from gid_pipeline.spectral.volume import FORMAT_NAME, SpectralVolume


def test_save_load_round_trip(tmp_path):
    volume = SpectralVolume(torch.randn(16, 4, 10, 12), 150, 30.0)
    path = volume.save(tmp_path / "nested" / "motion.safetensors")
    loaded = SpectralVolume.load(path)
    assert torch.equal(loaded.spectrum, volume.spectrum)
    assert (loaded.num_frames, loaded.fps, loaded.size) == (150, 30.0, (10, 12))
    assert loaded.frequencies_hz[1] == pytest.approx(0.2)
    assert loaded.period_seconds == pytest.approx(5.0)
    assert [p.name for p in (tmp_path / "nested").iterdir()] == ["motion.safetensors"]  # no temp file left


def test_the_same_volume_gives_the_same_bytes_and_half_precision_loses_nothing_visible(tmp_path):
    volume = SpectralVolume(torch.randn(16, 4, 40, 64) * 8, 150, 30.0)
    first, again = volume.save(tmp_path / "a.safetensors"), volume.save(tmp_path / "b.safetensors")
    assert first.read_bytes() == again.read_bytes()
    half = volume.save(tmp_path / "half.safetensors", half=True)
    assert half.stat().st_size < 0.55 * first.stat().st_size
    loaded = SpectralVolume.load(half)
    assert loaded.spectrum.dtype == torch.float32
    assert float((loaded.spectrum - volume.spectrum).abs().max()) < 1 / 32  # pixels, for coefficients up to ~40 px


def test_resized_scales_amplitude():
    volume = SpectralVolume(torch.ones(4, 4, 10, 12), 30, 15.0)
    bigger = volume.resized(20, 24)
    assert bigger.size == (20, 24)
    assert torch.allclose(bigger.spectrum, torch.full_like(bigger.spectrum, 2.0))


def write_raw(path, tensor, metadata):
    save_file({"spectrum": tensor}, str(path), metadata)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.safetensors", "does not exist"),
        (lambda p: (p / "x.safetensors").write_bytes(pickle.dumps({"spectrum": 1})) and p / "x.safetensors",
         "not a safetensors"),
        (lambda p: (p / "t.safetensors").write_bytes(b"abc") and p / "t.safetensors", "not a safetensors"),
        (lambda p: write_raw(p / "o.safetensors", torch.zeros(4, 4, 2, 2), None), "not a gid_pipeline"),
        (lambda p: write_raw(p / "m.safetensors", torch.zeros(4, 4, 2, 2), {"format": FORMAT_NAME}),
         "num_frames"),
        (lambda p: write_raw(p / "n.safetensors", torch.full((4, 4, 2, 2), float("nan")),
                             {"format": FORMAT_NAME, "num_frames": "30", "fps": "30"}), "NaN"),
        (lambda p: write_raw(p / "s.safetensors", torch.zeros(4, 3, 2, 2),
                             {"format": FORMAT_NAME, "num_frames": "30", "fps": "30"}), r"\(K, 4, H, W\)"),
        (lambda p: write_raw(p / "k.safetensors", torch.zeros(20, 4, 2, 2),
                             {"format": FORMAT_NAME, "num_frames": "30", "fps": "30"}), "cannot come from"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, make, message):
    with pytest.raises(GIDInputError, match=message):
        SpectralVolume.load(make(tmp_path))
