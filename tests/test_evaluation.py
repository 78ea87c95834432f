"""Evaluation: metric properties (hypothesis), the motion evaluation with real predictors (an oracle, a scaled oracle,
seeded noise) and its baselines, the renderer evaluation, the report files and the CLI on a tiny pipeline."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gid_pipeline.cli import main
from gid_pipeline.data.builder import SampleConfig, prepare_procedural_dataset
from gid_pipeline.errors import GIDInputError
from gid_pipeline.evaluation import (
    MeanSpectrum,
    MotionCase,
    RenderCase,
    amplitude_calibration,
    amplitude_density_profile,
    auroc,
    backward_warp,
    clip_cases,
    dataset_cases,
    evaluate_motion,
    evaluate_renderers,
    format_table,
    motion_amplitude,
    moving_mask,
    moving_threshold,
    plan_clips,
    procedural_render_cases,
    profile_error,
    psnr,
    reference_mean_spectrum,
    ssim_per_image,
    write_evaluation,
)
from gid_pipeline.evaluation.baselines import mean_magnitudes
from gid_pipeline.evaluation.calibration import clip_scales, fit_calibration, weighted_median
from gid_pipeline.evaluation.metrics import MOVING_MIN_PX, MOVING_RELATIVE
from gid_pipeline.models import SplatRenderer
from gid_pipeline.models.render_losses import ssim
from gid_pipeline.procedural.scenes import generate_scene
from gid_pipeline.rendering.loop import render_frames
from gid_pipeline.spectral.transform import amplitude, motion_to_spectrum
from gid_pipeline.spectral.volume import SpectralVolume

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = (48, 32)  # (width, height) of the tiny scenes
SCENE_FRAMES, SCENE_FPS, SCENE_K = 12, 4.0, 4  # bins 0, 1/3, 2/3, 1 Hz


def brute_force_auroc(score: np.ndarray, mask: np.ndarray) -> float:
    """P(score of a positive > score of a negative) + 0.5 P(tie), over all pairs."""
    positive, negative = score[mask][:, None], score[~mask][None, :]
    return float(((positive > negative) + 0.5 * (positive == negative)).mean())


scores_and_masks = st.integers(2, 60).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=st.sampled_from([-2.0, -0.5, 0.0, 0.25, 1.0, 3.0])),  # many ties
        arrays(np.bool_, n).filter(lambda m: 0 < m.sum() < len(m)),
    )
)


@settings(max_examples=60, deadline=None)
@given(scores_and_masks)
def test_auroc_matches_pairwise_definition_and_is_rank_invariant(data):
    score, mask = data
    value = auroc(torch.from_numpy(score), torch.from_numpy(mask))
    assert value == pytest.approx(brute_force_auroc(score, mask), abs=1e-12)
    # Strictly increasing transforms keep every rank; negation reverses them.
    assert auroc(torch.from_numpy(np.exp(score) * 3.0 + 1.0), torch.from_numpy(mask)) == pytest.approx(value)
    assert auroc(torch.from_numpy(-score), torch.from_numpy(mask)) == pytest.approx(1.0 - value)


@settings(max_examples=30, deadline=None)
@given(arrays(np.bool_, st.integers(2, 200)).filter(lambda m: 0 < m.sum() < len(m)), st.floats(-5, 5))
def test_auroc_constant_is_half_and_perfect_is_one(mask, constant):
    mask_t = torch.from_numpy(mask)
    assert auroc(torch.full(mask_t.shape, constant), mask_t) == pytest.approx(0.5)
    assert auroc(mask_t.double() * 2.0 + constant, mask_t) == pytest.approx(1.0)


def test_auroc_rejects_one_class_and_nan():
    with pytest.raises(GIDInputError, match="both classes"):
        auroc(torch.rand(10), torch.ones(10, dtype=torch.bool))
    with pytest.raises(GIDInputError, match="NaN"):
        auroc(torch.tensor([0.0, float("nan")]), torch.tensor([True, False]))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([5, 9, 15]))
def test_motion_amplitude_is_rms_displacement(seed, num_frames):
    """Parseval: with every bin kept (odd T), the amplitude is the RMS of F_t about its temporal mean."""
    motion = torch.randn(num_frames, 2, 3, 4, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    spectrum = motion_to_spectrum(motion, num_frames // 2 + 1)
    rms = (motion - motion.mean(dim=0)).square().sum(dim=1).mean(dim=0).sqrt()
    torch.testing.assert_close(motion_amplitude(spectrum).double(), rms, rtol=1e-4, atol=1e-5)


def test_motion_amplitude_of_a_cosine_and_band_limit():
    t = torch.arange(30, dtype=torch.float64)
    motion = torch.zeros(30, 2, 1, 1, dtype=torch.float64)
    motion[:, 0, 0, 0] = 2.0 * torch.cos(2 * math.pi * 3 * t / 30)  # amplitude 2 px at bin 3
    spectrum = motion_to_spectrum(motion, 8)
    frequencies = torch.arange(8, dtype=torch.float64) * (10.0 / 30)  # 10 fps
    assert float(motion_amplitude(spectrum)) == pytest.approx(2.0 / math.sqrt(2.0), rel=1e-5)
    assert float(motion_amplitude(spectrum, frequencies, max_hz=0.7)) == pytest.approx(0.0, abs=1e-6)  # bin 3: 1 Hz
    assert float(motion_amplitude(spectrum, frequencies, max_hz=1.0)) == pytest.approx(math.sqrt(2.0), rel=1e-5)


def test_moving_mask_threshold_is_relative_with_a_floor():
    amplitude_map = torch.linspace(0.0, 4.0, 9_999).view(101, 99)
    p99 = float(torch.quantile(amplitude_map.flatten(), 0.99))
    assert moving_threshold(amplitude_map) == pytest.approx(MOVING_RELATIVE * p99)
    assert torch.equal(moving_mask(amplitude_map), amplitude_map > MOVING_RELATIVE * p99)
    assert moving_threshold(amplitude_map * 0.01) == MOVING_MIN_PX  # tiny motion: the absolute floor


def _random_volume(seed: int, num_frequencies: int = 6, size: tuple[int, int] = (8, 10)) -> torch.Tensor:
    return torch.randn(num_frequencies, 4, *size, generator=torch.Generator().manual_seed(seed))


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.1, 10.0), st.sampled_from([(150, 30.0), (38, 15.0), (12, 4.0)]))
def test_profile_parseval_and_scaling(seed, factor, time_base):
    num_frames, fps = time_base
    spectrum = _random_volume(seed)
    mask = torch.rand(8, 10, generator=torch.Generator().manual_seed(seed + 1)) > 0.3
    mask[0, 0] = True
    frequencies, profile = amplitude_density_profile(spectrum, mask, num_frames, fps)
    assert np.allclose(frequencies, np.arange(1, 6) * fps / num_frames)
    # sum_k D_k^2 df = mean over the mask of the squared amplitude.
    energy = float(np.sum(10.0 ** (2 * profile)) * fps / num_frames)
    assert energy == pytest.approx(float(motion_amplitude(spectrum)[mask].square().mean()), rel=1e-4)
    _, scaled = amplitude_density_profile(spectrum * factor, mask, num_frames, fps)
    assert profile_error(frequencies, scaled, frequencies, profile) == pytest.approx(abs(math.log10(factor)), abs=1e-5)
    assert profile_error(frequencies, profile, frequencies, profile) == 0.0


def test_profile_error_compares_in_hz_on_the_common_range():
    fine = np.arange(1, 16) * 0.2  # 0.2 .. 3.0 Hz
    coarse = np.arange(1, 8) * 15 / 38  # 0.39 .. 2.76 Hz
    line = lambda f: 1.0 - 0.3 * f  # noqa: E731 - linear in Hz: interpolation is exact
    assert profile_error(fine, line(fine), coarse, line(coarse)) == pytest.approx(0.0, abs=1e-12)
    assert profile_error(coarse, line(coarse) + 0.5, fine, line(fine)) == pytest.approx(0.5)
    with pytest.raises(GIDInputError, match="share no frequencies"):
        profile_error(np.array([0.1, 0.2]), np.zeros(2), np.array([1.0, 2.0]), np.zeros(2))


def test_profile_floor_and_bad_mask():
    _, profile = amplitude_density_profile(torch.zeros(4, 4, 5, 5), torch.ones(5, 5, dtype=torch.bool), 12, 4.0)
    assert np.all(profile == -4.0)
    with pytest.raises(GIDInputError, match="non-empty"):
        amplitude_density_profile(torch.zeros(4, 4, 5, 5), torch.zeros(5, 5, dtype=torch.bool), 12, 4.0)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.0, 5.0))
def test_calibration_of_scaled_amplitude(seed, factor):
    true = torch.rand(6, 7, generator=torch.Generator().manual_seed(seed)) + 0.1
    mask = true > 0.5
    mask[0, 0] = True
    assert amplitude_calibration(true * factor, true, mask) == pytest.approx(factor, rel=1e-6, abs=1e-9)


def test_psnr_and_ssim():
    frames = torch.rand(3, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(psnr(frames, frames), torch.full((3,), 100.0))
    shifted = (frames * 0.8 + 0.1).clamp(0, 1)
    offset = torch.full_like(frames, 0.5)
    assert torch.allclose(psnr(offset, offset + 0.1), torch.full((3,), 20.0), atol=1e-4)  # MSE 0.01
    per_image = ssim_per_image(shifted, frames)
    assert torch.allclose(ssim_per_image(frames, frames), torch.ones(3))
    expected = torch.stack([ssim(shifted[i : i + 1], frames[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(per_image, expected)


# ------------------------------------------------------------------------------------------------ motion


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """Four procedural scenes at 48x32 (T = 12 at 4 fps, K = 4), as gid prepare-data writes them."""
    root = tmp_path_factory.mktemp("data") / "holdout"
    config = SampleConfig(size=SIZE, num_frames=SCENE_FRAMES, fps=SCENE_FPS, num_frequencies=SCENE_K)
    prepare_procedural_dataset(4, root, config, seed_offset=10_000_000, workers=1)
    return root


def oracle_for(cases, factor: float = 1.0, noise: float = 0.0):
    """A predictor that looks the true volume up by image and returns it scaled, plus seeded noise if asked."""
    lookup = {id(case.image): case.volume for case in cases}

    def predict(image: torch.Tensor, generator: torch.Generator) -> SpectralVolume:
        volume = lookup[id(image)]
        spectrum = volume.spectrum * factor
        if noise:
            spectrum = spectrum + noise * torch.randn(spectrum.shape, generator=generator)
        return SpectralVolume(spectrum, volume.num_frames, volume.fps)

    return predict


def test_oracle_is_perfect_and_baselines_are_what_they_are(tiny_dataset):
    cases = list(dataset_cases(tiny_dataset))
    assert len(cases) == 4 and cases[0].image.shape == (3, 32, 48) and cases[0].volume.num_frames == SCENE_FRAMES
    evaluation = evaluate_motion(cases, oracle_for(cases), seeds=(0, 1), method="oracle")
    summary = evaluation.report["summary"]
    assert summary["oracle"]["auroc"]["mean"] == pytest.approx(1.0)
    assert summary["oracle"]["calibration"]["mean"] == pytest.approx(1.0)
    assert summary["oracle"]["profile_error"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert summary["oracle"]["auroc"]["n"] == 8  # 4 cases x 2 seeds
    assert summary["no_motion"]["auroc"]["mean"] == 0.5 and summary["no_motion"]["calibration"]["mean"] == 0.0
    assert summary["mean_spectrum"]["auroc"]["mean"] == pytest.approx(0.5)  # the same profile everywhere
    assert summary["mean_spectrum"]["calibration"]["mean"] > 0
    assert evaluation.report["baselines"]["mean_spectrum"].startswith("mean |S_k| over moving pixels of the evaluated")
    assert all(summary["texture"][metric]["n"] == 4 for metric in ("auroc", "spearman", "band_error", "calibration"))
    assert summary["oracle"]["spearman"]["mean"] == pytest.approx(1.0) and summary["oracle"]["band_error"]["mean"] == 0

    doubled = evaluate_motion(cases, oracle_for(cases, factor=2.0), seeds=(0,)).report["summary"]["gid"]
    assert doubled["auroc"]["mean"] == pytest.approx(1.0)
    assert doubled["calibration"]["mean"] == pytest.approx(2.0)
    assert doubled["profile_error"]["mean"] == pytest.approx(math.log10(2.0), abs=1e-6)


def test_dataset_cases_decode_lazily_on_a_chosen_grid(tiny_dataset):
    cases = dataset_cases(tiny_dataset, max_cases=3, size=(96, 64))
    assert len(cases) == 3 and [case.name for case in cases] == [case.name for case in cases]
    case, native = cases[1], dataset_cases(tiny_dataset)[1]
    assert case.image.shape == (3, 64, 96) and case.source == case.name and case.meta["seed"] == 10_000_001
    # Twice the grid: displacements double, so the amplitude does too.
    assert float(motion_amplitude(case.volume.spectrum).mean()) == pytest.approx(
        2 * float(motion_amplitude(native.volume.spectrum).mean()), rel=0.05
    )
    with pytest.raises(GIDInputError, match="aspect"):
        dataset_cases(tiny_dataset, size=(64, 64))[0]


def test_seeds_reproduce_and_differ(tiny_dataset):
    cases = list(dataset_cases(tiny_dataset, max_cases=2))
    first = evaluate_motion(cases, oracle_for(cases, noise=0.05), seeds=(3, 4)).report
    second = evaluate_motion(cases, oracle_for(cases, noise=0.05), seeds=(3, 4)).report
    assert first["cases"] == second["cases"]
    runs = first["cases"][0]["results"]["gid"]
    assert [run["seed"] for run in runs] == [3, 4] and runs[0]["profile_error"] != runs[1]["profile_error"]
    assert first["seed_spread"]["profile_error"]["mean"] > 0


def test_mean_spectrum_reference_and_resampling(tiny_dataset):
    reference = reference_mean_spectrum(tiny_dataset)
    cases = list(dataset_cases(tiny_dataset))
    expected = torch.stack([mean_magnitudes(case.volume) for case in cases]).mean(dim=0)
    torch.testing.assert_close(reference.magnitudes, expected, rtol=1e-6, atol=1e-9)
    volume = reference.volume(64, 96)  # twice the grid: magnitudes double
    torch.testing.assert_close(amplitude(volume.spectrum)[:, 0, 0].double(), 2 * expected, rtol=1e-5, atol=1e-7)
    # A flat density d: magnitudes d sqrt(spacing) on any time base.
    flat = MeanSpectrum(torch.tensor([0.0, 1.0, 1.0, 1.0], dtype=torch.float64) * math.sqrt(0.2), 150, 30.0, (32, 48),
                        "flat")  # fmt: skip
    resampled = flat.resampled(38, 15.0, 5)
    torch.testing.assert_close(resampled.magnitudes[1:], torch.full((4,), math.sqrt(15 / 38), dtype=torch.float64))
    report = evaluate_motion(cases, reference=reference).report
    assert report["baselines"]["mean_spectrum"].startswith("mean |S_k| over moving pixels of 4 samples")
    assert report["methods"] == ["no_motion", "mean_spectrum", "texture"]


def test_leave_one_source_out_needs_two_sources(tiny_dataset):
    case = dataset_cases(tiny_dataset, max_cases=1)[0]
    windows = [MotionCase(f"w{i}", "one-clip.avi", "clip", case.image, case.volume) for i in range(2)]
    with pytest.raises(GIDInputError, match="--reference"):
        evaluate_motion(windows)


def test_cases_without_motion_are_skipped(tiny_dataset):
    case = dataset_cases(tiny_dataset, max_cases=1)[0]
    still = MotionCase("still", "s", "procedural", case.image, SpectralVolume(torch.zeros(4, 4, 32, 48), 12, 4.0))
    report = evaluate_motion([case, still], reference=reference_mean_spectrum(tiny_dataset)).report
    assert report["num_cases"] == 1 and report["skipped"][0]["name"] == "still"


def test_clip_cases_from_tree(tree_clip_path):
    with pytest.raises(GIDInputError, match="fewer than"):
        plan_clips([tree_clip_path], clip_frames=500)
    with pytest.raises(GIDInputError, match="window"):
        plan_clips([tree_clip_path], start_frames=(0, 50), clip_frames=54)
    plans = plan_clips([tree_clip_path], start_frames=(0, 8), clip_frames=54)
    cases = clip_cases(plans, size=(64, 48))
    assert [case.name for case in cases] == ["tree.avi@0", "tree.avi@8"]
    # Each window is what the clip has after its start (54 frames, fewer than 5 s); 46 frames at 15 fps: bins
    # 0.33 Hz apart, kept up to 3 Hz.
    assert [case.volume.num_frames for case in cases] == [54, 46]
    volume = cases[1].volume
    assert (volume.num_frames, volume.fps, volume.num_frequencies, volume.size) == (46, 15.0, 10, (48, 64))
    assert cases[1].masks is not None and cases[1].meta["window_seconds"] == pytest.approx(46 / 15)
    flat = MeanSpectrum(torch.tensor([0.0, 0.1, 0.05, 0.02], dtype=torch.float64), 150, 30.0, (48, 64), "flat")
    report = evaluate_motion(cases, oracle_for(cases), seeds=(0,), reference=flat).report
    oracle = report["summary"]["gid"]
    # Untextured, unchanging pixels are still whatever the flow made up there, so even the truth itself is not a
    # perfect AUROC; all the rest is.
    assert 0.95 < oracle["auroc"]["mean"] < 1.0 and oracle["spearman"]["mean"] == pytest.approx(1.0)
    assert oracle["band_error"]["mean"] == pytest.approx(0.0, abs=1e-9) and oracle["calibration"]["mean"] == 1.0
    assert any(note.startswith("time bases differ: ground truth 46 frames at 15 fps") for note in report["notes"])


def test_report_files_and_table(tiny_dataset, tmp_path):
    cases = list(dataset_cases(tiny_dataset, max_cases=2))
    evaluation = evaluate_motion(cases, oracle_for(cases), seeds=(0, 1), method="oracle")
    report_path, figure_path = write_evaluation(evaluation, tmp_path / "out")
    report = json.loads(report_path.read_text())
    assert report["summary"]["oracle"]["auroc"]["mean"] == pytest.approx(1.0)
    assert figure_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = format_table(report)
    assert "oracle" in table and "mean_spectrum" in table and "1.000 ± 0.000" in table


# ------------------------------------------------------------------------------------------------ renderers


def _case(image: torch.Tensor, flows: torch.Tensor, targets: torch.Tensor) -> RenderCase:
    return RenderCase("synthetic", "procedural", image, flows, targets, flows.norm(dim=1).mean(0, keepdim=True),
                      tuple(range(1, len(flows) + 1)))  # fmt: skip


def test_renderers_reproduce_a_still_scene_exactly():
    image = torch.rand(3, 24, 32, generator=torch.Generator().manual_seed(1))
    case = _case(image, torch.zeros(3, 2, 24, 32), image.expand(3, -1, -1, -1))
    report = evaluate_renderers([case], SplatRenderer(scale_channels=(4, 8))).report
    for name in ("learned", "softmax", "average", "backward_warp", "static"):
        assert report["summary"][name]["psnr"]["mean"] == pytest.approx(100.0)
        assert report["summary"][name]["ssim"]["mean"] == pytest.approx(1.0, abs=1e-5)


def test_backward_warp_of_an_integer_shift():
    image = torch.rand(3, 20, 30, generator=torch.Generator().manual_seed(2))
    flow = torch.zeros(1, 2, 20, 30)
    flow[:, 0], flow[:, 1] = 3.0, -2.0  # content moves right by 3 and up by 2
    warped = backward_warp(image, flow)[0]
    torch.testing.assert_close(warped[:, :18, 3:], image[:, 2:, :27])  # warped(x, y) = image(x - 3, y + 2)


def test_untrained_learned_renderer_is_pixel_softmax_with_its_temperature():
    cases = list(procedural_render_cases(1, size=SIZE, num_frames=SCENE_FRAMES, fps=SCENE_FPS, frame_step=3))
    case = cases[0]
    assert case.flows.shape == (3, 2, 32, 48) and case.times == (3, 6, 9)
    renderer = SplatRenderer(scale_channels=(4, 8))
    evaluation = evaluate_renderers(cases, renderer)
    metric = float(renderer.temperature.detach()) * case.metric[None]
    expected = render_frames(case.image, case.flows, metric, mode="softmax").clamp(0, 1)
    learned = evaluation.report["cases"][0]["results"]["learned"]
    assert learned["psnr"]["mean"] == pytest.approx(float(psnr(expected, case.targets).mean()), abs=1e-3)
    assert learned["ssim"]["mean"] == pytest.approx(float(ssim_per_image(expected, case.targets).mean()), abs=1e-5)
    # Exact displacements and frames: frame 0 is not frame t, rendering with the motion is closer than no motion.
    scene = generate_scene(10_000_000, SIZE, SCENE_FRAMES, SCENE_FPS, SCENE_K, render_frames=True)
    assert torch.equal(case.targets[0], torch.from_numpy(scene.frames[3]).permute(2, 0, 1).float() / 255)
    summary = evaluation.report["summary"]
    assert summary["average"]["psnr"]["mean"] > summary["static"]["psnr"]["mean"]
    assert len(evaluation.rows) == 1 and set(evaluation.rows[0].frames) == set(summary)


# ------------------------------------------------------------------------------------------------ command line


def test_cli_rejects_bad_input_before_work(tmp_path, tiny_dataset, capsys):
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "shard-000000.tar").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    cases = [
        (["evaluate", str(tmp_path / "missing")], "does not exist"),
        (["evaluate", str(tmp_path / "shards")], "no manifest.json"),
        (["evaluate", str(tmp_path / "empty")], "no video files"),
        (["evaluate", str(tmp_path / "notes.txt")], "neither a prepared dataset"),
        (["evaluate", str(tiny_dataset), "--checkpoint", str(tmp_path)], "no model_index.json"),
        (["evaluate-renderer", "--procedural", "0"], "nothing to evaluate"),
        (["evaluate-renderer", "--first-seed", "5"], "training seeds"),
        (["evaluate-renderer", "--checkpoint", str(tmp_path)], "no model_index.json"),
        (["evaluate-renderer", "--renderer", str(tmp_path)], "not a SplatRenderer folder"),
    ]
    for argv, message in cases:
        assert main([*argv, "--out", str(tmp_path / "out")]) == 2, argv
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_baselines_and_renderer(tmp_path, tiny_dataset, tree_clip_path, capsys):
    out = tmp_path / "motion"
    assert main(["evaluate", str(tiny_dataset), "--baselines-only", "--size", "48x32", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["methods"] == ["no_motion", "mean_spectrum", "texture"] and report["num_cases"] == 4
    assert "mean_spectrum" in capsys.readouterr().out

    renderer_dir = tmp_path / "renderer"
    SplatRenderer(scale_channels=(4, 8)).save_pretrained(renderer_dir)
    out = tmp_path / "render"
    argv = ["evaluate-renderer", "--clip", str(tree_clip_path), "--clip-frames", "6", "--procedural", "0", "--size",
            "48x32", "--renderer", str(renderer_dir), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["methods"] == ["learned", "softmax", "average", "backward_warp", "static"]
    assert (out / "figure.png").is_file()


def _tiny_checkpoint(path) -> None:
    """A GIDPipeline folder with tiny random models (K = 4, sampled at 48x32), as save_pretrained writes it."""
    from diffusers import DPMSolverMultistepScheduler

    from gid_pipeline import GIDPipeline
    from gid_pipeline.models import FrequencyUNet, make_spectral_vae
    from gid_pipeline.training.train_unet import make_noise_scheduler

    torch.manual_seed(0)
    unet = FrequencyUNet(num_frequencies=SCENE_K, latent_channels=4, image_embedding_channels=4,
                         image_encoder_channels=(8, 8), block_out_channels=(8, 16),
                         down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
                         attention_head_dim=8, norm_num_groups=4, frequency_attention_levels=(0, 1),
                         frequency_attention_head_dim=8,
                         normalization_scales=(1.0, 0.5, 0.25, 0.1))  # fmt: skip
    vae = make_spectral_vae(block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2,
                            up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4)  # fmt: skip
    scheduler = DPMSolverMultistepScheduler.from_config(make_noise_scheduler("v_prediction").config)
    pipe = GIDPipeline(vae=vae, unet=unet, scheduler=scheduler, renderer=SplatRenderer(scale_channels=(4, 8)),
                       model_size=(32, 48))  # fmt: skip
    pipe.save_pretrained(path)


def test_cli_evaluates_a_pipeline_checkpoint(tmp_path, tiny_dataset, tree_clip_path):
    checkpoint = tmp_path / "checkpoint"
    _tiny_checkpoint(checkpoint)
    out = tmp_path / "out"
    argv = ["evaluate", str(tiny_dataset), "--checkpoint", str(checkpoint), "--seeds", "2", "--steps", "2",
            "--max-cases", "2", "--size", "48x32", "--device", "cpu", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["methods"] == ["gid", "no_motion", "mean_spectrum", "texture"] and report["seeds"] == [0, 1]
    runs = report["cases"][0]["results"]["gid"]
    assert len(runs) == 2 and all(0.0 <= run["auroc"] <= 1.0 for run in runs)
    assert report["command"]["checkpoint"] == str(checkpoint)
    # The random model predicts on 150 frames at 30 fps, the ground truth is 12 frames at 4 fps.
    assert any(note.startswith("time bases differ") for note in report["notes"])

    out = tmp_path / "render"
    argv = ["evaluate-renderer", "--checkpoint", str(checkpoint), "--clip", str(tree_clip_path), "--clip-frames", "6",
            "--procedural", "0", "--size", "48x32", "--device", "cpu", "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((out / "report.json").read_text())["methods"][0] == "learned"


def test_cli_on_a_real_clip_writes_per_clip_figures(tmp_path, tiny_dataset, tree_clip_path, capsys):
    """tests/data/tree.avi (frames 0-53: a hand enters later), 2 s windows, baselines only: per-clip values, the
    mean over clips, a figure of the clip and every metric for the texture baseline."""
    ignore = tmp_path / "ignore.json"
    ignore.write_text(json.dumps({"tree.avi": {"boxes": [[0.0, 0.0, 0.1, 1.0]], "reason": "window frame"},
                                  "elsewhere.mp4": [[0, 0, 1, 1]]}))  # fmt: skip
    out = tmp_path / "out"
    argv = ["evaluate", str(tree_clip_path), "--baselines-only", "--clip-frames", "54", "--window-seconds", "2",
            "--windows", "2", "--size", "96x64", "--reference", str(tiny_dataset), "--ignore", str(ignore),
            "-o", str(out)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["methods"] == ["no_motion", "mean_spectrum", "texture"]
    assert [case["name"] for case in report["cases"]] == ["tree.avi@0", "tree.avi@24"]
    assert all(case["meta"]["window_frames"] == 30 and 0 < case["ignored_fraction"] < 0.2 for case in report["cases"])
    clip = report["clips"][str(tree_clip_path)]
    assert clip["name"] == "tree.avi" and clip["windows"] == ["tree.avi@0", "tree.avi@24"]
    for metric in ("auroc", "spearman", "calibration", "band_error", "profile_error"):
        assert report["summary_over_clips"]["texture"][metric]["n"] == 1, metric
        assert clip["results"]["texture"][metric] is not None, metric
    assert clip["results"]["no_motion"]["spearman"] is None  # constant prediction: no ranking
    assert report["clip_figures"] == ["clips/tree.png"]
    assert (out / "clips" / "tree.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert {"moving_mask", "spearman", "band_error"} <= set(report["definitions"])
    assert report["command"]["command_line"].startswith("gid evaluate ") and report["command"]["ignore"] == str(ignore)
    printed = capsys.readouterr().out
    assert "mean over 1 clips" in printed and "tree.avi" in printed and "band err" in printed


def test_cli_rejects_bad_real_clip_input_with_one_line(tmp_path, tiny_dataset, tree_clip_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "clip.mp4").write_bytes(b"\x00" * 4096)
    bad_box, bad_json = tmp_path / "bad_box.json", tmp_path / "bad.json"
    bad_box.write_text(json.dumps({"tree.avi": [[0.5, 0.0, 0.2, 1.0]]}))
    bad_json.write_text("{")
    clip = [str(tree_clip_path), "--clip-frames", "54"]
    cases = [
        ([str(tmp_path / "broken")], "cannot read"),
        ([*clip, "--start-frames", "50"], "4-frame window after start frame 50"),
        ([*clip, "--window-seconds", "0.2"], "resolving motion up to 3 Hz"),
        ([*clip, "--ignore", str(bad_box)], "box [0.5, 0.0, 0.2, 1.0] of tree.avi"),
        ([*clip, "--ignore", str(bad_json)], "cannot read ignore file"),
        ([*clip, "--ignore", str(tmp_path / "none.json")], "does not exist"),
        ([str(tiny_dataset), "--ignore", str(bad_json)], "--ignore applies to folders of clips"),
    ]
    for argv, message in cases:
        assert main(["evaluate", *argv, "--baselines-only", "--out", str(tmp_path / "out")]) == 2, argv
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, (argv, error)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------ calibration


def _as_clips(cases, windows: int = 2):
    """The dataset's scenes as real-clip cases: each of `windows` consecutive scenes a window of one clip."""
    return [MotionCase(case.name, f"clip{index // windows}.mp4", "clip", case.image, case.volume)
            for index, case in enumerate(cases)]  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.integers(1, 12), elements=st.floats(-3, 3)),
       st.lists(st.floats(0.0, 5.0), min_size=12, max_size=12).filter(lambda w: sum(w) > 0))  # fmt: skip
