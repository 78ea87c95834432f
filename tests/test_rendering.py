import math

import pytest
import torch

from gid_pipeline.errors import GIDInputError
from gid_pipeline.models.renderer import SplatRenderer
from gid_pipeline.rendering.fill import pull_push_fill
from gid_pipeline.rendering.loop import (
    STILL_BLEND_PX,
    fit_spectrum_to_image,
    iter_loop_frames,
    loop_motion_magnitude,
    render_frames,
    render_loop,
    softmax_metric,
)
from gid_pipeline.spectral.transform import motion_to_spectrum, spectrum_to_motion

pytestmark = pytest.mark.usefixtures("one_thread")


def swaying_spectrum(height=40, width=48, num_frames=30, amplitude_px=2.0) -> torch.Tensor:
    """A block in the middle sways left-right once per period; the rest is still."""
    t = torch.arange(num_frames, dtype=torch.float32)
    motion = torch.zeros(num_frames, 2, height, width)
    motion[:, 0, 10:30, 14:34] = (amplitude_px * torch.sin(2 * math.pi * t / num_frames)).view(-1, 1, 1)
    return motion_to_spectrum(motion, 8)


def test_pull_push_keeps_known_pixels_and_fills_holes():
    image = torch.rand(2, 3, 37, 53)
    valid = torch.rand(2, 1, 37, 53) > 0.3
    filled = pull_push_fill(image, valid)
    known = valid.expand_as(image)
    assert torch.equal(filled[known], image[known])
    assert torch.isfinite(filled).all()


def test_pull_push_fills_constant_with_constant():
    image = torch.full((1, 3, 32, 32), 0.25)
    valid = torch.ones(1, 1, 32, 32, dtype=torch.bool)
    valid[..., 8:20, 5:25] = False
    image[~valid.expand_as(image)] = 0
    assert torch.allclose(pull_push_fill(image, valid), torch.full_like(image, 0.25), atol=1e-6)


def test_pull_push_fill_is_smooth_blend_of_surroundings():
    image = torch.zeros(1, 1, 16, 32)
    image[..., :16] = 1.0
    valid = torch.ones(1, 1, 16, 32, dtype=torch.bool)
    valid[..., 12:20] = False
    filled = pull_push_fill(image * valid, valid)[0, 0, 8]
    hole = filled[12:20]
    assert torch.all(hole[:-1] >= hole[1:] - 1e-6)  # monotone from the bright side to the dark side
    assert 0.0 < hole.mean() < 1.0


def test_loop_is_exactly_periodic_and_starts_at_the_image():
    image = torch.rand(3, 40, 48)
    spectrum = swaying_spectrum()
    frames = render_loop(image, spectrum, 30)
    assert frames.shape == (30, 3, 40, 48)
    assert torch.allclose(frames[0], image, atol=1e-6)
    # Frame T (the one after the last) is frame 0 again: render it through the same path.
    chunk = render_frames(
        image, spectrum_to_motion(spectrum, 30, frame_indices=torch.tensor([30.0])), softmax_metric(
            loop_motion_magnitude(spectrum, 30)
        )
    )
    assert torch.allclose(chunk[0], frames[0], atol=1e-6)
    assert (frames[7] - image).abs().max() > 0.05  # it does move


def test_still_regions_stay_still_and_moving_ones_move():
    image = torch.rand(3, 40, 48)
    frames = render_loop(image, swaying_spectrum(), 30)
    still = frames[:, :, :, :8]
    assert torch.allclose(still, image[:, :, :8].expand_as(still), atol=1e-6)
    assert (frames[:, :, 15:25, 20:28] - image[:, 15:25, 20:28]).abs().amax() > 0.1


def test_streaming_matches_batch_and_chunking_is_invisible():
    image, spectrum = torch.rand(3, 40, 48), swaying_spectrum()
    chunks = list(iter_loop_frames(image, spectrum, 30, chunk_size=7))
    assert [c.shape[0] for c in chunks] == [7, 7, 7, 7, 2]
    assert torch.allclose(torch.cat(chunks), render_loop(image, spectrum, 30, chunk_size=30), atol=1e-6)


def test_a_still_volume_gives_a_still_video():
    image = torch.rand(3, 40, 48)
    frames = render_loop(image, 0.0 * swaying_spectrum(), 30)
    assert torch.allclose(frames, image.expand_as(frames), atol=1e-6)


def test_spectrum_at_other_resolution_is_scaled():
    spectrum = swaying_spectrum(40, 48)
    resized = fit_spectrum_to_image(spectrum, 80, 96)
    assert resized.shape[-2:] == (80, 96)
    peak, resized_peak = loop_motion_magnitude(spectrum, 30).max(), loop_motion_magnitude(resized, 30).max()
    assert float(resized_peak) == pytest.approx(2 * float(peak), rel=0.05)
    with pytest.raises(GIDInputError, match="aspect ratios differ"):
        fit_spectrum_to_image(spectrum, 40, 96)


