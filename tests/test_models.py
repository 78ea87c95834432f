import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from gid_pipeline.errors import GIDInputError
from gid_pipeline.models import (
    FrequencyAttention,
    FrequencyUNet,
    PoolingSpectralAutoencoder,
    decode_latents,
    denoising_loss,
    diffusion_target,
    encode_spectrum,
    kl_divergence,
    load_spectral_autoencoder,
    make_spectral_vae,
    multiscale_gradient_loss,
    spectral_vae_loss,
    vae_downsampling,
)
from gid_pipeline.models.frequency_unet import frequency_tokens_to_slices, slices_to_frequency_tokens

K = 4
HEIGHT, WIDTH = 32, 48  # latents 4 x 6
TINY_UNET = {
    "num_frequencies": K,
    "image_embedding_channels": 4,
    "image_encoder_channels": (4, 8, 8, 8),
    "block_out_channels": (8, 16),
    "down_block_types": ("DownBlock2D", "AttnDownBlock2D"),
    "up_block_types": ("AttnUpBlock2D", "UpBlock2D"),
    "attention_head_dim": 8,
    "norm_num_groups": 4,
    "frequency_attention_levels": (0, 1),
    "frequency_attention_head_dim": 8,
}
TINY_VAE = {"block_out_channels": (8, 8, 16, 16), "norm_num_groups": 4}


pytestmark = pytest.mark.usefixtures("one_thread")


def make_unet(frequency_attention: bool = True, trained_attention: bool = False) -> FrequencyUNet:
    """A tiny FrequencyUNet; trained_attention replaces the zero-initialised attention outputs by random weights."""
    model = FrequencyUNet(**TINY_UNET, frequency_attention=frequency_attention)
    if trained_attention:
        for name, parameter in model.frequency_layers.named_parameters():
            if "to_out" in name:
                torch.nn.init.normal_(parameter, std=0.3)
    return model.eval()