def test_weighted_median_minimises_weighted_absolute_deviation(values, weights):
    weights = np.asarray(weights[: values.size])
    if not weights.sum() > 0:
        return
    best = weighted_median(values, weights)
    cost = lambda m: float((weights * np.abs(values - m)).sum())  # noqa: E731
    assert all(cost(best) <= cost(m) + 1e-9 for m in np.concatenate([values, np.linspace(-4, 4, 81)]))


def test_a_calibrated_report_scores_what_a_scaled_predictor_scores(tiny_dataset):
    """Recomputed from the report's band RMS, the scale metrics of factor c equal those of sampling c times the
    prediction: calibration scales exactly, the band error (with its floors) is rescored, not approximated."""
    cases = _as_clips(list(dataset_cases(tiny_dataset)))
    noisy = oracle_for(cases, factor=0.3, noise=0.02)
    report = evaluate_motion(cases, noisy, seeds=(0, 1)).report
    clips = clip_scales(report)
    assert [clip.name for clip in clips] == ["clip0.mp4", "clip1.mp4"]
    for factor in (0.5, 3.0):
        def scaled(image, generator, factor=factor):
            volume = noisy(image, generator)
            return SpectralVolume(volume.spectrum * factor, volume.num_frames, volume.fps)

        rescored = evaluate_motion(cases, scaled, seeds=(0, 1)).report["clips"]
        for clip in clips:
            expected = rescored[clip.name]["results"]["gid"]
            assert factor * clip.calibration.mean() == pytest.approx(expected["calibration"], rel=1e-6)
            assert clip.band_error(factor) == pytest.approx(expected["band_error"], rel=1e-6)