def test_render_frames_size_mismatch():
    with pytest.raises(GIDInputError, match="motion is"):
        render_frames(torch.rand(3, 10, 10), torch.zeros(2, 2, 10, 12))


def test_bad_frame_count():
    with pytest.raises(GIDInputError, match="num_frames"):
        render_loop(torch.rand(3, 40, 48), swaying_spectrum(), 0)


def tiny_renderer(trained: bool = True, seed: int = 0) -> SplatRenderer:
    """A tiny learned renderer; trained replaces the zero output layer by small random weights."""
    torch.manual_seed(seed)
    model = SplatRenderer(scale_channels=(4, 8, 8)).eval()
    if trained:
        torch.nn.init.normal_(model.conv_out.weight, std=0.05)
        torch.nn.init.normal_(model.conv_out.bias, std=0.05)
    return model


def test_learned_renderer_loop_starts_at_the_image_and_keeps_shapes():
    image, spectrum = torch.rand(3, 40, 48), swaying_spectrum()
    frames = render_loop(image, spectrum, 30, renderer=tiny_renderer())
    assert frames.shape == (30, 3, 40, 48) and frames.dtype == torch.float32
    assert torch.equal(frames[0], image)  # F_0 = 0 is pinned: frame 0 is the image, exactly
    assert frames.min() >= 0 and frames.max() <= 1
    assert (frames[7] - image).abs().max() > 0.05


def test_learned_renderer_loop_chunking_is_invisible():
    image, spectrum, renderer = torch.rand(3, 40, 48), swaying_spectrum(), tiny_renderer()
    chunks = list(iter_loop_frames(image, spectrum, 30, chunk_size=7, renderer=renderer))
    assert [c.shape[0] for c in chunks] == [7, 7, 7, 7, 2]
    whole = render_loop(image, spectrum, 30, chunk_size=30, renderer=renderer)
    torch.testing.assert_close(torch.cat(chunks), whole, rtol=0, atol=1e-5)


def test_learned_renderer_loop_renders_each_frame_with_the_model():
    image, spectrum, renderer = torch.rand(3, 40, 48), swaying_spectrum(), tiny_renderer()
    frames = render_loop(image, 1.5 * spectrum, 30, renderer=renderer)
    motion = spectrum_to_motion(1.5 * spectrum, 30, frame_indices=torch.tensor([4.0, 11.0]))
    metric = loop_motion_magnitude(1.5 * spectrum, 30).unsqueeze(0)
    with torch.no_grad():
        rendered = renderer(image.unsqueeze(0), motion, metric)
        still_error = image - renderer(image.unsqueeze(0), torch.zeros(1, 2, 40, 48), metric)[0]
    # The model's frame, plus its own error on the still photo where a pixel moves less than STILL_BLEND_PX.
    stillness = (1.0 - motion.norm(dim=1, keepdim=True) / STILL_BLEND_PX).clamp(min=0.0)
    expected = (rendered + still_error * stillness).clamp(0, 1)
    torch.testing.assert_close(frames[[4, 11]], expected, rtol=0, atol=1e-5)
    fast = motion.norm(dim=1, keepdim=True).expand_as(rendered) >= STILL_BLEND_PX
    assert bool(fast.any())
    torch.testing.assert_close(frames[[4, 11]][fast], rendered.clamp(0, 1)[fast], rtol=0, atol=1e-5)
    # Untrained, the learned renderer is the pixel renderer with metric temperature * W.
    untrained = render_loop(image, spectrum, 30, renderer=tiny_renderer(trained=False))
    pixel = render_frames(image, spectrum_to_motion(spectrum, 30), 2.0 * loop_motion_magnitude(spectrum, 30)[None])
    torch.testing.assert_close(untrained, pixel.clamp(0, 1), rtol=0, atol=1e-5)


def test_learned_renderer_still_video_is_the_image():
    image = torch.rand(3, 40, 48)
    frames = render_loop(image, 0.0 * swaying_spectrum(), 30, renderer=tiny_renderer())
    assert torch.equal(frames, image.expand_as(frames))


def test_learned_renderer_in_bfloat16_gives_float32_frames_close_to_float32():
    image, spectrum = torch.rand(3, 40, 48), swaying_spectrum()
    full = render_loop(image, spectrum, 30, renderer=tiny_renderer())
    half = render_loop(image, spectrum, 30, renderer=tiny_renderer().to(torch.bfloat16))
    assert half.dtype == torch.float32
    assert (half - full).abs().mean() < 0.02
