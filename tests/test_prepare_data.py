"""`gid prepare-data`: real clips and procedural scenes into shards; filters, bad input, interruption and resume."""

import errno
import json
import shutil

import numpy as np
import pytest
import torch

from gid_pipeline.cli import main
from gid_pipeline.data import builder
from gid_pipeline.data.builder import cover_size
from gid_pipeline.data.shards import ShardWriter, iter_dataset, iter_shard, open_dataset
from gid_pipeline.data.windows import REJECTION_REASONS, VideoConfig, WindowFilters, analyse_window, check_window
from gid_pipeline.media.video import read_video
from gid_pipeline.media.writer import write_video
from gid_pipeline.motion.flow import estimate_flow
from gid_pipeline.procedural.scenes import generate_scene
from gid_pipeline.spectral.transform import motion_to_spectrum

# tree.avi at 15 fps: 68 frames, a hand enters at frame 54. Windows of 40 frames every 10: starts 0, 10, 20.
TREE_ARGS = ["--frames", "40", "--fps", "15", "--stride", "10", "--size", "128x80", "--workers", "1"]
SMALL_ARGS = ["--frames", "40", "--fps", "15", "--stride", "10", "--size", "64x40", "--workers", "1"]
PROCEDURAL_ARGS = ["--size", "64x48", "--frames", "20", "--num-frequencies", "4"]


def manifest(root):
    return json.loads((root / "manifest.json").read_text())


def snapshot(root):
    """Everything a build leaves, by file name: the bytes of every file (a temporary file would show up too)."""
    return {path.name: path.read_bytes() for path in sorted(root.iterdir())}


@pytest.fixture(scope="module")
def tree_dataset(tmp_path_factory, tree_clip_path):
    """The real clip, an unreadable file among it and a non-video file, prepared at 128x80."""
    videos = tmp_path_factory.mktemp("videos")
    shutil.copy(tree_clip_path, videos / "tree.avi")
    (videos / "broken.mp4").write_bytes(b"not really an mp4")
    (videos / "notes.txt").write_text("not a video, not listed")
    out = tmp_path_factory.mktemp("dataset") / "tree"
    assert main(["prepare-data", str(videos), "-o", str(out), *TREE_ARGS, "--samples-per-shard", "1"]) == 0
    return out


def test_tree_clip_gives_windows_and_records_the_rejected_one(tree_dataset):
    record = manifest(tree_dataset)
    samples = list(iter_dataset(open_dataset(tree_dataset)))
    starts = [sample.meta["start_frame"] for sample in samples]
    rejected = {r["start_frame"]: r for r in record["rejected"]}
    # The clean windows (frames 0-39, 10-49) are kept; the last one (20-59) shows the hand entering: 99 % of the
    # pixels move less than 3 px in the others, the hand moves 29 px.
    assert starts == [0, 10] and list(rejected) == [20]
    assert rejected[20]["reason"] == "too_much_motion" and rejected[20]["reason"] in REJECTION_REASONS
    assert rejected[20]["source"] == "tree.avi" and "> 16" in rejected[20]["detail"]
    assert record["complete"] and record["num_samples"] == len(samples)
    assert [shard["num_samples"] for shard in record["shards"]] == [1] * len(samples)
    assert record["config"]["size"] == [128, 80] and record["config"]["spectrum_dtype"] == "float16"
    for sample in samples:
        assert sample.image.shape == (80, 128, 3) and sample.spectrum.shape == (16, 4, 80, 128)
        assert sample.meta["source"] == "tree.avi" and sample.meta["fps"] == 15.0
        assert set(sample.meta["scores"]) == {
            "histogram_jump", "intensity_jump", "camera_motion_px", "consistent_fraction", "motion_px",
        }  # fmt: skip
    assert (tree_dataset / "normalization.json").is_file() and (tree_dataset / "README.md").is_file()


def test_unreadable_files_are_listed_and_others_ignored(tree_dataset):
    errors = manifest(tree_dataset)["errors"]
    assert [e["source"] for e in errors] == ["broken.mp4"]
    assert "broken.mp4" in errors[0]["error"]


def test_stored_target_is_the_spectrum_of_flow_on_the_centre_crop(tree_dataset, tree_clip_path):
    sample = next(s for s in iter_dataset(open_dataset(tree_dataset)) if s.meta["start_frame"] == 10)
    assert cover_size((320, 240), (128, 80)) == (128, 96)
    frames = read_video(tree_clip_path, fps=15, start=10, num_frames=40, size=(128, 96)).frames[:, 8:88]
    np.testing.assert_array_equal(sample.image, frames[0])
    expected = motion_to_spectrum(torch.from_numpy(estimate_flow(frames).flow), 16)
    torch.testing.assert_close(sample.spectrum, expected, rtol=2e-3, atol=2e-3 * float(expected.abs().max()))