def test_fit_recovers_a_known_scale_and_leaves_clips_out(tiny_dataset):
    cases = _as_clips(list(dataset_cases(tiny_dataset)))
    report = evaluate_motion(cases, oracle_for(cases, factor=0.25), seeds=(0,)).report
    fit = fit_calibration(report)
    assert fit["factor"] == pytest.approx(4.0)
    summary = fit["summary_over_clips"]
    assert summary["before"]["calibration"]["mean"] == pytest.approx(0.25)
    # The report's own band error (log10(4) where no band is under the 1e-3 px floor).
    before = report["summary_over_clips"]["gid"]["band_error"]["mean"]
    assert summary["before"]["band_error"]["mean"] == pytest.approx(before) and 0.5 < before <= math.log10(4.0)
    for variant in ("fitted", "leave_one_out"):
        assert summary[variant]["calibration"]["mean"] == pytest.approx(1.0)
        assert summary[variant]["band_error"]["mean"] == pytest.approx(0.0, abs=1e-9)
    assert all(row["leave_one_out"]["factor"] == pytest.approx(4.0) for row in fit["clips"].values())


def test_fit_refuses_reports_it_cannot_use(tiny_dataset):
    cases = list(dataset_cases(tiny_dataset))
    report = evaluate_motion(cases, oracle_for(cases), seeds=(0,)).report
    with pytest.raises(GIDInputError, match="at least 2 videos"):
        fit_calibration(report)  # procedural cases, no real clips
    with pytest.raises(GIDInputError, match="no method 'other'"):
        fit_calibration(report, "other")
    clips = evaluate_motion(_as_clips(cases), oracle_for(cases), seeds=(0,)).report
    for case in clips["cases"]:
        for result in case["results"]["gid"]:
            del result["band_rms_px"]
    with pytest.raises(GIDInputError, match="rerun gid evaluate"):
        fit_calibration(clips)
    with pytest.raises(GIDInputError, match="not a gid evaluate motion report"):
        fit_calibration({"kind": "render"})


