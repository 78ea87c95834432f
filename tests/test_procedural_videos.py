import numpy as np
import pytest

from gid_pipeline.cli import main
from gid_pipeline.data.triples import VideoClips
from gid_pipeline.errors import GIDInputError
from gid_pipeline.media.video import probe_video, read_video
from gid_pipeline.procedural.scenes import generate_scene
from gid_pipeline.procedural.videos import ProceduralVideoConfig, video_path, write_procedural_videos

pytestmark = pytest.mark.usefixtures("one_thread")

CONFIG = ProceduralVideoConfig(size=(64, 48), num_frames=12, fps=6.0)


def test_clips_are_the_scenes_frames(tmp_path):
    paths = write_procedural_videos(2, tmp_path, CONFIG, seed_offset=7)
    assert paths == [video_path(tmp_path, 7), video_path(tmp_path, 8)]
    info = probe_video(paths[0])
    assert (info.width, info.height, info.num_frames) == (64, 48, 12) and info.fps == pytest.approx(6.0)
    scene = generate_scene(7, (64, 48), 12, 6.0, num_frequencies=1, render_frames=True)
    frames = read_video(paths[0]).frames
    error = np.abs(frames.astype(np.float32) - scene.frames.astype(np.float32)).mean()
    assert error < 4.0  # H.264 at crf 18: grey levels
    # Read back as training video with DIS flow, as gid train renderer --data DIR does.
    clip = VideoClips(tmp_path, size=(64, 48), num_frames=12, fps=6.0)(0)
    assert clip.frames.shape == (12, 48, 64, 3) and clip.displacements.shape == (12, 2, 48, 64)


def test_a_rerun_keeps_written_clips_and_adds_the_missing(tmp_path):
    first = write_procedural_videos(1, tmp_path, CONFIG)[0]
    stamp = first.stat().st_mtime_ns
    paths = write_procedural_videos(3, tmp_path, CONFIG, workers=2)
    assert first.stat().st_mtime_ns == stamp
    assert all(path.is_file() for path in paths)
    assert probe_video(paths[2]).num_frames == 12


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(GIDInputError, match="crf"):
        ProceduralVideoConfig(crf=60)
    with pytest.raises(GIDInputError, match="size"):
        ProceduralVideoConfig(size=(16, 16))
    with pytest.raises(GIDInputError, match="frames"):
        ProceduralVideoConfig(num_frames=1)
    with pytest.raises(GIDInputError, match="count"):
        write_procedural_videos(0, tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(GIDInputError, match="cannot create"):
        write_procedural_videos(1, blocker / "inside", CONFIG)


def test_cli_writes_clips(tmp_path, capsys):
    out = tmp_path / "videos"
    assert main(["procedural-videos", "-o", str(out), "--count", "1", "--size", "64x48", "--frames", "8",
                 "--fps", "4", "--workers", "1"]) == 0  # fmt: skip
    assert probe_video(video_path(out, 0)).num_frames == 8
    assert "1 clips" in capsys.readouterr().out
    assert main(["procedural-videos", "-o", str(out), "--count", "1", "--crf", "99"]) == 2
