"""The photographic world: photo textures, the new scene types and camera realism keep the procedural scenes'
contracts (exact, band-limited motion; still is exactly still; frames are frame 0 warped by the motion), and the
painted scenes without a world are unchanged."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest
import torch
from test_procedural import H, K, T, W, _largest_motion_frames, _textured_interior
from test_texture_bank import CROPS, PACKAGES, source_root  # noqa: F401 (source_root is a fixture)

from gid_pipeline.data.builder import photo_world
from gid_pipeline.errors import GIDInputError
from gid_pipeline.procedural import SCENE_TYPES, generate_scene
from gid_pipeline.procedural.photo_world import PHOTO_SCENE_TYPES, WORLD_CYCLE, CameraGrade, PhotoWorld
from gid_pipeline.procedural.texture_bank import MATERIALS, TextureBank, build_texture_bank
from gid_pipeline.spectral.transform import motion_to_spectrum, spectrum_to_motion

WORLD_TYPES = SCENE_TYPES + PHOTO_SCENE_TYPES


@pytest.fixture(scope="module")
def bank_dir(tmp_path_factory, source_root):  # noqa: F811
    """A bank with a crop of every material, cut from the example photos (labels arbitrary: only colours matter)."""
    folder = tmp_path_factory.mktemp("world_bank")
    boxes = [[0, 0, 300, 200], [300, 200, 700, 500], [600, 100, 1000, 400], [100, 300, 500, 600]]
    crops = [{**CROPS[i % len(CROPS)], "id": f"crop-{material}", "material": material, "box": boxes[i % 4]}
             for i, material in enumerate(MATERIALS)]  # fmt: skip
    (folder / "crops.json").write_text(json.dumps({"packages": PACKAGES, "crops": crops}))
    build_texture_bank(folder / "bank", folder / "crops.json", source_root=source_root)
    return folder / "bank"


@pytest.fixture(scope="module")
def world(bank_dir) -> PhotoWorld:
    return PhotoWorld(TextureBank.load(bank_dir))


@pytest.fixture(scope="module")
def samples(world):
    return {kind: generate_scene(i, scene_type=kind, world=world) for i, kind in enumerate(WORLD_TYPES)}


RENDERED = [(2, "pendulum"), (4, "water"), (7, "tree")]


@pytest.fixture(scope="module")
def rendered(world):
    return [generate_scene(s, num_frames=30, fps=10.0, render_frames=True, scene_type=k, amplitude_px=2.5,
                           world=world) for s, k in RENDERED]  # fmt: skip


@pytest.mark.parametrize("kind", WORLD_TYPES)
def test_every_scene_type_is_exact_band_limited_and_still_where_still(samples, kind):
    s = samples[kind]
    assert s.image.shape == (H, W, 3) and s.image.dtype == np.uint8 and s.meta["photo_world"]
    mask = s.moving_mask
    assert (s.displacements[:, :, ~mask] == 0).all() and (s.spectrum[:, :, ~mask] == 0).all()
    if kind == "still":
        assert not mask.any() and not s.spectrum.any()
        return
    assert mask.any()
    scale = s.displacements.abs().max()
    assert scale > 0
    assert torch.allclose(motion_to_spectrum(s.displacements, K), s.spectrum, atol=1e-5 * scale)
    energy = torch.fft.rfft(s.displacements.double(), dim=0, norm="forward").abs().square().sum(dim=(1, 2, 3))
    assert energy[1:16].sum() / energy[1:].sum() > 0.999
    assert torch.allclose(spectrum_to_motion(s.spectrum, T), s.displacements, atol=1e-4 * scale)


def test_rendered_frames_are_frame_zero_warped_by_the_motion(rendered):
    """As for the painted scenes (test_procedural): frame t pulled back by d(p, t) reproduces frame 0 where the
    motion changes the picture, far better than frame t itself does; textures travel with their material."""
    for s in rendered:
        assert s.frames.shape == (30, H, W, 3) and np.array_equal(s.frames[0], s.image)
        t = _largest_motion_frames(s.displacements, 1)[0]
        d = s.displacements[t].numpy()
        gx, gy = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32))
        # A small blur first: the camera's sensor noise and JPEG blocks differ from frame to frame.
        frame, image = (cv2.GaussianBlur(f.astype(np.float32), (0, 0), 1.0) for f in (s.frames[t], s.image))
        pulled = cv2.remap(frame, gx + d[0], gy + d[1], cv2.INTER_LINEAR)
        still_error = np.abs(frame - image).mean(-1)
        warped_error = np.abs(pulled - image).mean(-1)
        region = _textured_interior(s, [t], min_texture=4.0) & (still_error > 3.0)
        assert region.sum() > 50, s.meta["scene_type"]
        ratio = np.median(warped_error[region]) / np.median(still_error[region])
        assert ratio < 0.5, (s.meta["scene_type"], ratio)  # 1 would be no motion at all


def test_photo_textures_change_the_looks_not_the_motion(world):
    """A painted scene type in the world keeps its geometry and motion, with other colours."""
    painted = generate_scene(3, scene_type="flowers", return_displacements=False)
    textured = generate_scene(3, scene_type="flowers", return_displacements=False, world=world)
    assert not np.array_equal(painted.image, textured.image)
    assert textured.meta["num_elements"] == painted.meta["num_elements"]
    assert textured.meta["element_counts"] == painted.meta["element_counts"]


def test_world_scenes_are_deterministic_and_cycle_through_every_type(world):
    first = generate_scene(5, (64, 40), 16, 8.0, 4, world=world, return_displacements=False)
    again = generate_scene(5, (64, 40), 16, 8.0, 4, world=world, return_displacements=False)
    assert np.array_equal(first.image, again.image) and torch.equal(first.spectrum, again.spectrum)
    kinds = [world.scene_type(seed) for seed in range(len(WORLD_CYCLE))]
    assert set(kinds) == set(WORLD_TYPES)
    with pytest.raises(GIDInputError, match="scene_type must be one of"):
        generate_scene(0, scene_type="candle")  # the new types need a world


def test_without_a_world_the_painted_scenes_are_unchanged():
    """The painted generator draws exactly what it did before the world existed: the fingerprint of two scenes,
    computed with the generator of commit b735ac9 (held-out sets made then are reproduced bit for bit)."""
    first = generate_scene(0, (64, 40), 16, 8.0, 4, return_displacements=False)
    second = generate_scene(7, (64, 40), 16, 8.0, 4, return_displacements=False)
    assert not first.meta["photo_world"]
    digest = hashlib.sha256(first.image.tobytes() + first.spectrum.numpy().tobytes() + second.image.tobytes()
                            + second.spectrum.numpy().tobytes()).hexdigest()  # fmt: skip
    assert digest[:16] == "a8bc9dc6c3cae148"


def test_camera_grade_is_deterministic_and_compresses(world):
    grade = CameraGrade.pick(np.random.default_rng(0))
    canvas = np.random.default_rng(1).random((3, 40, 64), dtype=np.float32)
    frame = grade.develop(canvas, 3)
    assert frame.shape == (40, 64, 3) and frame.dtype == np.uint8
    assert np.array_equal(frame, grade.develop(canvas, 3)) and not np.array_equal(frame, grade.develop(canvas, 4))
    qualities = {CameraGrade.pick(np.random.default_rng(seed)).jpeg_quality for seed in range(40)}
    assert 0 in qualities and any(35 <= q < 96 for q in qualities)


def test_a_dataset_from_the_world_records_its_bank(bank_dir, tmp_path):
    from gid_pipeline.data import SampleConfig, prepare_procedural_dataset
    from gid_pipeline.data.shards import read_manifest

    prepare_procedural_dataset(3, tmp_path / "data", SampleConfig((64, 48), 32, 30.0, 4), workers=1,
                               texture_bank=bank_dir)  # fmt: skip
    manifest = read_manifest(tmp_path / "data")
    assert manifest["config"]["photo_world"]["texture_bank"] == str(bank_dir.resolve())
    assert photo_world(str(bank_dir.resolve())).textures.counts == TextureBank.load(bank_dir).counts
    with pytest.raises(GIDInputError):
        prepare_procedural_dataset(1, tmp_path / "other", SampleConfig((64, 48), 32, 30.0, 4), workers=1,
                                   texture_bank=tmp_path / "no_bank")  # fmt: skip