def inputs(batch: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    sample = torch.randn(batch, K, 4, HEIGHT // 8, WIDTH // 8, generator=generator)
    image = torch.rand(batch, 3, HEIGHT, WIDTH, generator=generator) * 2 - 1
    timestep = torch.randint(0, 1000, (batch,), generator=generator)
    return sample, timestep, image


def run(model: FrequencyUNet, sample, timestep, image, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model(sample, timestep, image, **kwargs).sample


# Spectral VAE and its loss


def test_vae_round_trip_shapes_and_latent_scaling():
    vae = make_spectral_vae(**TINY_VAE).eval()
    spectrum = torch.randn(2, K, 4, HEIGHT, WIDTH)
    with torch.no_grad():
        latents = encode_spectrum(vae, spectrum)
        decoded = decode_latents(vae, latents)
        vae.register_to_config(scaling_factor=2.0)
        scaled = encode_spectrum(vae, spectrum)
        decoded_scaled = decode_latents(vae, scaled)
    assert latents.shape == (2, K, 4, HEIGHT // 8, WIDTH // 8)
    assert decoded.shape == spectrum.shape
    assert torch.allclose(scaled, 2 * latents)
    assert torch.allclose(decoded_scaled, decoded, atol=1e-6)


def test_default_configs_fit_the_paper_shapes():
    vae = make_spectral_vae().eval()
    unet = FrequencyUNet().eval()
    assert unet.config.num_frequencies == 16 and unet.image_downsampling == vae_downsampling(vae) == 8
    with torch.no_grad():
        latents = encode_spectrum(vae, torch.randn(1, 2, 4, 32, 40))
        assert latents.shape == (1, 2, 4, 4, 5) and decode_latents(vae, latents).shape == (1, 2, 4, 32, 40)
        out = unet(torch.randn(1, 16, 4, 4, 8), 10, torch.zeros(1, 3, 32, 64)).sample
    assert out.shape == (1, 16, 4, 4, 8)


def test_vae_slices_are_encoded_independently():
    vae = make_spectral_vae(**TINY_VAE).eval()
    spectrum = torch.randn(1, K, 4, HEIGHT, WIDTH)
    changed = spectrum.clone()
    changed[:, 0] += 1.0
    with torch.no_grad():
        before, after = encode_spectrum(vae, spectrum), encode_spectrum(vae, changed)
    assert not torch.allclose(before[:, 0], after[:, 0])
    assert torch.allclose(before[:, 1:], after[:, 1:], atol=1e-6)


def test_vae_posterior_sampling_is_seeded():
    vae = make_spectral_vae(**TINY_VAE).eval()
    spectrum = torch.randn(1, K, 4, HEIGHT, WIDTH)
    with torch.no_grad():
        a, b, c = (encode_spectrum(vae, spectrum, True, torch.Generator().manual_seed(s)) for s in (1, 1, 2))
        mode = encode_spectrum(vae, spectrum)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert not torch.equal(a, mode)


@pytest.mark.parametrize(
    ("shape", "match"),
    [((2, K, 3, 32, 48), r"\(B, K, 4, H, W\), got \(2, 4, 3, 32, 48\)"), ((2, K, 4, 30, 48), "30x48")],
)
def test_vae_rejects_bad_spectra(shape, match):
    with pytest.raises(GIDInputError, match=match):
        encode_spectrum(make_spectral_vae(**TINY_VAE), torch.zeros(shape))
    with pytest.raises(GIDInputError, match=r"\(B, K, 4, h, w\)"):
        decode_latents(make_spectral_vae(**TINY_VAE), torch.zeros(2, 4, 4, 6))


def test_vae_loss_is_zero_for_perfect_reconstruction_and_positive_otherwise():
    target = torch.randn(8, 4, 32, 32)
    mean, logvar = torch.zeros(8, 4, 4, 4), torch.zeros(8, 4, 4, 4)
    perfect = spectral_vae_loss(target, target, mean, logvar)
    assert perfect.total.item() == perfect.l1.item() == perfect.gradient.item() == perfect.kl.item() == 0.0
    noisy = spectral_vae_loss(target + 0.1 * torch.randn_like(target), target, mean + 1.0, logvar)
    assert noisy.l1 > 0 and noisy.gradient > 0 and noisy.kl > 0
    assert torch.isclose(noisy.total, noisy.l1 + 0.2 * noisy.gradient + 1e-6 * noisy.kl)


def test_pooling_autoencoder_averages_cells_and_interpolates(tmp_path):
    autoencoder = PoolingSpectralAutoencoder()
    y, x = torch.meshgrid(torch.arange(32.0), torch.arange(48.0), indexing="ij")
    ramp = (0.5 * x - 0.25 * y + 1.0).expand(2, 4, -1, -1)  # a linear field, in every channel
    spectrum = ramp.unsqueeze(0)  # (B=1, K=2, 4, 32, 48)
    latents = encode_spectrum(autoencoder, spectrum)
    assert latents.shape == (1, 2, 4, 4, 6)
    # The cell average of a linear field is its value at the cell centre, and bilinear interpolation between cell
    # centres reproduces the field wherever it does not extrapolate (inside the outermost centres).
    cells = ramp[0, 0].unfold(0, 8, 8).unfold(1, 8, 8).mean((-1, -2))
    torch.testing.assert_close(latents[0, 0, 0], cells)
    decoded = decode_latents(autoencoder, latents)
    torch.testing.assert_close(decoded[0, :, :, 4:28, 4:44], spectrum[0, :, :, 4:28, 4:44], rtol=1e-5, atol=1e-5)
    posterior = autoencoder.encode(spectrum[0]).latent_dist
    torch.testing.assert_close(posterior.sample(torch.Generator().manual_seed(1)), posterior.mode())
    autoencoder.register_to_config(scaling_factor=2.5)
    autoencoder.save_pretrained(tmp_path)
    loaded = load_spectral_autoencoder(tmp_path)
    assert isinstance(loaded, PoolingSpectralAutoencoder) and loaded.config.scaling_factor == 2.5
    assert vae_downsampling(loaded) == 8
    torch.testing.assert_close(encode_spectrum(loaded, spectrum), 2.5 * latents)
    with pytest.raises(GIDInputError, match="multiples of 8"):
        loaded.encode(torch.zeros(1, 4, 30, 48))
    with pytest.raises(GIDInputError, match="latent_channels"):
        PoolingSpectralAutoencoder(latent_channels=8)


def test_load_spectral_autoencoder_names_what_is_wrong(tmp_path):
    with pytest.raises(GIDInputError, match=r"config\.json"):
        load_spectral_autoencoder(tmp_path)
    (tmp_path / "config.json").write_text('{"_class_name": "UNet2DModel"}')
    with pytest.raises(GIDInputError, match="UNet2DModel"):
        load_spectral_autoencoder(tmp_path)
    make_spectral_vae(**TINY_VAE).save_pretrained(tmp_path / "kl")
    assert type(load_spectral_autoencoder(tmp_path / "kl")).__name__ == "AutoencoderKL"


def test_multiscale_gradient_loss_definition():
    # A residual ramp of slope a in x: each 2^s average pooling multiplies the slope by 2^s, y gradients vanish.
    slope = 0.25
    ramp = slope * torch.arange(32.0).expand(2, 3, 16, 32)
    target = torch.randn(2, 3, 16, 32)
    assert torch.isclose(multiscale_gradient_loss(target + ramp, target, 4), torch.tensor(slope * (1 + 2 + 4 + 8)))
    # A constant offset has no gradient at any scale.
    assert multiscale_gradient_loss(target + 3.0, target).item() == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(GIDInputError, match="H, W >= 16"):
        multiscale_gradient_loss(torch.zeros(1, 8, 32), torch.zeros(1, 8, 32), 4)


def test_kl_divergence_closed_form():
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0
    # KL(N(1, e) || N(0, 1)) = 0.5 (1 + e - 1 - 1) per element.
    value = kl_divergence(torch.ones(3, 4), torch.ones(3, 4))
    assert value.item() == pytest.approx(0.5 * (torch.e - 1.0))


def test_vae_optimisation_reduces_loss():
    vae = make_spectral_vae(**TINY_VAE)
    generator = torch.Generator().manual_seed(0)
    batch = torch.nn.functional.avg_pool2d(torch.randn(8, 4, HEIGHT, WIDTH, generator=generator), 3, 1, 1)
    optimizer = torch.optim.Adam(vae.parameters(), lr=2e-3)
    losses = []
    for _ in range(8):
        posterior = vae.encode(batch).latent_dist
        reconstruction = vae.decode(posterior.sample(generator=generator)).sample
        loss = spectral_vae_loss(reconstruction, batch, posterior.mean, posterior.logvar).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


# FrequencyUNet


def test_unet_output_shape():
    sample, timestep, image = inputs()
    model = make_unet()
    out = run(model, sample, timestep, image)
    assert out.shape == sample.shape
    assert torch.equal(model(sample, int(timestep[0]), image, return_dict=False)[0], run(model, sample, timestep[0],
                                                                                             image))


@pytest.mark.parametrize("frequency_attention", [True, False])
def test_frequency_attention_is_the_only_path_between_slices(frequency_attention):
    model = make_unet(frequency_attention, trained_attention=True)
    sample, timestep, image = inputs()
    changed = sample.clone()
    changed[:, 0] = torch.randn_like(changed[:, 0])
    before, after = run(model, sample, timestep, image), run(model, changed, timestep, image)
    assert not torch.allclose(before[:, 0], after[:, 0])
    if frequency_attention:
        assert (before[:, 1:] - after[:, 1:]).abs().amax(dim=(2, 3, 4)).gt(1e-4).all()
    else:
        assert torch.allclose(before[:, 1:], after[:, 1:], atol=1e-6, rtol=0)


def test_frequency_attention_attends_across_slices_at_each_location():
    layer = FrequencyAttention(channels=16, num_frequencies=K, head_dim=8)
    torch.nn.init.normal_(layer.attention.to_out[0].weight, std=0.3)
    hidden = torch.randn(2 * K, 16, 3, 5)
    with torch.no_grad():
        out = layer(hidden, K).view(2, K, 16, 3, 5)
        slices = hidden.view(2, K, 16, 3, 5)
        for b, y, x in [(0, 0, 0), (1, 2, 4), (1, 0, 3)]:
            tokens = slices[b, :, :, y, x]  # (K, C): the K slices at one location
            expected = tokens + layer.attention(layer.position(layer.norm(tokens[None])))[0]
            assert torch.allclose(out[b, :, :, y, x], expected, atol=1e-5)
    assert torch.equal(frequency_tokens_to_slices(slices_to_frequency_tokens(hidden, K), 3, 5), hidden)


def test_fresh_frequency_attention_is_the_identity():
    per_slice = make_unet(frequency_attention=False)
    sample, timestep, image = inputs()
    expected = run(per_slice, sample, timestep, image)
    full = make_unet(frequency_attention=True)
    missing, unexpected = full.load_state_dict(per_slice.state_dict(), strict=False)
    assert not unexpected and missing and all(key.startswith("frequency_layers.") for key in missing)
    assert torch.equal(run(full, sample, timestep, image), expected)
    stage2 = FrequencyUNet.from_per_slice(per_slice)
    assert stage2.config.frequency_attention and len(stage2.frequency_layers) == 5
    assert torch.equal(run(stage2.eval(), sample, timestep, image), expected)


def test_freezing_leaves_only_frequency_attention_trainable():
    model = make_unet()
    trainable = model.freeze_except_frequency_attention()
    names = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    assert names and all(name.startswith("frequency_layers.") for name in names)
    assert len(trainable) == len(names) == len(list(model.frequency_layers.parameters()))
    with pytest.raises(GIDInputError, match="no frequency attention"):
        make_unet(frequency_attention=False).freeze_except_frequency_attention()


@pytest.mark.parametrize("freeze", [False, True])
def test_gradients_reach_every_trainable_parameter(freeze):
    model = make_unet(trained_attention=True).train()
    if freeze:
        model.freeze_except_frequency_attention()
    sample, timestep, image = inputs()
    model(sample, timestep, image, condition_mask=torch.tensor([True, False])).sample.square().mean().backward()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
        else:
            assert parameter.grad is None, name


def test_zero_initialised_attention_still_receives_gradient():
    model = make_unet().train()
    model.freeze_except_frequency_attention()
    sample, timestep, image = inputs()
    model(sample, timestep, image).sample.square().mean().backward()
    for layer in model.frequency_layers.values():
        assert layer.attention.to_out[0].weight.grad.abs().sum() > 0


def test_frequency_embedding_distinguishes_slices():
    model = make_unet(frequency_attention=False)
    sample, timestep, image = inputs()
    same = sample[:, :1].expand(-1, K, -1, -1, -1).contiguous()
    out = run(model, same, timestep, image)
    for k in range(1, K):
        assert not torch.allclose(out[:, 0], out[:, k], atol=1e-4)


def test_frequency_indices_select_slices_of_a_per_slice_model():
    """A per-slice model run on a subset of slices, named by frequency_indices, gives exactly those slices of the
    full run: training on random subsets optimises the same model."""
    model = make_unet(frequency_attention=False)
    sample, timestep, image = inputs()
    full = run(model, sample, timestep, image)
    indices = torch.tensor([[3, 0], [1, 2]])
    subset = sample.gather(1, indices.view(2, 2, 1, 1, 1).expand(-1, -1, *sample.shape[2:]))
    picked = run(model, subset, timestep, image, frequency_indices=indices)
    expected = full.gather(1, indices.view(2, 2, 1, 1, 1).expand(-1, -1, *full.shape[2:]))
    torch.testing.assert_close(picked, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(GIDInputError, match="per-slice"):
        run(make_unet(), subset, timestep, image, frequency_indices=indices)
    with pytest.raises(GIDInputError, match="frequency_indices"):
        run(model, subset, timestep, image, frequency_indices=indices + K)


def test_normalization_travels_in_the_config(tmp_path):
    with pytest.raises(GIDInputError, match="never trained"):
        _ = make_unet().normalizer
    model = FrequencyUNet(**TINY_UNET, normalization_scales=[0.5, 0.25, 0.125, 0.1])
    model.save_pretrained(tmp_path)
    loaded = FrequencyUNet.from_pretrained(tmp_path)
    assert loaded.normalizer.scales == (0.5, 0.25, 0.125, 0.1) and loaded.normalizer.percentile == 95.0
    with pytest.raises(GIDInputError, match="scales"):
        FrequencyUNet(**TINY_UNET, normalization_scales=[0.5, 0.25])
    with pytest.raises(GIDInputError, match="positive"):
        FrequencyUNet(**TINY_UNET, normalization_scales=[0.5, 0.25, 0.0, 0.1])


def test_null_condition_ignores_the_image():
    model = make_unet(trained_attention=True)
    sample, timestep, image = inputs()
    other_image = inputs(seed=1)[2]
    null = torch.zeros(2, dtype=torch.bool)
    unconditional = run(model, sample, timestep, image, condition_mask=null)
    assert torch.equal(unconditional, run(model, sample, timestep, other_image, condition_mask=null))
    conditional = run(model, sample, timestep, image)
    assert not torch.allclose(unconditional, conditional)
    assert not torch.allclose(conditional, run(model, sample, timestep, other_image))
    mixed = run(model, sample, timestep, image, condition_mask=torch.tensor([True, False]))
    assert torch.allclose(mixed[0], conditional[0], atol=1e-6)
    assert torch.allclose(mixed[1], unconditional[1], atol=1e-6)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
def test_denoiser_optimisation_reduces_loss(prediction_type):
    model = make_unet().train()
    scheduler = DDPMScheduler(num_train_timesteps=1000, prediction_type=prediction_type)
    generator = torch.Generator().manual_seed(0)
    latents, _, image = inputs()
    noise = torch.randn(latents.shape, generator=generator)
    timesteps = torch.tensor([100, 700])
    noisy = scheduler.add_noise(latents, noise, timesteps)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = denoising_loss(model(noisy, timesteps, image).sample, scheduler, latents, noise, timesteps)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_diffusion_target_follows_the_scheduler():
    latents, noise = torch.randn(2, K, 4, 4, 6), torch.randn(2, K, 4, 4, 6)
    timesteps = torch.tensor([10, 900])
    assert diffusion_target(DDPMScheduler(), latents, noise, timesteps) is noise
    scheduler = DDPMScheduler(prediction_type="v_prediction")
    alpha_bar = scheduler.alphas_cumprod[timesteps].view(-1, 1, 1, 1, 1)
    expected = alpha_bar.sqrt() * noise - (1 - alpha_bar).sqrt() * latents
    assert torch.allclose(diffusion_target(scheduler, latents, noise, timesteps), expected, atol=1e-6)
    with pytest.raises(GIDInputError, match="differ in shape"):
        denoising_loss(latents[:, :2], scheduler, latents, noise, timesteps)


def test_classifier_free_guidance_sampling_loop_runs():
    model = make_unet(trained_attention=True)
    scheduler = DDIMScheduler(num_train_timesteps=1000)
    scheduler.set_timesteps(3)
    latents, _, image = inputs(batch=1)
    for t in scheduler.timesteps:
        pair = run(model, latents.expand(2, -1, -1, -1, -1), t, image.expand(2, -1, -1, -1),
                   condition_mask=torch.tensor([True, False]))
        guided = pair[1] + 2.0 * (pair[0] - pair[1])
        latents = scheduler.step(guided[None], t, latents).prev_sample
    assert latents.shape == (1, K, 4, 4, 6) and torch.isfinite(latents).all()


def test_save_and_load_round_trip(tmp_path):
    model = make_unet(trained_attention=True)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = FrequencyUNet.from_pretrained(tmp_path).eval()
    sample, timestep, image = inputs()
    assert loaded.config.frequency_attention_levels == [0, 1]
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert torch.equal(run(loaded, sample, timestep, image), run(model, sample, timestep, image))


def test_seeded_construction_and_forward_are_deterministic():
    sample, timestep, image = inputs()
    outputs = []
    for _ in range(2):
        torch.manual_seed(123)
        outputs.append(run(FrequencyUNet(**TINY_UNET).eval(), sample, timestep, image))
    assert torch.equal(*outputs)
    model = make_unet(trained_attention=True)
    assert torch.equal(run(model, sample, timestep, image), run(model, sample, timestep, image))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"sample": (2, 3, 4, 4, 6)}, r"sample must have shape \(B, 4, 4, h, w\), got \(2, 3, 4, 4, 6\)"),
        ({"sample": (2, K, 5, 4, 6)}, r"sample must have shape \(B, 4, 4, h, w\), got \(2, 4, 5, 4, 6\)"),
        ({"sample": (2, K, 4, 4)}, r"got \(2, 4, 4, 4\)"),
        ({"sample": (2, K, 4, 3, 6)}, r"latent size 3x6 .* multiple of 2"),
        ({"image": (2, 3, 24, 48)}, r"image must have shape \(2, 3, 32, 48\) .* got \(2, 3, 24, 48\)"),
        ({"image": (2, 4, 32, 48)}, r"image must have shape \(2, 3, 32, 48\) .* got \(2, 4, 32, 48\)"),
        ({"image": (1, 3, 32, 48)}, r"got \(1, 3, 32, 48\)"),
        ({"timestep": (3,)}, r"timestep must be a number or a \(2,\) tensor, got shape \(3,\)"),
        ({"condition_mask": (3,)}, r"condition_mask must be a \(2,\) bool tensor"),
    ],
)
def test_unet_rejects_bad_inputs(change, match):
    sample, timestep, image = inputs()
    arguments = {"sample": sample, "timestep": timestep, "image": image, "condition_mask": None}
    for name, shape in change.items():
        arguments[name] = torch.zeros(shape, dtype=torch.bool if name == "condition_mask" else torch.float32)
    with pytest.raises(GIDInputError, match=match):
        make_unet()(**arguments)


def test_unet_rejects_inconsistent_configs():
    with pytest.raises(GIDInputError, match="one down and one up block type"):
        FrequencyUNet(**{**TINY_UNET, "block_out_channels": (8, 16, 16)})
    with pytest.raises(GIDInputError, match=r"frequency_attention_levels \(0, 2\)"):
        FrequencyUNet(**{**TINY_UNET, "frequency_attention_levels": (0, 2)})
    with pytest.raises(GIDInputError, match="frequency_attention_head_dim 16"):
        FrequencyUNet(**{**TINY_UNET, "frequency_attention_head_dim": 16})
