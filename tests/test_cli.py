"""The ``gid`` command end to end: real clip in, playable loop out; bad input gives one clear line, no traceback."""

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from gid_pipeline.cli import main
from gid_pipeline.errors import GIDInputError
from gid_pipeline.media.video import probe_video, read_video
from gid_pipeline.media.writer import write_video
from gid_pipeline.spectral.volume import SpectralVolume


@pytest.fixture(scope="module")
def tree_loop(tmp_path_factory, tree_clip_path):
    """`gid from-video` on the real tree clip at a small size (frames 0-53 at 15 fps; a hand enters at 54)."""
    out = tmp_path_factory.mktemp("tree")
    code = main([
        "from-video", str(tree_clip_path), "-o", str(out / "loop.mp4"), "--spectrum-out", str(out / "tree.safetensors"),
        "--frames", "54", "--fps", "15", "--size", "160x120",
    ])
    assert code == 0
    return out


def test_from_video_writes_a_playable_seamless_loop(tree_loop, tree_clip_path):
    info = probe_video(tree_loop / "loop.mp4")
    assert (info.width, info.height, info.codec) == (160, 120, "h264")
    loop = read_video(tree_loop / "loop.mp4")
    assert loop.frames.shape == (54, 120, 160, 3)
    assert loop.fps == pytest.approx(15.0)
    first = read_video(tree_clip_path, num_frames=1, size=(160, 120)).frames[0].astype(np.float32)
    # Frame 0 is the clip's first frame (up to H.264 compression of a small, detailed picture); later ones move.
    still_error = np.abs(loop.frames[0].astype(np.float32) - first).mean()
    assert still_error < 4.0
    assert np.abs(loop.frames[20].astype(np.float32) - first).mean() > 1.5 * still_error


def test_from_video_saves_its_spectral_volume(tree_loop):
    volume = SpectralVolume.load(tree_loop / "tree.safetensors")
    assert volume.spectrum.shape == (16, 4, 120, 160)
    assert (volume.num_frames, volume.fps) == (54, 15.0)
    amplitude = volume.amplitude()[1:].sum(dim=0)
    # The tree's crown moves far more than the still window frame (the dark vertical bar near the left edge).
    crown, window_frame = amplitude[10:40, 70:120], amplitude[20:100, 10:18]
    assert crown.median() > 3 * window_frame.median()


def test_render_reuses_a_spectrum_at_another_size(tree_loop, tmp_path, tree_clip_path):
    image = read_video(tree_clip_path, num_frames=1, size=(320, 240)).frames[0]
    from PIL import Image

    Image.fromarray(image).save(tmp_path / "still.png")
    code = main([
        "render", str(tmp_path / "still.png"), "--spectrum", str(tree_loop / "tree.safetensors"),
        "-o", str(tmp_path / "big.gif"), "--speed", "2",
    ])
    assert code == 0
    gif = read_video(tmp_path / "big.gif")
    # One period (3.6 s) twice as fast is 27 frames at 15 fps, which would alias the 16 frequencies: 30 frames.
    assert gif.frames.shape == (30, 240, 320, 3)


def test_console_script_reports_bad_input_without_traceback(tmp_path):
    (tmp_path / "notes.txt").write_text("not a video")
    result = subprocess.run(
        [sys.executable, "-m", "gid_pipeline.cli", "from-video", str(tmp_path / "notes.txt"), "-o",
         str(tmp_path / "loop.mp4")],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "gid from-video: error:" in result.stderr
    assert not (tmp_path / "loop.mp4").exists()


def still_clip(path, frames=40):
    write_video(path, np.full((frames, 48, 64, 3), 120, np.uint8), fps=15)
    return path


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda d, clip: ["from-video", str(d / "missing.mp4"), "-o", str(d / "o.mp4")], "missing.mp4"),
        (lambda d, clip: ["from-video", str(clip), "-o", str(d / "o.mp4"), "--frames", "500"], "frames"),
        (lambda d, clip: ["from-video", str(clip), "-o", str(d / "o.mp4"), "--frames", "40", "--fps", "15"],
         "no motion"),
        (lambda d, clip: ["from-video", str(clip), "-o", str(d / "o.mp4"), "--frames", "20", "--fps", "15"],
         "frequencies"),
    ],
)
def test_from_video_bad_input(tmp_path, capsys, make_args, message):
    clip = still_clip(tmp_path / "still.mp4")
    assert main(make_args(tmp_path, clip)) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_from_video_still_image_is_not_a_clip(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "still.jpg")
    assert main(["from-video", str(tmp_path / "still.jpg"), "-o", str(tmp_path / "o.mp4")]) == 2
    assert "still image" in capsys.readouterr().err


