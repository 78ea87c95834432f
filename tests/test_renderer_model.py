import pytest
import torch
from safetensors.torch import save_file

from gid_pipeline.errors import GIDInputError
from gid_pipeline.models.render_losses import (
    LOG_MSE_FLOOR,
    VGGPerceptual,
    gradient_l1,
    log_mse,
    render_loss,
    render_loss_terms,
    ssim,
)
from gid_pipeline.models.renderer import DEFAULT_SCALE_CHANNELS, SplatRenderer, resize_flow
from gid_pipeline.rendering.loop import render_frames
from gid_pipeline.rendering.splatting import motion_metric

HEIGHT, WIDTH = 40, 48
TINY = {"scale_channels": (4, 8, 8), "initial_temperature": 2.0}


pytestmark = pytest.mark.usefixtures("one_thread")


def make_model(trained: bool = False, seed: int = 0) -> SplatRenderer:
    """A tiny renderer; trained replaces the zero output layer by small random weights (an 'after training' model)."""
    torch.manual_seed(seed)
    model = SplatRenderer(**TINY)
    if trained:
        torch.nn.init.normal_(model.conv_out.weight, std=0.05)
        torch.nn.init.normal_(model.conv_out.bias, std=0.05)
    return model


def smooth_image(batch: int = 1, seed: int = 0) -> torch.Tensor:
    """(batch, 3, H, W) in [0, 1] with structure at several scales."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(batch, 3, HEIGHT // 4, WIDTH // 4, generator=generator)
    fine = torch.rand(batch, 3, HEIGHT, WIDTH, generator=generator)
    up = torch.nn.functional.interpolate(coarse, size=(HEIGHT, WIDTH), mode="bilinear", align_corners=False)
    return 0.7 * up + 0.3 * fine


def random_flow(frames: int, seed: int = 1, amplitude: float = 2.5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(frames, 2, HEIGHT, WIDTH, generator=generator) * amplitude


def metric_of(flow: torch.Tensor) -> torch.Tensor:
    return motion_metric(flow.unsqueeze(0))


def test_untrained_model_is_the_pixel_renderer():
    image, flow = smooth_image(), random_flow(3)
    with torch.no_grad():
        frames = make_model()(image, flow, metric_of(flow))
    expected = render_frames(image[0], flow, TINY["initial_temperature"] * metric_of(flow))
    torch.testing.assert_close(frames, expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("trained", [False, True])
def test_zero_motion_reproduces_the_input(trained):
    image = smooth_image(batch=2)
    flow = torch.zeros(2, 2, HEIGHT, WIDTH)
    with torch.no_grad():
        frames = make_model(trained)(image, flow, metric_of(flow))
    if trained:
        # A trained residual may move the frame, but not far (the check can fail: it is not the identity).
        assert (frames - image).abs().mean() < 0.1
    else:
        torch.testing.assert_close(frames, image, rtol=0, atol=1e-6)


def test_integer_shift_reproduces_the_shifted_image_away_from_borders():
    image = smooth_image()
    dx, dy = 3, -2
    flow = torch.zeros(2, 2, HEIGHT, WIDTH)
    flow[:, 0], flow[:, 1] = dx, dy
    with torch.no_grad():
        frames = make_model()(image, flow, metric_of(flow))
    shifted = torch.roll(image, shifts=(dy, dx), dims=(-2, -1))
    margin = 4
    inner = (slice(None), slice(None), slice(margin, -margin), slice(margin, -margin))
    torch.testing.assert_close(frames[inner], shifted.expand(2, -1, -1, -1)[inner], rtol=0, atol=1e-6)
    # The uncovered border strip is filled, not left black.
    assert frames[:, :, :, :dx].min() > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_output_shape_range_and_dtype(dtype):
    model = make_model(trained=True).to(dtype)
    image, flow = smooth_image().to(dtype), random_flow(4, amplitude=6.0).to(dtype)
    with torch.no_grad():
        frames = model(image, flow, metric_of(flow))
    assert frames.shape == (4, 3, HEIGHT, WIDTH)
    assert frames.dtype == dtype
    assert frames.min() >= 0 and frames.max() <= 1


def test_bfloat16_model_matches_float32():
    model, image, flow = make_model(trained=True), smooth_image(), random_flow(2)
    with torch.no_grad():
        full = model(image, flow, metric_of(flow))
        half = model.to(torch.bfloat16)(image.bfloat16(), flow.bfloat16(), metric_of(flow).bfloat16())
    assert half.dtype == torch.bfloat16
    assert (half.float() - full).abs().mean() < 0.02


def test_autocast_keeps_splatting_in_float32():
    model, image, flow = make_model(trained=True), smooth_image(), random_flow(2)
    with torch.no_grad():
        full = model(image, flow, metric_of(flow))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed = model(image, flow, metric_of(flow))
    assert mixed.dtype == torch.float32
    assert (mixed - full).abs().mean() < 0.02
    # Untrained, the residual is zero whatever the precision: autocast gives the pixel renderer exactly.
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        untrained = make_model()(image, flow, metric_of(flow))
    torch.testing.assert_close(untrained, render_frames(image[0], flow, 2.0 * metric_of(flow)), rtol=0, atol=1e-6)


def test_one_image_broadcasts_against_many_flows():
    model, image, flow = make_model(trained=True), smooth_image(), random_flow(3)
    with torch.no_grad():
        shared = model(image, flow, metric_of(flow))
        repeated = model(image.repeat(3, 1, 1, 1), flow, metric_of(flow).repeat(3, 1, 1, 1))
    torch.testing.assert_close(shared, repeated, rtol=0, atol=1e-6)


def test_save_and_load_round_trip_is_bit_identical(tmp_path):
    model, image, flow = make_model(trained=True), smooth_image(), random_flow(2)
    with torch.no_grad():
        model.temperature.fill_(1.25)
        before = model(image, flow, metric_of(flow))
    model.save_pretrained(tmp_path)
    loaded = SplatRenderer.from_pretrained(tmp_path)
    assert tuple(loaded.config.scale_channels) == model.config.scale_channels
    with torch.no_grad():
        after = loaded(image, flow, metric_of(flow))
    assert torch.equal(before, after)


def test_gradients_reach_every_parameter():
    # With conv_out at zero, no gradient passes it to earlier layers; a trained (non-zero) output layer does.
    model, image, flow = make_model(trained=True), smooth_image(), random_flow(2)
    target = torch.roll(image, shifts=(1, 2), dims=(-2, -1)).expand(2, -1, -1, -1)
    render_loss(model(image, flow, metric_of(flow)), target).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_zero_initialised_model_learns_only_through_the_output_layer_at_first():
    model, image, flow = make_model(), smooth_image(), random_flow(2)
    render_loss(model(image, flow, metric_of(flow)), image.expand(2, -1, -1, -1)).backward()
    assert model.conv_out.weight.grad.abs().sum() > 0
    assert model.encoder[0][0].weight.grad.abs().sum() == 0


def test_training_beats_the_pixel_renderer_on_a_disocclusion():
    # A red square moves right by 4 pixels over a smooth background. The strip it uncovers is a hole that the
    # pull-push fill smears red into; the target shows the background there. The untrained model is the pixel
    # renderer, which is exact everywhere else: L1 has a kink at that point, so the first Adam steps (which move
    # every output weight by ~lr) raise the loss before the decoder learns to act on holes only.
    ramp = torch.linspace(0.2, 0.6, WIDTH).view(1, 1, 1, WIDTH)
    background = (ramp + torch.tensor([0.0, 0.2, 0.3]).view(1, 3, 1, 1)).expand(1, 3, HEIGHT, WIDTH)
    red = torch.tensor([0.9, 0.1, 0.1]).view(1, 3, 1, 1)
    square = torch.zeros(1, 1, HEIGHT, WIDTH, dtype=torch.bool)
    square[..., 14:26, 14:26] = True
    image = torch.where(square, red, background)
    target = torch.where(torch.roll(square, shifts=4, dims=-1), red, background)
    flow = torch.zeros(1, 2, HEIGHT, WIDTH)
    flow[:, 0] = 4.0 * square[:, 0]
    metric = metric_of(flow)

    model = make_model()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(100):
        loss = render_loss(model(image, flow, metric), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    pixel_renderer = render_loss(render_frames(image[0], flow, 2.0 * metric), target).item()
    assert losses[0] == pytest.approx(pixel_renderer, rel=1e-5)
    assert min(losses[-10:]) < 0.5 * pixel_renderer


def test_every_scale_moves_by_the_flow_scaled_to_it():
    # A global shift of 4 pixels is 2 pixels at 1/2 scale and 1 at 1/4: each splatted feature map is its
    # unwarped map translated by that much, exactly (integer splats are exact), away from the uncovered border.
    model, image = make_model(trained=True), smooth_image()
    dx, dy = 4, -4
    flow = torch.zeros(1, 2, HEIGHT, WIDTH)
    flow[:, 0], flow[:, 1] = dx, dy
    with torch.no_grad():
        features = model.encode(image)
        _, warped, valids = model._splat_pyramid(image, features, flow, metric_of(flow))
    for level, feature in enumerate(features):
        step = 2**level
        shifted = torch.roll(feature, shifts=(dy // step, dx // step), dims=(-2, -1))
        inner = (slice(None), slice(None), slice(1, -1 - 4 // step), slice(1 + 4 // step, -1))
        torch.testing.assert_close(warped[level][:, : feature.shape[1]][inner], shifted[inner], rtol=0, atol=1e-5)
        assert valids[level][inner].all() and not valids[level][..., :, 0].any()


def test_resize_flow_scales_displacements_with_the_grid():
    flow = torch.ones(1, 2, HEIGHT, WIDTH)
    flow[:, 1] = -2.0
    small = resize_flow(flow, (HEIGHT // 2, WIDTH // 4))
    torch.testing.assert_close(small[:, 0], torch.full((1, HEIGHT // 2, WIDTH // 4), 0.25))
    torch.testing.assert_close(small[:, 1], torch.full((1, HEIGHT // 2, WIDTH // 4), -1.0))


def test_ssim_of_identical_images_is_one_and_the_loss_zero():
    image = smooth_image(batch=2)
    torch.testing.assert_close(ssim(image, image), torch.tensor(1.0), rtol=0, atol=1e-6)
    assert render_loss(image, image).item() == pytest.approx(0.0, abs=1e-6)


def test_losses_grow_with_the_error():
    image = smooth_image()
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(5))
    slightly, badly = (image + 0.02 * noise).clamp(0, 1), (image + 0.2 * noise).clamp(0, 1)
    assert 1.0 > ssim(slightly, image) > ssim(badly, image)
    assert 0 < gradient_l1(slightly, image) < gradient_l1(badly, image)
    assert 0 < render_loss(slightly, image) < render_loss(badly, image)


def test_perceptual_hook_is_added_with_its_weight():
    image, other = smooth_image(seed=0), smooth_image(seed=1)
    base = render_loss(other, image)
    with_hook = render_loss(other, image, perceptual=lambda p, t: torch.tensor(2.0), perceptual_weight=0.5)
    torch.testing.assert_close(with_hook, base + 1.0)


@pytest.mark.parametrize(
    "image_shape, flow_shape, metric_shape",
    [
        ((1, 3, HEIGHT, WIDTH), (2, 3, HEIGHT, WIDTH), (1, 1, HEIGHT, WIDTH)),  # flow with 3 channels
        ((1, 4, HEIGHT, WIDTH), (2, 2, HEIGHT, WIDTH), (1, 1, HEIGHT, WIDTH)),  # RGBA image
        ((3, 3, HEIGHT, WIDTH), (2, 2, HEIGHT, WIDTH), (1, 1, HEIGHT, WIDTH)),  # batch neither 1 nor B
        ((1, 3, HEIGHT, WIDTH), (2, 2, HEIGHT, WIDTH - 1), (1, 1, HEIGHT, WIDTH)),  # size mismatch
        ((1, 3, HEIGHT, WIDTH), (2, 2, HEIGHT, WIDTH), (1, HEIGHT, WIDTH)),  # metric without a channel
        ((3, HEIGHT, WIDTH), (2, 2, HEIGHT, WIDTH), (1, 1, HEIGHT, WIDTH)),  # unbatched image
    ],
)
def test_bad_shapes_raise(image_shape, flow_shape, metric_shape):
    with pytest.raises(GIDInputError, match=r"\("):
        make_model()(torch.rand(image_shape), torch.zeros(flow_shape), torch.zeros(metric_shape))


def test_bad_loss_inputs_raise():
    with pytest.raises(GIDInputError):
        render_loss(torch.rand(1, 3, 20, 20), torch.rand(1, 3, 20, 21))
    with pytest.raises(GIDInputError):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


def test_render_with_precomputed_features_equals_forward():
    model, image, flow = make_model(trained=True), smooth_image(), random_flow(3)
    with torch.no_grad():
        features = model.encode(image)
        torch.testing.assert_close(model.render(image, features, flow, metric_of(flow)),
                                   model(image, flow, metric_of(flow)), rtol=0, atol=0)  # fmt: skip
        with pytest.raises(GIDInputError, match="encode"):
            model.render(image, features[:2], flow, metric_of(flow))


def test_default_config_has_four_scales_and_is_the_pixel_renderer_untrained():
    model = SplatRenderer()
    assert model.config.scale_channels == DEFAULT_SCALE_CHANNELS and len(model.decoder) == 4
    image, flow = smooth_image(), random_flow(2)
    with torch.no_grad():
        frames = model(image, flow, metric_of(flow))
    torch.testing.assert_close(frames, render_frames(image[0], flow, 2.0 * metric_of(flow)), rtol=0, atol=1e-6)


def test_loss_terms_add_up_to_the_loss():
    image, other = smooth_image(seed=0), smooth_image(seed=1)
    terms = render_loss_terms(other, image, ssim_weight=0.5, gradient_weight=2.0)
    torch.testing.assert_close(terms.total, terms.l1 + 0.5 * (1 - terms.ssim) + 2.0 * terms.gradient)
    torch.testing.assert_close(terms.total, render_loss(other, image, ssim_weight=0.5, gradient_weight=2.0))
    assert terms.perceptual is None
    weighted = render_loss_terms(other, image, ssim_weight=0.5, gradient_weight=2.0, log_mse_weight=0.05)
    torch.testing.assert_close(weighted.total, terms.total + 0.05 * terms.log_mse)


def test_log_mse_is_minus_the_mean_psnr_over_ten():
    """Per frame, not pooled: an easy frame counts as much as a hard one, as in the evaluation's mean PSNR."""
    target = torch.zeros(2, 3, 8, 8)
    prediction = target.clone()
    prediction[0] += 0.1  # MSE 1e-2: 20 dB
    prediction[1] += 0.001  # MSE 1e-6: 60 dB
    torch.testing.assert_close(log_mse(prediction, target), torch.tensor(-4.0))
    assert log_mse(target, target).item() == pytest.approx(torch.log10(torch.tensor(LOG_MSE_FLOOR)).item())
    # Halving the easy frame's error gains as much as halving the hard frame's: 10 log10(4) dB on one frame.
    easier, harder = prediction.clone(), prediction.clone()
    easier[1] = 0.0005
    harder[0] = 0.05
    torch.testing.assert_close(log_mse(easier, target), log_mse(harder, target))


