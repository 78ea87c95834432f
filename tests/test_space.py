"""The Hugging Face Space folder: built from space.yaml and the checkout, listed by a dry run, runnable as built."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gradio
import huggingface_hub.constants
import pytest
import yaml
from huggingface_hub import metadata_load
from test_pipeline import get_dummy_components

from gid_pipeline import GIDInputError, GIDPipeline
from gid_pipeline.cli import main
from gid_pipeline.deploy.space import build_space, load_manifest, plan_space

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny GIDPipeline folder standing in for assets/gid-default."""
    folder = tmp_path_factory.mktemp("tiny") / "pipeline"
    GIDPipeline(**get_dummy_components(renderer=False)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def built(tmp_path_factory, checkpoint) -> Path:
    folder = tmp_path_factory.mktemp("space") / "space"
    build_space(ROOT, folder, checkpoint)
    return folder


def test_the_readme_front_matter_is_space_yaml(built):
    manifest = yaml.safe_load((ROOT / "space.yaml").read_text(encoding="utf-8"))
    assert metadata_load(built / "README.md") == manifest  # read as the Hub reads it
    body = (built / "README.md").read_text(encoding="utf-8").split("---\n", 2)[2]
    assert body.lstrip().startswith(f"# {manifest['title']}") and "US 10,354,397" in body


def test_space_yaml_is_a_gradio_space_on_the_pinned_gradio(built):
    manifest = load_manifest(ROOT / "space.yaml")
    assert (manifest["sdk"], manifest["app_file"], manifest["license"]) == ("gradio", "app.py", "apache-2.0")
    assert manifest["sdk_version"] == gradio.__version__
    assert f"gradio=={manifest['sdk_version']}" in (ROOT / "requirements.txt").read_text().split()
    # The Space installs gradio from sdk_version; its requirements carry the rest of the project's.
    space_requirements = [line for line in (built / "requirements.txt").read_text().splitlines() if line[:1] != "#"]
    assert not any(line.startswith("gradio") for line in space_requirements)
    assert {"diffusers==0.42.1", "safetensors>=0.4"} <= set(space_requirements)


def test_the_folder_holds_the_app_the_package_the_examples_with_licenses_and_the_checkpoint(built, checkpoint):
    assert (built / "app.py").read_bytes() == (ROOT / "app.py").read_bytes()
    assert (built / "LICENSE").is_file() and (built / "assets" / "LICENSES.md").is_file()
    assert (built / "gid_pipeline" / "pipeline_gid.py").is_file() and (built / "gid_pipeline" / "cli").is_dir()
    assert not list(built.rglob("__pycache__")) and not list(built.rglob("*.pyc"))
    licenses = (built / "assets" / "LICENSES.md").read_text(encoding="utf-8")
    examples = sorted(path.name for path in (built / "assets" / "examples").iterdir())
    for name in examples:
        if name.endswith((".jpg", ".mp4")):
            assert f"`examples/{name}`" in licenses  # every example is named with its license
    assert {"mate-backgrounds.copyright", "plasma-workspace-wallpapers.copyright", "tree.mp4.copyright"} <= set(
        examples
    )
    shipped = sorted(p.relative_to(built / "assets" / "gid-default") for p in (built / "assets/gid-default").rglob("*"))
    assert shipped == sorted(p.relative_to(checkpoint) for p in checkpoint.rglob("*"))
    attributes = (built / ".gitattributes").read_text()
    assert "*.safetensors filter=lfs" in attributes and "*.mp4 filter=lfs" in attributes


def test_the_built_space_runs_from_its_own_folder(built):
    """The Space's app imports the Space's copy of the package and finds the checkpoint it ships (whose files
    are checked above; loading it is the pipeline's own business)."""
    script = (
        "import app, gid_pipeline, gid_pipeline.app; "  # app.py imports the Space's copy of the package
        "checkpoint = gid_pipeline.app.resolve_checkpoint(); "
        "gid_pipeline.app.build_demo(); "
        "print(gid_pipeline.__file__); print(checkpoint)"
    )
    environment = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    environment.pop("GID_CHECKPOINT", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=built, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    package, checkpoint = result.stdout.split()[-2:]
    assert Path(package).resolve().is_relative_to(built.resolve())
    assert Path(checkpoint) == (built / "assets" / "gid-default").resolve()


def test_dry_run_lists_files_and_sizes_without_network(checkpoint, capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    assert main(["publish-space", "--dry-run", "--root", str(ROOT), "--checkpoint", str(checkpoint)]) == 0
    output = capsys.readouterr().out
    lines = output.splitlines()
    assert any(line.endswith("  README.md") for line in lines)
    assert any(line.endswith("  assets/gid-default/model_index.json") for line in lines)
    assert any(line.endswith("  assets/examples/meadow.jpg") and "134 kB" in line for line in lines)
    assert f"{len(plan_space(ROOT, checkpoint))} files" in lines[-1] and "nothing uploaded" in lines[-1]


def test_publishing_needs_a_space_id_and_reports_network_failure_in_one_line(checkpoint, capsys, monkeypatch):
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    argv = ["publish-space", "--root", str(ROOT), "--checkpoint", str(checkpoint)]
    assert main(argv) == 2
    assert "give --space-id ORG/NAME" in capsys.readouterr().err
    assert main([*argv, "--space-id", "someone/gid-demo"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("gid publish-space: error: cannot publish to the Space someone/gid-demo")
    assert "offline mode is enabled" in error and "\n" not in error


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda manifest: manifest.update(sdk="docker"), "sdk must be gradio"),
        (lambda manifest: manifest.update(short_description="x" * 61), "at most 60 characters"),
        (lambda manifest: manifest.pop("app_file"), "lacks app_file"),
    ],
    ids=["docker-sdk", "long-description", "no-app-file"],
)
def test_a_bad_manifest_is_named(tmp_path, edit, message):
    manifest = yaml.safe_load((ROOT / "space.yaml").read_text(encoding="utf-8"))
    edit(manifest)
    (tmp_path / "space.yaml").write_text(yaml.safe_dump(manifest), encoding="utf-8")
    with pytest.raises(GIDInputError, match=message):
        load_manifest(tmp_path / "space.yaml")


def test_a_missing_checkpoint_or_a_used_output_folder_is_refused(tmp_path, checkpoint):
    with pytest.raises(GIDInputError, match=r"no checkpoint at .*\(model_index\.json missing\)"):
        plan_space(ROOT, tmp_path / "nowhere")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("keep me")
    with pytest.raises(GIDInputError, match="not an empty folder"):
        build_space(ROOT, tmp_path / "out", checkpoint)
    assert (tmp_path / "out" / "old.txt").read_text() == "keep me"
