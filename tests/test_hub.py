"""Pipeline folders on disk and on the Hub: load by repo id from a Hub cache, assemble from training exports,
publish, and the ``gid generate`` / ``gid build-pipeline`` / ``gid publish`` commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import huggingface_hub.constants
import numpy as np
import pytest
import torch
import yaml
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler
from PIL import Image
from test_pipeline import NUM_FRAMES, get_dummy_components, get_dummy_inputs

from gid_pipeline import GIDInputError, GIDPipeline
from gid_pipeline.cli import main
from gid_pipeline.deploy.hub import build_pipeline, load_pipeline, publish
from gid_pipeline.media.video import probe_video
from gid_pipeline.spectral.transform import SpectralNormalizer
from gid_pipeline.spectral.volume import SpectralVolume
from gid_pipeline.training.train_unet import make_noise_scheduler

pytestmark = pytest.mark.usefixtures("one_thread")
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def saved_pipeline(tmp_path):
    """A tiny pipeline folder (with renderer) and the pipeline it was saved from."""
    pipe = GIDPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    folder = tmp_path / "pipeline"
    pipe.save_pretrained(folder)
    return folder, pipe


@pytest.fixture
def training_run(tmp_path):
    """The exports of a (tiny) training run, as gid train vae / unet lay them out."""
    components = get_dummy_components(renderer=True)
    run = tmp_path / "run"
    normalizer = SpectralNormalizer(tuple(components["unet"].config.normalization_scales))
    components["vae"].save_pretrained(run / "vae")
    normalizer.save(run / "vae" / "normalization.json")
    components["unet"].save_pretrained(run / "unet")
    normalizer.save(run / "unet" / "normalization.json")
    make_noise_scheduler("v_prediction").save_pretrained(run / "scheduler")
    components["renderer"].save_pretrained(tmp_path / "renderer")
    return run


def make_hub_cache(cache, repo_id: str, folder) -> None:
    """Lay out ``folder`` as huggingface_hub's cache holds a downloaded snapshot of ``repo_id`` at ``main``."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    """An empty Hub cache in tmp, offline: any attempt to reach the network fails."""
    cache = tmp_path / "hub-cache"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # huggingface_hub reads its environment once, at import.
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def test_load_by_repo_id_from_the_hub_cache_offline(saved_pipeline, offline_hub):
    folder, pipe = saved_pipeline
    make_hub_cache(offline_hub, "someone/gid-tiny", folder)
    loaded = GIDPipeline.from_pretrained("someone/gid-tiny")
    loaded.set_progress_bar_config(disable=True)
    assert loaded.renderer is not None
    expected = pipe(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    assert torch.equal(loaded(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum, expected)
    assert load_pipeline("someone/gid-tiny", scheduler="ddim").scheduler.config.clip_sample is False
    with pytest.raises(GIDInputError, match="someone/missing"):
        GIDPipeline.from_pretrained("someone/missing")


def test_load_pipeline_errors(saved_pipeline, tmp_path):
    folder, _ = saved_pipeline
    with pytest.raises(GIDInputError, match="does not exist"):
        load_pipeline(tmp_path / "nowhere")
    with pytest.raises(GIDInputError, match=r"no model_index\.json"):
        load_pipeline(tmp_path)
    with pytest.raises(GIDInputError, match="unknown scheduler 'euler'"):
        load_pipeline(folder, scheduler="euler")
    pipe = load_pipeline(folder, scheduler="dpm")
    assert isinstance(pipe.scheduler, DPMSolverMultistepScheduler)
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert isinstance(load_pipeline(folder, scheduler="ddim").scheduler, DDIMScheduler)
    weights = next((folder / "unet").glob("*.safetensors"))
    weights.write_bytes(b"\x00" * 64)
    with pytest.raises(GIDInputError, match="cannot load the pipeline"):
        load_pipeline(folder)


def test_build_pipeline_from_training_exports(training_run, tmp_path):
    output = tmp_path / "built"
    code = main(["build-pipeline", "--vae", str(training_run / "vae"), "--unet", str(training_run / "unet"),
                 "--renderer", str(tmp_path / "renderer"), "--size", "48x32", "-o", str(output)])  # fmt: skip
    assert code == 0
    pipe = GIDPipeline.from_pretrained(output)
    assert isinstance(pipe.scheduler, DPMSolverMultistepScheduler)
    assert pipe.scheduler.config.algorithm_type == "dpmsolver++"
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert tuple(pipe.config.model_size) == (32, 48) and pipe.renderer is not None
    assert f'GIDPipeline.from_pretrained("{output}")' in (output / "README.md").read_text()
    umask = os.umask(0)
    os.umask(umask)
    assert {path.stat().st_mode & 0o777 for path in output.rglob("*.safetensors")} == {0o666 & ~umask}
    # Publishing regenerates a generated card for the repo id (a hand-written one is kept, see below).
    upload, _, _ = publish(output, "someone/gid-built", dry_run=True, folder=tmp_path / "upload")
    assert 'GIDPipeline.from_pretrained("someone/gid-built")' in (upload / "README.md").read_text()
    assert str(output) not in (upload / "README.md").read_text()
    pipe.set_progress_bar_config(disable=True)
    assert pipe(**get_dummy_inputs()).frames.shape == (1, NUM_FRAMES, 3, 32, 48)
    # An existing folder is replaced only on request.
    assert main(["build-pipeline", "--vae", str(training_run / "vae"), "--unet", str(training_run / "unet"),
                 "--size", "48x32", "-o", str(output)]) == 2  # fmt: skip
    assert main(["build-pipeline", "--vae", str(training_run / "vae"), "--unet", str(training_run / "unet"),
                 "--size", "48x32", "-o", str(output), "--overwrite"]) == 0  # fmt: skip
    assert GIDPipeline.from_pretrained(output).renderer is None
    assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


def test_build_pipeline_checks_the_pieces_fit(training_run, tmp_path, capsys):
    vae, unet = training_run / "vae", training_run / "unet"
    SpectralNormalizer((1.0, 1.0, 1.0)).save(vae / "normalization.json")
    assert main(["build-pipeline", "--vae", str(vae), "--unet", str(unet), "-o", str(tmp_path / "x")]) == 2
    assert "K = 4 frequencies, the VAE's statistics K = 3" in capsys.readouterr().err
    SpectralNormalizer((1.0, 1.0, 1.0, 1.0)).save(vae / "normalization.json")
    with pytest.raises(GIDInputError, match="other normalisation statistics"):
        build_pipeline(vae, unet, model_size=(32, 48))
    SpectralNormalizer(tuple(GIDPipeline(**get_dummy_components()).unet.config.normalization_scales)).save(
        vae / "normalization.json"
    )
    with pytest.raises(GIDInputError, match="multiple of 4"):
        build_pipeline(vae, unet, model_size=(30, 48))
    config = json.loads((vae / "config.json").read_text())
    (vae / "config.json").write_text(json.dumps({**config, "scaling_factor": 1.0}))
    with pytest.raises(GIDInputError, match="no fitted scaling_factor"):
        build_pipeline(vae, unet, model_size=(32, 48))
    shutil.rmtree(training_run / "scheduler")
    with pytest.raises(GIDInputError, match="training scheduler folder"):
        build_pipeline(vae, unet, model_size=(32, 48))


def test_publish_dry_run_builds_a_loadable_folder_with_a_card(saved_pipeline, tmp_path, capsys):
    folder, pipe = saved_pipeline
    out = tmp_path / "upload"
    assert main(["publish", str(folder), "--repo-id", "someone/gid-tiny", "--dry-run", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "dry run" in printed and "nothing uploaded" in printed
    assert "unet/diffusion_pytorch_model.safetensors" in printed and "model_index.json" in printed
    front_matter = yaml.safe_load((out / "README.md").read_text().split("---")[1])
    assert front_matter["license"] == "apache-2.0"
    assert front_matter["pipeline_tag"] == "image-to-video"
    assert "generative-image-dynamics" in front_matter["tags"]
    assert "someone/gid-tiny" in (out / "README.md").read_text()
    assert not list(out.rglob("*.bin")) and not list(out.rglob("*.pkl"))  # safetensors only
    loaded = GIDPipeline.from_pretrained(out)
    loaded.set_progress_bar_config(disable=True)
    expected = pipe(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    assert torch.equal(loaded(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum, expected)


def test_publish_keeps_the_checkpoint_card_and_its_results(saved_pipeline, tmp_path):
    folder, _ = saved_pipeline
    (folder / "README.md").write_text(
        "---\nlicense: apache-2.0\nmodel-index:\n- name: gid-tiny\n  results:\n  - task:\n      type: image-to-video\n"
        "    dataset:\n      name: held-out clips\n      type: custom\n    metrics:\n    - type: auroc\n"
        "      value: 0.75\n---\n# Our checkpoint\n\nTrained on procedural scenes.\n"
    )
    out, files, url = publish(folder, "someone/gid-tiny", dry_run=True, folder=tmp_path / "upload")
    assert url is None and "README.md" in [str(path) for path in files]
    text = (out / "README.md").read_text()
    front_matter = yaml.safe_load(text.split("---")[1])
    assert front_matter["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.75
    assert front_matter["pipeline_tag"] == "image-to-video"
    assert "Trained on procedural scenes." in text


def test_publish_offline_fails_cleanly(saved_pipeline, offline_hub):
    folder, _ = saved_pipeline
    with pytest.raises(GIDInputError, match="cannot upload to someone/gid-tiny"):
        publish(folder, "someone/gid-tiny")
    with pytest.raises(GIDInputError, match="org/name"):
        publish(folder, "not a repo", dry_run=True)


def test_generate_writes_a_loop_and_its_spectrum(saved_pipeline, tmp_path):
    folder, _ = saved_pipeline
    photo = (np.random.default_rng(0).random((40, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    args = ["generate", str(tmp_path / "photo.png"), "--checkpoint", str(folder), "--steps", "2",
            "--frames", str(NUM_FRAMES), "--fps", "8", "--seed", "3", "--long-side", "32"]  # fmt: skip
    assert main([*args, "-o", str(tmp_path / "loop.mp4"), "--spectrum-out", str(tmp_path / "s.safetensors")]) == 0
    info = probe_video(tmp_path / "loop.mp4")
    assert (info.width, info.height, info.num_frames) == (32, 20, NUM_FRAMES)
    volume = SpectralVolume.load(tmp_path / "s.safetensors")
    assert volume.size == (20, 32) and (volume.num_frames, volume.fps) == (NUM_FRAMES, 8.0)
    # Same seed, same motion (also through another sampler's name for the same scheduler).
    assert main([*args, "-o", str(tmp_path / "again.gif"), "--spectrum-out", str(tmp_path / "t.safetensors"),
                 "--scheduler", "dpm"]) == 0  # fmt: skip
    assert torch.equal(SpectralVolume.load(tmp_path / "t.safetensors").spectrum, volume.spectrum)
    # Speed 0.5 plays the same loop in twice the frames at the same rate; a reversed band is refused before
    # anything is written.
    assert main([*args, "-o", str(tmp_path / "slow.mp4"), "--speed", "0.5", "--band", "0,3"]) == 0
    info = probe_video(tmp_path / "slow.mp4")
    assert (info.num_frames, info.fps) == (2 * NUM_FRAMES, 8.0)
    assert main([*args, "-o", str(tmp_path / "bad.mp4"), "--band", "3,1"]) == 2
    assert not (tmp_path / "bad.mp4").exists()


@pytest.mark.parametrize(
    ("make", "extra", "message"),
    [
        (lambda path: path.write_text("not a picture"), [], "not an image"),
        (lambda path: Image.new("RGB", (8, 8)).save(path, format="PNG"), [], "too small"),
        (
            lambda path: Image.new("RGB", (64, 40)).save(path, format="PNG"),
            ["--checkpoint", "nowhere/x/y"],
            "does not exist",
        ),
        (lambda path: Image.new("RGB", (64, 40)).save(path, format="PNG"), ["--frames", "4"], "num_frames"),
    ],
)
def test_generate_bad_input(saved_pipeline, tmp_path, capsys, make, extra, message):
    folder, _ = saved_pipeline
    make(tmp_path / "photo.png")
    args = ["generate", str(tmp_path / "photo.png"), "-o", str(tmp_path / "loop.mp4"), "--checkpoint", str(folder)]
    assert main([*args, *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "loop.mp4").exists()


def test_generate_unknown_scheduler_is_an_argument_error(saved_pipeline, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["generate", "photo.png", "-o", str(tmp_path / "loop.mp4"), "--scheduler", "euler"])
    assert exit_info.value.code == 2


# ------------------------------------------------------------------ loading the published folder with stock diffusers

# Runs where gid_pipeline cannot be imported: the installed (editable) package is hidden from the import system.
NO_PACKAGE_SCRIPT = """
import importlib.util, os, sys
sys.meta_path = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path = [p for p in sys.path if not os.path.isdir(os.path.join(p or ".", "gid_pipeline"))]
sys.path_importer_cache.clear()
assert importlib.util.find_spec("gid_pipeline") is None, "gid_pipeline is still importable"
import torch
from diffusers import DiffusionPipeline

pipe = DiffusionPipeline.from_pretrained(sys.argv[1], trust_remote_code=True)
pipe.set_progress_bar_config(disable=True)
image = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(123))
out = pipe(image, num_inference_steps=2, num_frames=8, generator=torch.Generator().manual_seed(0), output_type="pt")
torch.save({"class": type(pipe).__name__, "module": sys.modules[type(pipe).__module__].__file__,
            "spectrum": out.spectral_volumes[0].spectrum, "frames": out.frames}, sys.argv[2])
"""


@pytest.fixture
def published(saved_pipeline, tmp_path, monkeypatch):
    """The dry-run upload folder of the tiny pipeline; diffusers' copies of remote code go to tmp."""
    import diffusers.utils.dynamic_modules_utils as dynamic_modules

    monkeypatch.setattr(dynamic_modules, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder, pipe = saved_pipeline
    upload, files, _ = publish(folder, "someone/gid-tiny", dry_run=True, folder=tmp_path / "upload")
    return upload, files, pipe


def test_published_folder_declares_its_custom_code(published):
    upload, files, _ = published
    assert {"pipeline_gid.py", "gid_pipeline_bundle.py", "unet/frequency_unet.py", "renderer/renderer.py"} <= {
        str(path) for path in files
    }
    index = json.loads((upload / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline_gid", "GIDPipeline"]
    assert index["unet"] == ["frequency_unet", "FrequencyUNet"] and index["renderer"] == ["renderer", "SplatRenderer"]
    assert index["scheduler"] == ["diffusers", "DPMSolverMultistepScheduler"]  # diffusers' own classes stay
    assert "_name_or_path" not in index
    # The bundle is the package's own source text, and compiles.
    bundle = (upload / "gid_pipeline_bundle.py").read_text()
    compile(bundle, "gid_pipeline_bundle.py", "exec")
    assert "SOURCES['gid_pipeline.pipeline_gid']" in bundle and "class GIDPipeline(DiffusionPipeline)" in bundle


def test_published_folder_loads_with_stock_diffusers_and_samples_identically(published):
    from diffusers import DiffusionPipeline

    upload, _, pipe = published
    expected = pipe(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    # Stock diffusers, through the remote-code mechanism (here gid_pipeline is installed, so the shims use it).
    with pytest.raises(ValueError, match="trust_remote_code"):
        DiffusionPipeline.from_pretrained(upload)
    remote = DiffusionPipeline.from_pretrained(upload, trust_remote_code=True)
    assert isinstance(remote, GIDPipeline) and remote.renderer is not None
    remote.set_progress_bar_config(disable=True)
    assert torch.equal(remote(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum, expected)
    # GIDPipeline itself reads the published form as its own classes (no code from the folder runs).
    (upload / "pipeline_gid.py").write_text("raise RuntimeError('must not run')\n")
    (upload / "unet" / "frequency_unet.py").write_text("raise RuntimeError('must not run')\n")
    loaded = GIDPipeline.from_pretrained(upload)
    loaded.set_progress_bar_config(disable=True)
    assert torch.equal(loaded(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum, expected)


def test_published_repo_loads_by_repo_id_from_the_hub_cache(published, offline_hub):
    upload, _, pipe = published
    make_hub_cache(offline_hub, "someone/gid-tiny", upload)
    expected = pipe(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum
    loaded = GIDPipeline.from_pretrained("someone/gid-tiny")
    loaded.set_progress_bar_config(disable=True)
    assert torch.equal(loaded(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum, expected)
    # Stock diffusers by repo id too: its own download (offline: the cache) and the repo's remote code.
    from diffusers import DiffusionPipeline

    remote = DiffusionPipeline.from_pretrained("someone/gid-tiny", trust_remote_code=True)
    remote.set_progress_bar_config(disable=True)
    assert isinstance(remote, GIDPipeline)
    assert torch.equal(remote(**get_dummy_inputs(output_type="spectrum")).spectral_volumes[0].spectrum, expected)


@pytest.mark.slow  # a fresh interpreter importing torch and diffusers: about 15 s on the shared 2-core machine
def test_published_folder_loads_where_gid_pipeline_is_not_installed(published, tmp_path):
    """A fresh interpreter that cannot import gid_pipeline loads the folder with stock diffusers and
    trust_remote_code (the vendored bundle), and samples exactly what the source pipeline samples."""
    upload, _, pipe = published
    script = tmp_path / "load.py"
    script.write_text(NO_PACKAGE_SCRIPT)
    environment = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "fresh-modules"), "HF_HUB_OFFLINE": "1",
                   "OMP_NUM_THREADS": "1"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, str(script), str(upload), str(tmp_path / "out.pt")],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = torch.load(tmp_path / "out.pt", weights_only=True)
    assert out["class"] == "GIDPipeline"
    assert "fresh-modules" in out["module"]  # the vendored copy, not the installed package
    expected = pipe(**get_dummy_inputs())
    assert torch.equal(out["spectrum"], expected.spectral_volumes[0].spectrum)
    assert torch.equal(out["frames"], expected.frames)


def test_missing_component_folder_is_named(saved_pipeline):
    folder, _ = saved_pipeline
    shutil.rmtree(folder / "unet")
    with pytest.raises(GIDInputError, match=r"lists the component 'unet' \(FrequencyUNet\) but its folder unet/"):
        GIDPipeline.from_pretrained(folder)
    with pytest.raises(GIDInputError, match="'unet'"):
        load_pipeline(folder)