def test_cli_calibrate_writes_the_factor_into_the_checkpoint_it_evaluated(tmp_path, tiny_dataset, capsys):
    checkpoint = tmp_path / "checkpoint"
    _tiny_checkpoint(checkpoint)
    cases = _as_clips(list(dataset_cases(tiny_dataset)))
    report = evaluate_motion(cases, oracle_for(cases, factor=0.5), seeds=(0,)).report
    report["command"] = {"checkpoint": str(checkpoint), "motion_calibration": 1.0}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    out = tmp_path / "fit.json"
    assert main(["calibrate", str(path), "--write", str(checkpoint), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "clip0.mp4" in printed and "fitted factor 2" in printed and "mean over clips" in printed
    assert json.loads(out.read_text())["factor"] == pytest.approx(2.0)
    from gid_pipeline import GIDPipeline

    assert GIDPipeline.from_pretrained(checkpoint).config.motion_calibration == pytest.approx(2.0)
    capsys.readouterr()
    # The checkpoint changed since the report: writing again would apply the factor twice.
    assert main(["calibrate", str(path), "--write", str(checkpoint)]) == 2
    error = capsys.readouterr().err
    assert "motion_calibration 2 but the report evaluated a checkpoint with 1.0" in error and error.count("\n") == 1
    assert main(["calibrate", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
