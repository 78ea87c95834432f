"""Guidance math: classifier-free guidance, prediction-type conversions, motion self-guidance loss."""

from __future__ import annotations

import math

import pytest
import torch

from gid_pipeline import GIDInputError
from gid_pipeline.guidance import (
    alpha_sigma,
    classifier_free_guidance,
    from_epsilon,
    latent_gradient,
    motion_step_statistics,
    predicted_sample,
    seam_step,
    self_guidance_loss,
    self_guided_epsilon,
    to_epsilon,
)
from gid_pipeline.spectral.transform import motion_to_spectrum, spectrum_to_motion
from gid_pipeline.training.train_unet import make_noise_scheduler

pytestmark = pytest.mark.usefixtures("one_thread")


def cosine_spectrum(amplitude: float, bin_index: int, num_frames: int, size: tuple[int, int] = (6, 7)) -> torch.Tensor:
    """(K=4, 4, H, W) spectrum of F_t = amplitude * (cos(2 pi k t / T) - 1) in x, uniform over the image."""
    t = torch.arange(num_frames, dtype=torch.float64)
    x = amplitude * (torch.cos(2 * math.pi * bin_index * t / num_frames) - 1.0)
    motion = torch.zeros(num_frames, 2, *size, dtype=torch.float64)
    motion[:, 0] = x.view(-1, 1, 1)
    return motion_to_spectrum(motion, num_frequencies=4)


def test_classifier_free_guidance():
    cond, uncond = torch.randn(2, 3), torch.randn(2, 3)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 1.0), cond)
    assert torch.equal(classifier_free_guidance(cond, uncond, 0.0), uncond)
    # The paper's (1 + w) cond - w uncond is scale 1 + w.
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 2.75), 2.75 * cond - 1.75 * uncond)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction", "sample"])
def test_prediction_conversions_agree_with_the_scheduler(prediction_type):
    scheduler = make_noise_scheduler("v_prediction")
    generator = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(2, 4, 3, 5, 5, generator=generator), torch.randn(2, 4, 3, 5, 5, generator=generator)
    for t in (0, 321, 999):
        timesteps = torch.tensor([t, t])
        noisy = scheduler.add_noise(x0, noise, timesteps)
        alpha, sigma = alpha_sigma(scheduler.alphas_cumprod, torch.tensor(t))
        assert alpha == pytest.approx(float(scheduler.alphas_cumprod[t]) ** 0.5)
        assert alpha**2 + sigma**2 == pytest.approx(1.0)
        prediction = {"epsilon": noise, "sample": x0,
                      "v_prediction": scheduler.get_velocity(x0, noise, timesteps)}[prediction_type]  # fmt: skip
        epsilon = to_epsilon(prediction, noisy, alpha, sigma, prediction_type)
        torch.testing.assert_close(epsilon, noise, atol=2e-4 if t else 5e-3, rtol=1e-4)
        torch.testing.assert_close(from_epsilon(epsilon, noisy, alpha, sigma, prediction_type), prediction)
        torch.testing.assert_close(predicted_sample(epsilon, noisy, alpha, sigma), x0, atol=5e-4, rtol=1e-4)
    with pytest.raises(GIDInputError, match="prediction_type"):
        to_epsilon(noise, noise, 0.5, 0.5, "flow")
    with pytest.raises(GIDInputError, match="outside the schedule"):
        alpha_sigma(scheduler.alphas_cumprod, 1000)


def test_seam_step_is_the_last_frame_of_the_pinned_motion():
    spectrum = torch.randn(2, 4, 4, 5, 6)
    motion = spectrum_to_motion(spectrum, 12)
    torch.testing.assert_close(seam_step(spectrum, 12), motion[:, -1] - motion[:, 0])
    assert float(motion[:, 0].abs().max()) == 0.0