def vgg_file(tmp_path, prefix: str = "features.") -> str:
    """Random VGG-16 'features' weights in torchvision's layout, with one extra deeper layer to be ignored."""
    generator = torch.Generator().manual_seed(0)
    state, channels, index = {}, 3, 0
    for spec in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512):
        if spec == "M":
            index += 1
            continue
        state[f"{prefix}{index}.weight"] = torch.randn(spec, channels, 3, 3, generator=generator) * 0.05
        state[f"{prefix}{index}.bias"] = torch.zeros(spec)
        channels, index = spec, index + 2
    path = tmp_path / "vgg16.safetensors"
    save_file(state, path)
    return path


@pytest.mark.parametrize("prefix", ["features.", ""])
def test_vgg_perceptual_term_loads_local_weights(tmp_path, prefix):
    perceptual = VGGPerceptual.from_file(vgg_file(tmp_path, prefix))
    image, other = smooth_image(seed=0), smooth_image(seed=1)
    assert perceptual(image, image).item() == 0.0
    assert perceptual(other, image).item() > 0.0
    terms = render_loss_terms(other, image, perceptual=perceptual, perceptual_weight=0.1)
    torch.testing.assert_close(terms.total, render_loss(other, image) + 0.1 * terms.perceptual)
    assert not any(parameter.requires_grad for parameter in perceptual.parameters())


def test_vgg_perceptual_refuses_missing_or_foreign_weights(tmp_path):
    with pytest.raises(GIDInputError, match="do not exist"):
        VGGPerceptual.from_file(tmp_path / "absent.safetensors")
    save_file({"conv.weight": torch.zeros(1)}, tmp_path / "other.safetensors")
    with pytest.raises(GIDInputError, match="not VGG-16"):
        VGGPerceptual.from_file(tmp_path / "other.safetensors")