def test_default_window_is_longer_than_the_clip(tmp_path, tree_clip_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(tree_clip_path, videos / "tree.avi")
    # No usable window is an error (exit 2, the reason counted in one line), and a first build leaves nothing.
    assert main(["prepare-data", str(videos), "-o", str(tmp_path / "out"), "--workers", "1"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no usable window" in last and "too_short 1" in last
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", [None, "notes.txt"])
def test_a_folder_without_videos_is_a_clear_error(tmp_path, capsys, content):
    (tmp_path / "videos").mkdir()
    if content:
        (tmp_path / "videos" / content).write_text("hello")
    assert main(["prepare-data", str(tmp_path / "videos"), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "contains no video files" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_only_unreadable_files_is_an_error(tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "a.mov").write_bytes(b"junk")
    assert main(["prepare-data", str(tmp_path / "videos"), "-o", str(tmp_path / "out"), "--workers", "1"]) == 2
    assert "none of the 1 video files could be read" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # a failed first build leaves nothing behind


def test_a_folder_without_a_usable_window_is_an_error_and_leaves_nothing(tmp_path, capsys):
    from gid_pipeline.media.writer import write_video

    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "still.mp4", np.full((40, 64, 96, 3), 120, np.uint8), fps=30)
    args = ["prepare-data", str(tmp_path / "videos"), "-o", str(tmp_path / "out"), "--workers", "1",
            "--frames", "30", "--size", "96x64"]  # fmt: skip
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "no usable window" in err[-1] and "nothing was written" in err[-1]
    assert not (tmp_path / "out").exists()


def test_source_and_output_are_checked(tmp_path, capsys, tree_dataset, tree_clip_path):
    assert main(["prepare-data", "-o", str(tmp_path / "out")]) == 2
    assert "either a VIDEO_DIR or --procedural" in capsys.readouterr().err
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.pdf").write_text("precious")
    assert main(["prepare-data", "--procedural", "2", "-o", str(tmp_path / "busy"), *PROCEDURAL_ARGS]) == 2
    assert "not empty and holds no gid dataset" in capsys.readouterr().err
    # Resuming with other settings would mix incompatible samples; nothing of the dataset is touched.
    before = snapshot(tree_dataset)
    videos = tmp_path / "v"
    videos.mkdir()
    shutil.copy(tree_clip_path, videos / "tree.avi")
    assert main(["prepare-data", str(videos), "-o", str(tree_dataset), *TREE_ARGS, "--size", "64x40"]) == 2
    assert snapshot(tree_dataset) == before
    err = capsys.readouterr().err
    assert "other settings" in err and "size: [128, 80] -> [64, 40]" in err


def _frames(image, shifts):
    """Frames of ``image`` (H, W, 3) translated by each (dx, dy) in ``shifts``, bilinear, edges replicated."""
    import cv2

    height, width = image.shape[:2]
    return np.stack(
        [
            cv2.warpAffine(
                image, np.float32([[1, 0, dx], [0, 1, dy]]), (width, height), borderMode=cv2.BORDER_REPLICATE
            )
            for dx, dy in shifts
        ]
    )


def test_filters_catch_cuts_camera_motion_and_stillness():
    a = generate_scene(0, size=(96, 64), num_frames=20, fps=30, num_frequencies=4, render_frames=True).frames
    b = generate_scene(3, size=(96, 64), num_frames=20, fps=30, num_frequencies=4).image
    video = VideoConfig()
    ok = analyse_window(a, 4, video)
    assert ok.reason is None and ok.spectrum.shape == (4, 4, 64, 96)
    cut = analyse_window(np.concatenate([a[:10], np.repeat(b[None], 10, axis=0)]), 4, video)
    assert cut.reason == "scene_cut" and cut.spectrum is None and "motion_px" not in cut.scores  # no flow spent
    pan = analyse_window(_frames(a[0], [(0.3 * t, 0.1 * t) for t in range(20)]), 4, video)
    assert pan.reason == "camera_motion" and pan.scores["camera_motion_px"] > 1.0
    still = analyse_window(np.repeat(a[:1], 20, axis=0), 4, video)
    assert still.reason == "no_motion" and still.scores["motion_px"] < 0.01


def test_check_window_reports_the_first_failure():
    filters = WindowFilters()
    scores = {"histogram_jump": 0.0, "intensity_jump": 0.0, "camera_motion_px": 0.1, "motion_px": 40.0,
              "consistent_fraction": 0.2}  # fmt: skip
    assert check_window(scores, filters)[0] == "too_much_motion"  # large motion also breaks consistency
    assert check_window({**scores, "motion_px": 3.0}, filters)[0] == "inconsistent_flow"
    assert check_window({**scores, "motion_px": 3.0, "consistent_fraction": 0.9}, filters) is None
    reason, detail = check_window({**scores, "motion_px": 0.1, "consistent_fraction": 0.9}, filters)
    assert reason == "no_motion" and "0.1 < 0.5" in detail


@pytest.fixture(scope="module")
def two_clips(tmp_path_factory, tree_clip_path):
    videos = tmp_path_factory.mktemp("two")
    (videos / "b").mkdir()
    shutil.copy(tree_clip_path, videos / "a.avi")
    write_video(videos / "b" / "c.mp4", read_video(tree_clip_path).frames, fps=15)
    return videos


def test_interrupted_build_resumes_to_the_uninterrupted_result(tmp_path, two_clips, monkeypatch, capsys):
    args = ["prepare-data", str(two_clips), *SMALL_ARGS, "--samples-per-shard", "2"]
    assert main([*args, "-o", str(tmp_path / "reference")]) == 0
    reference = snapshot(tmp_path / "reference")
    assert manifest(tmp_path / "reference")["num_samples"] >= 3

    calls = []
    run_task = builder._run_video_task

    def interrupted_after_first_clip(task):
        calls.append(task.plan.source)
        if task.plan.source != calls[0]:  # Ctrl-C as the second clip starts
            raise KeyboardInterrupt
        return run_task(task)

    monkeypatch.setattr(builder, "_run_video_task", interrupted_after_first_clip)
    assert main([*args, "-o", str(tmp_path / "resumed")]) == 130
    assert "interrupted" in capsys.readouterr().err
    partial = manifest(tmp_path / "resumed")
    assert not partial["complete"] and len(partial["shards"]) >= 1  # the first clip's full shard was committed
    assert sorted(p.name for p in (tmp_path / "resumed").glob("*.tar")) == [s["name"] for s in partial["shards"]]
    assert not list((tmp_path / "resumed").glob(".*"))  # no temporary file left
    for shard in partial["shards"]:
        assert len(list(iter_shard(tmp_path / "resumed" / shard["name"]))) == shard["num_samples"]

    monkeypatch.setattr(builder, "_run_video_task", run_task)
    assert main([*args, "-o", str(tmp_path / "resumed")]) == 0
    assert snapshot(tmp_path / "resumed") == reference
    # A complete dataset reruns as a no-op.
    assert main([*args, "-o", str(tmp_path / "resumed")]) == 0
    assert "(0 new)" in capsys.readouterr().out
    assert snapshot(tmp_path / "resumed") == reference


def test_full_disk_leaves_no_corrupt_shard_and_resumes(tmp_path, monkeypatch, capsys):
    args = ["prepare-data", "--procedural", "7", *PROCEDURAL_ARGS, "--samples-per-shard", "2", "--workers", "1"]
    assert main([*args, "-o", str(tmp_path / "reference")]) == 0
    reference = snapshot(tmp_path / "reference")

    add = ShardWriter.add

    def disk_fills_up(self, key, files):
        if self.path.name == "shard-000002.tar" and self.num_samples == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        add(self, key, files)

    monkeypatch.setattr(ShardWriter, "add", disk_fills_up)
    assert main([*args, "-o", str(tmp_path / "full"), "--workers", "2"]) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and "rerun the same command to resume" in err
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["manifest.json", "shard-000000.tar",
                                                                      "shard-000001.tar"]  # fmt: skip
    assert [s["num_samples"] for s in manifest(tmp_path / "full")["shards"]] == [2, 2]

    monkeypatch.setattr(ShardWriter, "add", add)
    assert main([*args, "-o", str(tmp_path / "full")]) == 0  # one worker finishes what two started: same bytes
    assert snapshot(tmp_path / "full") == reference


def test_procedural_dataset_extends_with_more_seeds(tmp_path):
    args = ["prepare-data", *PROCEDURAL_ARGS, "--workers", "1", "-o", str(tmp_path / "d")]
    assert main([*args, "--procedural", "3"]) == 0
    assert main([*args, "--procedural", "2", "--seed-offset", "2"]) == 0  # seed 2 is done, 3 is new
    record = manifest(tmp_path / "d")
    assert record["done"] == {"procedural": [[0, 3]]} and record["num_samples"] == 4
    seeds = [s.meta["seed"] for s in iter_dataset(open_dataset(tmp_path / "d"))]
    assert seeds == [0, 1, 2, 3]
