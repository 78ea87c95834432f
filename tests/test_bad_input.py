"""The bad-input battery: every bad or odd input to the command line and the pipeline ends with one clear line
(exit code 2 for ``gid``, a GIDInputError for Python), no traceback, nothing half-written, in bounded time.
The app's endpoints have their own table in test_app.py (test_bad_input_gets_a_clear_message)."""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import torch

from gid_pipeline import DEFAULT_CHECKPOINT, GIDInputError
from gid_pipeline.cli import main
from gid_pipeline.spectral.volume import SpectralVolume

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "tests" / "data" / "tree.avi"
HANG_GUARD_S = 60.0  # a bad input is refused long before this; only a hang (no limit checked) reaches it


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Good and bad inputs in one folder; outputs go to a separate one that must stay empty."""
    root = tmp_path_factory.mktemp("inputs")
    noise = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    PIL.Image.fromarray(noise).save(root / "photo.png")
    PIL.Image.fromarray(noise[:1, :1]).save(root / "dot.png")
    PIL.Image.fromarray(np.zeros((40, 40), np.uint8)).save(root / "square_mask.png")
    SpectralVolume(torch.randn(4, 4, 32, 48) * 0.5, 30, 30.0).save(root / "photo.safetensors")
    SpectralVolume(torch.randn(4, 4, 40, 40), 30, 30.0).save(root / "square.safetensors")
    (root / "notes.txt").write_text("not an image\n")
    (root / "empty.png").write_bytes(b"")
    (root / "truncated.png").write_bytes((root / "photo.png").read_bytes()[:200])
    (root / "garbage.mp4").write_bytes(b"\x00\x01garbage" * 100)
    (root / "folder").mkdir()
    (root / "a_file").write_text("x")
    (root / "no_checkpoint").mkdir()
    (root / "broken_checkpoint").mkdir()
    (root / "broken_checkpoint" / "model_index.json").write_text("{not json")
    return {path.name: path for path in root.iterdir()} | {"root": root}


PHOTO, SPEC = "{photo.png}", "{photo.safetensors}"
GEN = ["generate", PHOTO]
REN = ["render", PHOTO, "--spectrum", SPEC]
POKE = ["poke", PHOTO, "--spectrum", SPEC, "--at", "10,10", "--force", "5,0"]
FROM = ["from-video", str(TREE), "--fps", "15", "--size", "160x120"]
CLI_CASES = {
    # generate: the photo
    "gen-missing-photo": ([*GEN[:1], "{root}/nope.jpg", "-o", "{out}/x.mp4"], r"does not exist|no such|not found"),
    "gen-folder-as-photo": ([GEN[0], "{folder}", "-o", "{out}/x.mp4"], r"folder|directory"),
    "gen-text-as-photo": ([GEN[0], "{notes.txt}", "-o", "{out}/x.mp4"], r"not an image"),
    "gen-empty-photo": ([GEN[0], "{empty.png}", "-o", "{out}/x.mp4"], r"empty|not an image"),
    "gen-truncated-photo": ([GEN[0], "{truncated.png}", "-o", "{out}/x.mp4"], r"truncated|corrupt|cannot|not an"),
    "gen-1x1-photo": ([GEN[0], "{dot.png}", "-o", "{out}/x.mp4"], r"too small"),
    # generate: numbers
    "gen-zero-steps": ([*GEN, "-o", "{out}/x.mp4", "--steps", "0"], r"--steps.*positive|must be"),
    "gen-10000-steps": ([*GEN, "-o", "{out}/x.mp4", "--steps", "10000"], r"--steps must be between 1 and 1000"),
    "gen-negative-guidance": ([*GEN, "-o", "{out}/x.mp4", "--guidance-scale", "-3"], r"guidance"),
    "gen-huge-guidance": ([*GEN, "-o", "{out}/x.mp4", "--guidance-scale", "1e9"], r"--guidance-scale must be"),
    "gen-nan-guidance": ([*GEN, "-o", "{out}/x.mp4", "--guidance-scale", "nan"], r"guidance"),
    "gen-huge-self-guidance": ([*GEN, "-o", "{out}/x.mp4", "--self-guidance-scale", "1e9"], r"self-guidance"),
    "gen-huge-amplitude": ([*GEN, "-o", "{out}/x.mp4", "--amplitude", "1e9"], r"amplitude must be between"),
    "gen-negative-amplitude": ([*GEN, "-o", "{out}/x.mp4", "--amplitude", "-1"], r"amplitude"),
    "gen-zero-fps": ([*GEN, "-o", "{out}/x.mp4", "--fps", "0"], r"fps"),
    "gen-huge-fps": ([*GEN, "-o", "{out}/x.mp4", "--fps", "1e9"], r"fps must be"),
    "gen-one-frame": ([*GEN, "-o", "{out}/x.mp4", "--frames", "1"], r"--frames must be between 2"),
    "gen-billion-frames": ([*GEN, "-o", "{out}/x.mp4", "--frames", "1000000000"], r"--frames must be between"),
    "gen-float-frames": ([*GEN, "-o", "{out}/x.mp4", "--frames", "1e9"], r"frames"),
    "gen-negative-seed": ([*GEN, "-o", "{out}/x.mp4", "--seed", "-1"], r"seed must be between 0"),
    "gen-65-bit-seed": ([*GEN, "-o", "{out}/x.mp4", "--seed", str(2**64)], r"seed must be between 0"),
    "gen-word-seed": ([*GEN, "-o", "{out}/x.mp4", "--seed", "abc"], r"a seed is a whole number"),
    "gen-zero-long-side": ([*GEN, "-o", "{out}/x.mp4", "--long-side", "0"], r"long.side|positive"),
    "gen-huge-long-side": ([*GEN, "-o", "{out}/x.mp4", "--long-side", "100000"], r"between 16 and 3840"),
    "gen-backwards-band": ([*GEN, "-o", "{out}/x.mp4", "--band", "2,1"], r"band|low"),
    "gen-word-band": ([*GEN, "-o", "{out}/x.mp4", "--band", "abc"], r"band|pair|LOW,HIGH"),
    "gen-bad-scheduler": ([*GEN, "-o", "{out}/x.mp4", "--scheduler", "euler"], r"invalid choice"),
    "gen-speed-zero": ([*GEN, "-o", "{out}/x.mp4", "--speed", "0"], r"speed"),
    # generate: outputs and checkpoints
    "gen-txt-output": ([*GEN, "-o", "{out}/x.txt"], r"must end in one of \.mp4, \.gif, \.webm"),
    "gen-output-is-folder": ([*GEN, "-o", "{out}/sub.mp4"], r"is a folder"),
    "gen-output-parent-is-file": ([*GEN, "-o", "{a_file}/x.mp4"], r"a_file is a file, not a folder"),
    "gen-spectrum-out-parent-is-file": ([*GEN, "-o", "{out}/x.mp4", "--spectrum-out", "{a_file}/s.safetensors"],
                                        r"a_file is a file, not a folder"),
    "gen-missing-checkpoint": ([*GEN, "-o", "{out}/x.mp4", "--checkpoint", "{root}/nope"], r"nope"),
    "gen-empty-checkpoint": ([*GEN, "-o", "{out}/x.mp4", "--checkpoint", "{no_checkpoint}"], r"model_index\.json"),
    "gen-broken-checkpoint": ([*GEN, "-o", "{out}/x.mp4", "--checkpoint", "{broken_checkpoint}"],
                              r"broken_checkpoint"),
    "gen-missing-mask": ([*GEN, "-o", "{out}/x.mp4", "--mask", "{root}/nope.png"], r"mask"),
    "gen-square-mask": ([*GEN, "-o", "{out}/x.mp4", "--mask", "{square_mask.png}"], r"aspect"),
    "gen-text-mask": ([*GEN, "-o", "{out}/x.mp4", "--mask", "{notes.txt}"], r"mask"),
    # render
    "render-missing-spectrum": (["render", PHOTO, "--spectrum", "{root}/nope.safetensors", "-o", "{out}/x.mp4"],
                                r"does not exist"),
    "render-text-spectrum": (["render", PHOTO, "--spectrum", "{notes.txt}", "-o", "{out}/x.mp4"], r"safetensors"),
    "render-photo-as-spectrum": (["render", PHOTO, "--spectrum", PHOTO, "-o", "{out}/x.mp4"], r"safetensors"),
    "render-other-aspect": (["render", PHOTO, "--spectrum", "{square.safetensors}", "-o", "{out}/x.mp4"],
                            r"aspect ratios differ"),
    "render-one-frame": ([*REN, "-o", "{out}/x.mp4", "--frames", "1"], r"num_frames|frames"),
    "render-billion-frames": ([*REN, "-o", "{out}/x.mp4", "--frames", "1000000000"], r"between 2 and 1000"),
    "render-huge-fps": ([*REN, "-o", "{out}/x.mp4", "--fps", "1e9"], r"fps must be greater than 0 and at most"),
    "render-huge-speed": ([*REN, "-o", "{out}/x.mp4", "--speed", "1e9"], r"speed"),
    "render-huge-amplitude": ([*REN, "-o", "{out}/x.mp4", "--amplitude", "1e9"], r"amplitude"),
    "render-output-parent-is-file": ([*REN, "-o", "{a_file}/x.mp4"], r"a_file is a file, not a folder"),
    "render-output-is-folder": ([*REN, "-o", "{out}/sub.mp4"], r"is a folder"),
    # poke
    "poke-outside": (["poke", PHOTO, "--spectrum", SPEC, "--at", "500,10", "--force", "5,0", "-o", "{out}/x.mp4"],
                     r"outside"),
    "poke-nan-force": (["poke", PHOTO, "--spectrum", SPEC, "--at", "10,10", "--force", "nan,0",
                        "-o", "{out}/x.mp4"], r"force|finite|nan"),
    "poke-zero-frames": ([*POKE, "-o", "{out}/x.mp4", "--frames", "0"], r"frames"),
    "poke-damping-one": ([*POKE, "-o", "{out}/x.mp4", "--damping", "1"], r"damping"),
    "poke-output-parent-is-file": ([*POKE, "-o", "{a_file}/x.mp4"], r"a_file is a file, not a folder"),
    # from-video
    "from-missing-clip": (["from-video", "{root}/nope.mp4", "-o", "{out}/x.mp4"], r"does not exist|not found"),
    "from-garbage-clip": (["from-video", "{garbage.mp4}", "-o", "{out}/x.mp4"], r"not a video file"),
    "from-photo-as-clip": (["from-video", PHOTO, "-o", "{out}/x.mp4"], r"still image"),
    "from-too-few-frames": ([*FROM, "-o", "{out}/x.mp4", "--frames", "5"], r"frames"),
    "from-start-past-end": ([*FROM, "-o", "{out}/x.mp4", "--start", "100000"], r"fits|start|frames"),
    "from-zero-fps": ([*FROM[:2], "--fps", "0", "-o", "{out}/x.mp4"], r"fps"),
    "from-output-parent-is-file": ([*FROM, "-o", "{a_file}/x.mp4"], r"a_file is a file, not a folder"),
    # prepare-data
    "prepare-output-is-file": (["prepare-data", "--procedural", "2", "-o", "{a_file}"], r"it is a file"),
    "prepare-missing-videos": (["prepare-data", "{root}/nope", "-o", "{out}/data"], r"nope"),
    "prepare-nothing-asked": (["prepare-data", "-o", "{out}/data"], r"procedural|VIDEO_DIR|clips"),
}


def _fill(argv: list[str], files: dict[str, Path], out: Path) -> list[str]:
    names = {key: str(value) for key, value in files.items()} | {"out": str(out)}
    return [re.sub(r"\{([^}]+)\}", lambda match: names[match.group(1)], arg) for arg in argv]


@pytest.mark.parametrize("case", list(CLI_CASES), ids=list(CLI_CASES))
def test_cli_bad_input_ends_in_one_line(case, files, tmp_path, capsys):
    argv, message = CLI_CASES[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub.mp4").mkdir()  # an existing folder named like a video
    before = set(files["root"].rglob("*"))
    start = time.monotonic()
    try:
        code = main(_fill(argv, files, out))
    except SystemExit as exit_:  # argparse refused the line itself
        code = exit_.code
    assert code == 2
    elapsed = time.monotonic() - start
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert re.search(message, lines[0], flags=re.I), lines[0]
    assert sorted(p.name for p in out.iterdir()) == ["sub.mp4"]  # nothing written, not even a partial file
    assert set(files["root"].rglob("*")) == before
    assert elapsed < HANG_GUARD_S


# ------------------------------------------------------------------------------------------ the Python API


@pytest.fixture(scope="module")
def pipe():
    from gid_pipeline import GIDPipeline

    pipeline = GIDPipeline.from_pretrained(DEFAULT_CHECKPOINT)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


IMAGE = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(0))
PIPELINE_CASES = {
    "one-generator-two-images": (dict(image=[IMAGE, IMAGE], generator=[torch.Generator()] * 1), r"generator"),
    "two-generators-one-image": (dict(generator=[torch.Generator(), torch.Generator()]), r"generator"),
    "ints-as-generators": (dict(generator=[0, 1]), r"generator"),
    "negative-guidance": (dict(guidance_scale=-3.0), r"guidance_scale must be between 0"),
    "nan-guidance": (dict(guidance_scale=math.nan), r"guidance_scale"),
    "zero-steps": (dict(num_inference_steps=0), r"num_inference_steps"),
    "float-steps": (dict(num_inference_steps=2.5), r"num_inference_steps"),
    "too-few-frames": (dict(num_frames=3), r"num_frames"),
    "bad-output-type": (dict(output_type="gif"), r"output_type"),
    "image-is-a-string-of-nothing": (dict(image=""), r"image|file"),
    "image-wrong-channels": (dict(image=torch.rand(5, 32, 48)), r"channel|shape|image"),
    "image-nan": (dict(image=torch.full((3, 32, 48), math.nan)), r"NaN|finite|image"),
}


@pytest.mark.parametrize("case", list(PIPELINE_CASES), ids=list(PIPELINE_CASES))
def test_pipeline_bad_arguments_raise_gid_input_error(case, pipe):
    overrides, message = PIPELINE_CASES[case]
    kwargs = {"image": IMAGE, "num_inference_steps": 2, "output_type": "spectrum", **overrides}
    with pytest.raises(GIDInputError, match=message):
        pipe(**kwargs)


UNET_ONLY_INDEX = '{"_class_name": "GIDPipeline", "unet": ["gid_pipeline", "FrequencyUNet"]}'


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, r"does not exist"),
        (lambda root: root.mkdir(), r"model_index\.json"),
        (lambda root: (root.mkdir(), (root / "model_index.json").write_text("{")), r"model_index\.json"),
        (lambda root: (root.mkdir(), (root / "model_index.json").write_text(UNET_ONLY_INDEX)), r"unet"),
    ],
    ids=["missing", "empty", "corrupt-index", "missing-weights"],
)
def test_bad_checkpoint_folders_raise_gid_input_error(tmp_path, setup, message):
    from gid_pipeline import GIDPipeline

    root = tmp_path / "checkpoint"
    setup(root)
    for name in (root, str(root)):
        with pytest.raises(GIDInputError, match=message):
            GIDPipeline.from_pretrained(name)


def test_sigterm_during_a_render_leaves_nothing_half_written(files, tmp_path):
    """SIGTERM (what a process manager sends) cleans up as Ctrl-C does: no partial file, one line, exit 143."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "poke.mp4"
    command = [sys.executable, "-m", "gid_pipeline.cli", "poke", str(files["photo.png"]), "--spectrum",
               str(files["photo.safetensors"]), "--at", "10,10", "--force", "5,0", "--frames", "1000", "-o", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + HANG_GUARD_S
    while not list(tmp_path.glob(".poke.mp4.*")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)  # until the writer has started its partial file
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=HANG_GUARD_S)
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1] == "gid poke: terminated; nothing half-written was left behind"
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_a_write_that_fails_midway_ends_in_one_line_and_leaves_nothing(files, tmp_path, capsys, monkeypatch):
    """A full disk, simulated by a writer that fails after its first chunk: exit 2, one line naming the path."""
    import errno

    from gid_pipeline.media import writer

    real_write = writer.VideoWriter.write
    calls = {"n": 0}

    def failing_write(self, frames):
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        return real_write(self, frames)

    monkeypatch.setattr(writer.VideoWriter, "write", failing_write)
    code = main(["render", str(files["photo.png"]), "--spectrum", str(files["photo.safetensors"]), "--frames", "200",
                 "-o", str(tmp_path / "loop.mp4")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "No space left on device" in err[0] and "loop.mp4" in err[0]
    assert list(tmp_path.iterdir()) == []


def test_the_same_command_writes_the_same_bytes(files, tmp_path):
    """Same inputs, same video and spectral volume files, byte for byte (mp4, webm, gif and safetensors)."""
    for suffix in (".mp4", ".webm", ".gif"):
        outputs = []
        for name in ("a", "b"):
            path = tmp_path / f"{name}{suffix}"
            assert main(["render", str(files["photo.png"]), "--spectrum", str(files["photo.safetensors"]),
                         "--frames", "30", "-o", str(path)]) == 0  # fmt: skip
            outputs.append(path.read_bytes())
        assert outputs[0] == outputs[1], suffix
    volume = SpectralVolume.load(files["photo.safetensors"])
    assert volume.save(tmp_path / "x.safetensors").read_bytes() == files["photo.safetensors"].read_bytes()