def test_self_guidance_loss_of_known_motions():
    num_frames = 10
    # No motion after pinning (a DC term only): no seam step.
    still = torch.zeros(1, 4, 4, 6, 7)
    still[:, 0, 0] = 3.0
    assert float(self_guidance_loss(still, num_frames)) == pytest.approx(0.0, abs=1e-6)
    # A uniform cosine: the seam step is amplitude * (cos(2 pi k (T-1) / T) - 1) in x, no spatial gradient; the
    # loss sums it over the 6 x 7 pixels.
    spectrum = cosine_spectrum(2.0, 1, num_frames)[None].float()
    step = 2.0 * abs(math.cos(2 * math.pi * (num_frames - 1) / num_frames) - 1.0)
    expected = 42 * step
    assert float(self_guidance_loss(spectrum, num_frames)) == pytest.approx(expected, rel=1e-4)
    # A faster oscillation swings further in the last frame: a larger seam step.
    faster = cosine_spectrum(2.0, 3, num_frames)[None].float()
    assert float(self_guidance_loss(faster, num_frames)) > 3 * expected
    # A spatial ramp of the same motion adds its gradient term: |d/dx| of a ramp of slope s is s at each of the
    # 6 x 6 horizontal neighbour pairs.
    ramp = spectrum * torch.linspace(0.0, 1.0, 7).view(1, 1, 1, 1, 7)
    ramp_sum = 6 * float(torch.linspace(0.0, 1.0, 7).sum())
    assert float(self_guidance_loss(ramp, num_frames)) == pytest.approx(step * (ramp_sum + 36 / 6), rel=1e-4)
    with pytest.raises(GIDInputError, match="B, K, 4, H, W"):
        self_guidance_loss(spectrum[0], num_frames)
    with pytest.raises(GIDInputError, match="num_frames >= 2"):
        seam_step(spectrum, 1)


def test_self_guidance_loss_gradient_descends():
    generator = torch.Generator().manual_seed(0)
    spectrum = torch.randn(2, 4, 4, 8, 8, dtype=torch.float64, generator=generator).requires_grad_(True)
    losses = self_guidance_loss(spectrum, 16)
    assert losses.shape == (2,)
    (gradient,) = torch.autograd.grad(losses.sum(), spectrum)
    # Per-sample losses: sample 0's gradient ignores sample 1.
    (only_first,) = torch.autograd.grad(self_guidance_loss(spectrum, 16)[0], spectrum)
    assert torch.equal(only_first[0], gradient[0]) and float(only_first[1].abs().max()) == 0.0
    stepped = (spectrum - 1e-3 * gradient).detach()
    assert bool((self_guidance_loss(stepped, 16) < losses.detach()).all())


def test_self_guided_epsilon_moves_the_estimate_down_the_loss():
    """eps + u sigma grad_z L moves the x_0 estimate by -u sigma^2 grad_x0 L, down the loss."""
    generator = torch.Generator().manual_seed(1)
    sample = torch.randn(1, 4, 4, 8, 8, dtype=torch.float64, generator=generator)
    epsilon = torch.randn(1, 4, 4, 8, 8, dtype=torch.float64, generator=generator)
    alpha, sigma = 0.6, 0.8
    estimate = predicted_sample(epsilon, sample, alpha, sigma).requires_grad_(True)
    loss = self_guidance_loss(estimate, 16).sum()
    (gradient,) = torch.autograd.grad(loss, estimate)
    guided = self_guided_epsilon(epsilon, latent_gradient(gradient, alpha), sigma, scale=1e-3)
    moved = predicted_sample(guided, sample, alpha, sigma)
    torch.testing.assert_close(moved, estimate.detach() - 1e-3 * sigma**2 * gradient)
    assert float(self_guidance_loss(moved, 16)) < float(loss.detach())


def test_motion_step_statistics():
    num_frames = 20
    spectrum = cosine_spectrum(1.5, 1, num_frames, size=(4, 4)).float()
    stats = motion_step_statistics(spectrum, num_frames)
    steps = [1.5 * abs(math.cos(2 * math.pi * (t + 1) / num_frames) - math.cos(2 * math.pi * t / num_frames))
             for t in range(num_frames - 1)]  # fmt: skip
    assert stats["seam_step"] == pytest.approx(abs(1.5 * (math.cos(2 * math.pi / num_frames) - 1)), rel=1e-4)
    assert stats["max_step"] == pytest.approx(max(steps), rel=1e-4)
    assert stats["median_step"] < stats["max_step"]
    assert stats["amplitude"] == pytest.approx(1.5, rel=1e-3)  # mean of |cos - 1| over a period is 1
    batched = motion_step_statistics(spectrum[None].expand(3, -1, -1, -1, -1), num_frames)
    assert batched == pytest.approx(stats)
