import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gid_pipeline.errors import GIDInputError
from gid_pipeline.rendering.splatting import SPLAT_MODES, motion_metric, splat


def reference_splat(values: torch.Tensor, flow: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Plain scatter-add bilinear splatting (summation of values * weights), for comparison."""
    batch, channels, height, width = values.shape
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    tx, ty = xs + flow[:, 0], ys + flow[:, 1]
    x0, y0 = tx.floor(), ty.floor()
    fx, fy = tx - x0, ty - y0
    weighted = values if weights is None else values * weights
    out = torch.zeros(batch, channels, height * width, dtype=values.dtype)
    for dx, dy, w in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xx, yy = x0.long() + dx, y0.long() + dy
        inside = (xx >= 0) & (xx < width) & (yy >= 0) & (yy < height)
        index = (yy.clamp(0, height - 1) * width + xx.clamp(0, width - 1)).flatten(1)
        contribution = (weighted * (w * inside).unsqueeze(1)).flatten(2)
        out.scatter_add_(2, index.unsqueeze(1).expand(-1, channels, -1), contribution)
    return out.view(batch, channels, height, width)


@pytest.mark.parametrize("mode", SPLAT_MODES)
@pytest.mark.parametrize("shift", [(2, -1), (-3, 0), (0, 4)])
def test_integer_shift_is_exact_translation(mode, shift):
    values = torch.rand(2, 3, 33, 47)
    flow = torch.zeros(2, 2, 33, 47)
    flow[:, 0], flow[:, 1] = shift
    metric = torch.rand(2, 1, 33, 47)
    out, valid = splat(values, flow, metric, mode, return_valid=True)
    dx, dy = shift
    expected = torch.zeros_like(values)
    expected_valid = torch.zeros(2, 1, 33, 47, dtype=torch.bool)
    ys_out = slice(max(dy, 0), 33 + min(dy, 0))
    xs_out = slice(max(dx, 0), 47 + min(dx, 0))
    ys_in = slice(max(-dy, 0), 33 + min(-dy, 0))
    xs_in = slice(max(-dx, 0), 47 + min(-dx, 0))
    expected[..., ys_out, xs_out] = values[..., ys_in, xs_in]
    expected_valid[..., ys_out, xs_out] = True
    assert torch.equal(valid, expected_valid)
    assert torch.allclose(out, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("size", [(160, 256), (97, 131), (240, 320)])
def test_zero_flow_is_bit_exact_identity(size):
    values = torch.rand(1, 3, *size)
    metric = torch.rand(1, 1, *size) * 50
    assert torch.equal(splat(values, torch.zeros(1, 2, *size), mode="summation"), values)
    out = splat(values, torch.zeros(1, 2, *size), metric, "softmax")
    assert torch.allclose(out, values, atol=1e-6, rtol=0)


def test_matches_scatter_add_reference():
    values = torch.rand(3, 4, 20, 25, dtype=torch.float64)
    flow = torch.randn(3, 2, 20, 25, dtype=torch.float64) * 3
    metric = torch.randn(3, 1, 20, 25, dtype=torch.float64)
    assert torch.allclose(splat(values, flow, mode="summation"), reference_splat(values, flow, None), atol=1e-10)
    weights = torch.exp(metric - metric.amax(dim=(-2, -1), keepdim=True))
    numerator = reference_splat(values, flow, weights)
    denominator = reference_splat(torch.ones_like(metric), flow, weights)
    expected = torch.where(denominator > 0, numerator / denominator.clamp_min(1e-300), 0)
    out, valid = splat(values, flow, metric, "softmax", return_valid=True)
    assert torch.allclose(out[valid.expand_as(out)], expected[valid.expand_as(out)], atol=1e-8)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), magnitude=st.floats(0.0, 3.0))
def test_summation_conserves_mass_inside(seed, magnitude):
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(2, 3, 24, 30, generator=generator, dtype=torch.float64)
    flow = (torch.rand(2, 2, 24, 30, generator=generator, dtype=torch.float64) * 2 - 1) * magnitude
    # Keep every splat inside the image: pad the values' border with zeros.
    values[..., :4, :], values[..., -4:, :], values[..., :4], values[..., -4:] = 0, 0, 0, 0
    out = splat(values, flow, mode="summation")
    assert torch.allclose(out.sum(dim=(-2, -1)), values.sum(dim=(-2, -1)), rtol=1e-10)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), mode=st.sampled_from(["average", "linear", "softmax"]))
def test_normalised_modes_preserve_constants(seed, mode):
    generator = torch.Generator().manual_seed(seed)
    flow = torch.randn(1, 2, 16, 16, generator=generator) * 2
    metric = torch.rand(1, 1, 16, 16, generator=generator) * 5
    out, valid = splat(torch.full((1, 2, 16, 16), 0.7), flow, metric, mode, return_valid=True)
    assert torch.allclose(out[valid.expand_as(out)], torch.tensor(0.7), atol=1e-5)
    assert torch.all(out[~valid.expand_as(out)] == 0)


def test_softmax_puts_larger_metric_in_front():
    values = torch.zeros(1, 1, 5, 5)
    values[0, 0, 2, 1], values[0, 0, 2, 3] = 1.0, -1.0
    flow = torch.zeros(1, 2, 5, 5)
    flow[0, 0, 2, 1], flow[0, 0, 2, 3] = 1.0, -1.0  # both land on (2, 2)
    metric = torch.zeros(1, 1, 5, 5)
    metric[0, 0, 2, 1] = 20.0
    out = splat(values, flow, metric, "softmax")
    assert out[0, 0, 2, 2] == pytest.approx(1.0, abs=1e-6)
    assert splat(values, flow, metric, "average")[0, 0, 2, 2] == pytest.approx(0.0, abs=1e-6)


def test_softmax_is_stable_for_huge_metrics():
    values = torch.rand(1, 3, 12, 12)
    flow = torch.randn(1, 2, 12, 12)
    metric = torch.rand(1, 1, 12, 12) * 1e4 + 1e6
    out = splat(values, flow, metric, "softmax")
    assert torch.isfinite(out).all()
    assert out.max() <= 1.0 + 1e-5


def test_holes_are_marked():
    values = torch.rand(1, 3, 10, 10)
    flow = torch.zeros(1, 2, 10, 10)
    flow[..., 3:6] = torch.tensor([3.0, 0.0]).view(1, 2, 1, 1)  # columns 3-5 move 3 px right
    _, valid = splat(values, flow, mode="average", return_valid=True)
    assert not valid[0, 0, :, 3:6].any()
    assert valid[0, 0, :, :3].all() and valid[0, 0, :, 6:].all()


@pytest.mark.parametrize("mode", SPLAT_MODES)
def test_gradients_match_finite_differences(mode):
    generator = torch.Generator().manual_seed(3)
    values = torch.rand(2, 2, 6, 7, dtype=torch.float64, generator=generator).requires_grad_()
    # Keep target positions away from pixel centres, where bilinear weights have kinks.
    flow = (torch.rand(2, 2, 6, 7, dtype=torch.float64, generator=generator) * 0.8 + 0.1).requires_grad_()
    metric = torch.rand(2, 1, 6, 7, dtype=torch.float64, generator=generator).requires_grad_()
    inputs = (values, flow, metric) if mode in ("linear", "softmax") else (values, flow)
    assert torch.autograd.gradcheck(lambda *args: splat(*args, mode=mode), inputs)


def test_chunking_does_not_change_results():
    values, flow = torch.rand(11, 3, 9, 13), torch.randn(11, 2, 9, 13)
    metric = torch.rand(11, 1, 9, 13)
    assert torch.equal(splat(values, flow, metric, chunk_size=3), splat(values, flow, metric, chunk_size=None))


def test_shared_metric_broadcasts():
    values, flow = torch.rand(4, 3, 9, 13), torch.randn(4, 2, 9, 13)
    metric = torch.rand(1, 1, 9, 13)
    assert torch.equal(splat(values, flow, metric), splat(values, flow, metric.expand(4, -1, -1, -1)))


def test_motion_metric():
    displacements = torch.zeros(4, 2, 3, 3)
    displacements[:, 0] = 3.0
    displacements[:, 1] = 4.0
    assert torch.allclose(motion_metric(displacements, temperature=2.0), torch.full((1, 3, 3), 10.0))


def test_bad_input():
    values, flow = torch.rand(1, 3, 8, 8), torch.zeros(1, 2, 8, 8)
    with pytest.raises(GIDInputError, match="unknown splatting mode"):
        splat(values, flow, mode="max")
    with pytest.raises(GIDInputError, match="needs a metric"):
        splat(values, flow, mode="softmax")
    with pytest.raises(GIDInputError, match="differ"):
        splat(values, torch.zeros(1, 2, 8, 9), mode="average")
    with pytest.raises(GIDInputError, match="non-negative"):
        splat(values, flow, -torch.ones(1, 1, 8, 8), mode="linear")