def test_truncated_video(tmp_path, capsys, tree_clip_path):
    data = tree_clip_path.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 3])
    assert main(["from-video", str(tmp_path / "cut.avi"), "-o", str(tmp_path / "o.mp4"), "--frames", "54",
                 "--fps", "15"]) == 2
    assert "cut.avi" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_render_bad_spectra(tmp_path, capsys):
    from PIL import Image

    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "img.png")
    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps({"spectrum": 1}))
    assert main(["render", str(tmp_path / "img.png"), "--spectrum", str(tmp_path / "evil.safetensors"),
                 "-o", str(tmp_path / "o.mp4")]) == 2
    assert "not a safetensors" in capsys.readouterr().err

    SpectralVolume(torch.zeros(4, 4, 30, 60), 30, 30.0).save(tmp_path / "wide.safetensors")
    assert main(["render", str(tmp_path / "img.png"), "--spectrum", str(tmp_path / "wide.safetensors"),
                 "-o", str(tmp_path / "o.mp4")]) == 2
    assert "aspect ratios differ" in capsys.readouterr().err

    nan = torch.zeros(4, 4, 40, 40)
    nan[0, 0, 0, 0] = float("inf")
    from safetensors.torch import save_file

    save_file({"spectrum": nan}, str(tmp_path / "inf.safetensors"),
              {"format": "gid_pipeline.spectral.volume", "num_frames": "30", "fps": "30"})
    assert main(["render", str(tmp_path / "img.png"), "--spectrum", str(tmp_path / "inf.safetensors"),
                 "-o", str(tmp_path / "o.mp4")]) == 2
    assert "NaN or infinite" in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


def test_argument_errors_exit_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["from-video", "clip.mp4", "-o", str(tmp_path / "loop.avi")])
    assert exit_info.value.code == 2
    assert "must end in one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["from-video", "clip.mp4", "-o", "x.mp4", "--size", "big"])


def test_poke_renders_a_response_that_settles(tree_loop, tmp_path, tree_clip_path):
    from PIL import Image

    Image.fromarray(read_video(tree_clip_path, num_frames=1, size=(160, 120)).frames[0]).save(tmp_path / "tree.png")
    code = main([
        "poke", str(tmp_path / "tree.png"), "--spectrum", str(tree_loop / "tree.safetensors"), "--at", "85,30",
        "--force", "4,0", "--frames", "60", "--fps", "15", "-o", str(tmp_path / "poke.mp4"),
    ])
    assert code == 0
    frames = read_video(tmp_path / "poke.mp4").frames.astype(np.float32)
    assert frames.shape == (60, 120, 160, 3)
    change = np.abs(frames - frames[0]).mean(axis=(1, 2, 3))
    assert change[1:15].max() > 1.0  # the tree swings
    assert change[-5:].mean() < change[1:15].max()  # and settles


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--at", "500,30", "--force", "4,0"], "outside"),
        (["--at", "85,30", "--force", "nan,0"], "finite"),
        (["--at", "85,30", "--force", "4,0", "--damping", "1.5"], "damping"),
    ],
)
def test_poke_bad_input(tree_loop, tmp_path, capsys, extra, message):
    from PIL import Image

    Image.fromarray(np.zeros((120, 160, 3), np.uint8)).save(tmp_path / "img.png")
    args = ["poke", str(tmp_path / "img.png"), "--spectrum", str(tree_loop / "tree.safetensors"),
            "-o", str(tmp_path / "o.mp4"), *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_from_video_native_resolution_tvl1(tmp_path, tree_clip_path):
    """The whole clip at its own 320x240 with TV-L1 flow (about a minute on 2 cores)."""
    code = main([
        "from-video", str(tree_clip_path), "-o", str(tmp_path / "loop.webm"), "--spectrum-out",
        str(tmp_path / "tree.safetensors"), "--frames", "54", "--fps", "15", "--method", "tvl1",
    ])
    assert code == 0
    assert read_video(tmp_path / "loop.webm").frames.shape == (54, 240, 320, 3)
    amplitude = SpectralVolume.load(tmp_path / "tree.safetensors").amplitude()[1:].sum(dim=0)
    crown, window_frame = amplitude[20:80, 140:240], amplitude[40:200, 20:36]
    assert crown.median() > 3 * window_frame.median()


def test_the_library_loads_neither_gradio_nor_matplotlib():
    """pip install gid_pipeline (no extras) is enough to sample, play and poke: the app's packages stay out."""
    code = ("import sys, gid_pipeline, gid_pipeline.pipeline_gid, gid_pipeline.player, gid_pipeline.cli; "
            "print(sorted(m for m in ('gradio', 'matplotlib') if m in sys.modules))")  # fmt: skip
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_a_missing_extra_is_named(monkeypatch):
    import importlib.util

    from gid_pipeline.extras import require

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    with pytest.raises(GIDInputError, match=r"this needs gradio: pip install 'gid_pipeline\[app\]'"):
        require("gradio", "numpy")
