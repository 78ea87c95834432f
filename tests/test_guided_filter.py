"""Photo-guided resampling of spectral volumes (spectral.guided) and the pipeline's use of it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from gid_pipeline import GIDInputError
from gid_pipeline.spectral.guided import (
    box_mean,
    guided_filter,
    guided_filter_coefficients,
    guided_resize_spectrum,
    luma,
)
from gid_pipeline.spectral.transform import amplitude, resize_spectrum


@pytest.mark.parametrize(("height", "width", "radius"), [(20, 33, 3), (7, 5, 4), (16, 16, 0), (9, 40, 12)])
def test_box_mean_is_the_window_mean_clipped_at_the_borders(height, width, radius):
    values = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    side = 2 * radius + 1
    padded = F.pad(values, (radius,) * 4)
    counts = F.pad(torch.ones(1, 1, height, width), (radius,) * 4)
    sums = F.avg_pool2d(padded, side, stride=1) * side**2
    expected = sums / (F.avg_pool2d(counts, side, stride=1) * side**2)
    torch.testing.assert_close(box_mean(values, radius), expected, atol=1e-5, rtol=1e-5)


def _guide(height: int = 24, width: int = 40) -> torch.Tensor:
    return torch.rand(2, 1, height, width, generator=torch.Generator().manual_seed(1))


def test_the_filter_keeps_constants_and_affine_functions_of_the_guide():
    guide = _guide()
    constant = torch.full((2, 3, 24, 40), -1.75)
    torch.testing.assert_close(guided_filter(constant, guide, 3, 1e-3), constant)
    affine = torch.cat([3.0 * guide + 1.0, -2.0 * guide, 0.5 - guide], dim=1)
    torch.testing.assert_close(guided_filter(affine, guide, 3, 1e-9), affine, atol=1e-4, rtol=0)


def test_the_filter_is_linear_in_the_values_so_complex_coefficients_keep_their_phase():
    guide = _guide()
    generator = torch.Generator().manual_seed(2)
    first, second = torch.randn(2, 4, 24, 40, generator=generator), torch.randn(2, 4, 24, 40, generator=generator)
    combined = guided_filter(2.0 * first - 0.5 * second, guide, 4, 1e-3)
    torch.testing.assert_close(combined, 2.0 * guided_filter(first, guide, 4, 1e-3)
                               - 0.5 * guided_filter(second, guide, 4, 1e-3), atol=1e-5, rtol=1e-5)  # fmt: skip
    assert float(guided_filter(torch.zeros(2, 4, 24, 40), guide, 4, 1e-3).abs().max()) == 0.0


def test_a_flat_guide_only_smooths():
    values = torch.randn(1, 2, 24, 40, generator=torch.Generator().manual_seed(3))
    slope, offset = guided_filter_coefficients(values, torch.full((1, 1, 24, 40), 0.4), 2, 1e-3)
    assert float(slope.abs().max()) < 1e-4
    torch.testing.assert_close(offset, box_mean(box_mean(values, 2), 2), atol=1e-5, rtol=1e-5)


def _step_scene(height: int = 64, width: int = 128) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A bright left half that moves (1 px in x at every frequency), a dark still right half; the motion as the
    8x8-cell autoencoder decodes it (cell averages, bilinear up)."""
    guide = torch.full((1, 1, height, width), 0.1)
    guide[..., : width // 2 - 4] = 0.9  # the edge falls inside an 8-pixel cell
    spectrum = torch.zeros(1, 3, 4, height, width)
    spectrum[:, :, 0, :, : width // 2 - 4] = 1.0
    decoded = F.interpolate(F.avg_pool2d(spectrum.flatten(1, 2), 8), scale_factor=8, mode="bilinear")
    return guide, spectrum, decoded.unflatten(1, (3, 4))


def test_motion_steps_at_the_photos_edge():
    """Bilinear decoding ramps the motion down over a cell on each side of the edge; guided, it steps at the edge
    (what is left is a faint tail a window long: the filter's known halo)."""
    guide, truth, decoded = _step_scene()
    edge = guide.shape[-1] // 2 - 4  # first still column
    plain = amplitude(decoded)[0, 0].mean(dim=0)
    guided = amplitude(guided_resize_spectrum(decoded, guide, radius=16))[0, 0].mean(dim=0)
    assert float(plain[edge - 1] - plain[edge]) < 0.1 < 0.4 < float(guided[edge - 1] - guided[edge])
    assert float(guided[edge : edge + 6].mean()) < 0.6 * float(plain[edge : edge + 6].mean())  # still side
    assert float(guided[edge - 8 : edge].mean()) > float(plain[edge - 8 : edge].mean())  # moving side
    assert float(guided[: edge - 8].mean()) == pytest.approx(float(amplitude(truth)[0, 0, :, : edge - 8].mean()),
                                                            rel=0.1)  # fmt: skip
    assert float(guided[edge + 40 :].max()) < 0.01


def test_resampling_scales_displacements_like_resize_spectrum():
    generator = torch.Generator().manual_seed(4)
    spectrum = torch.randn(2, 3, 4, 20, 32, generator=generator)
    constant = torch.ones(2, 3, 4, 20, 32) * torch.tensor([1.0, -2.0, 0.5, 3.0]).view(1, 1, 4, 1, 1)
    guide = torch.rand(2, 1, 40, 96, generator=generator)
    torch.testing.assert_close(guided_resize_spectrum(constant, guide, 4),
                               resize_spectrum(constant, (40, 96)), atol=1e-4, rtol=1e-4)  # fmt: skip
    resized = guided_resize_spectrum(spectrum, guide, 4)
    assert resized.shape == (2, 3, 4, 40, 96)
    same_grid = torch.rand(2, 1, 20, 32, generator=generator)
    torch.testing.assert_close(guided_resize_spectrum(spectrum, same_grid, 3, 1e-3, subsampling=1),
                               guided_filter(spectrum.flatten(1, 2), same_grid, 3, 1e-3).unflatten(1, (3, 4)))


def test_luma_and_bad_input():
    images = torch.zeros(1, 3, 2, 2)
    images[:, 1] = 1.0
    torch.testing.assert_close(luma(images), torch.full((1, 1, 2, 2), 0.587))
    with pytest.raises(GIDInputError, match="RGB"):
        luma(torch.zeros(1, 1, 2, 2))
    with pytest.raises(GIDInputError, match="eps"):
        guided_filter(torch.zeros(1, 2, 8, 8), torch.zeros(1, 1, 8, 8), 2, 0.0)
    with pytest.raises(GIDInputError, match="differ in size"):
        guided_filter(torch.zeros(1, 2, 8, 8), torch.zeros(1, 1, 8, 9), 2, 1e-3)
    with pytest.raises(GIDInputError, match="radius"):
        box_mean(torch.zeros(4, 4), -1)
    with pytest.raises(GIDInputError, match="spectral volumes"):
        guided_resize_spectrum(torch.zeros(1, 2, 3, 8, 8), torch.zeros(1, 1, 8, 8), 2)
    with pytest.raises(GIDInputError, match="guide"):
        guided_resize_spectrum(torch.zeros(2, 2, 4, 8, 8), torch.zeros(1, 1, 8, 8), 2)
    with pytest.raises(GIDInputError, match="radius >= 1"):
        guided_resize_spectrum(torch.zeros(1, 2, 4, 8, 8), torch.zeros(1, 1, 8, 8), 0)


def test_the_pipeline_resamples_with_the_photo_when_the_checkpoint_says_so(tmp_path):
    """With guided_filter_radius the volume on the output grid is the model-grid volume resampled with the photo
    (and nothing else changes); save/load keeps the setting; bad settings are refused."""
    from test_pipeline import get_dummy_components, get_dummy_inputs

    from gid_pipeline import GIDPipeline
    from gid_pipeline.models.spectral_vae import decode_latents

    GIDPipeline(**get_dummy_components(), guided_filter_radius=8, guided_filter_eps=1e-2).save_pretrained(tmp_path)
    pipe = GIDPipeline.from_pretrained(tmp_path)
    pipe.set_progress_bar_config(disable=True)
    assert (pipe.config.guided_filter_radius, pipe.config.guided_filter_eps) == (8, 1e-2)
    assert GIDPipeline(**get_dummy_components()).config.guided_filter_radius == 0
    captured = {}

    def callback(pipeline, step, timestep, tensors):
        captured["latents"] = tensors["latents"]
        return {}

    inputs = get_dummy_inputs(height=64, output_type="spectrum", callback_on_step_end=callback)
    out = pipe(**inputs).spectral_volumes[0].spectrum
    model = pipe.normalizer.denormalize(decode_latents(pipe.vae, captured["latents"]))  # (1, K, 4, 32, 48)
    photo = pipe.preprocess_image(inputs["image"], 64, None)
    torch.testing.assert_close(out, guided_resize_spectrum(model, luma(photo), 8, 1e-2)[0])
    assert not torch.allclose(out, resize_spectrum(model, (64, 96))[0], atol=1e-4)
    for bad in ({"guided_filter_radius": -1}, {"guided_filter_radius": 2.5}, {"guided_filter_radius": 100},
                {"guided_filter_eps": 0.0}, {"guided_filter_eps": float("nan")}):  # fmt: skip
        with pytest.raises(GIDInputError, match=next(iter(bad))):
            GIDPipeline(**get_dummy_components(), **bad)
