"""Tests for gid_pipeline.motion.flow: accuracy on synthetic motion with known ground truth, stabilisation,
forward-backward reliability, input validation, and a sanity check on the real tree clip."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from gid_pipeline.errors import GIDInputError
from gid_pipeline.motion.flow import FlowResult, estimate_flow, forward_backward_consistency, remove_camera_motion

H, W = 96, 128
MARGIN = 12  # px left out at the borders, where content enters or leaves the frame


def texture(seed: int, height: int = H, width: int = W) -> np.ndarray:
    """(height, width, 3) uint8: multi-scale smoothed noise, textured at every scale the estimators use."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width, 3), np.float32)
    for sigma in (1.0, 2.5, 6.0):
        noise = cv2.GaussianBlur(rng.standard_normal((height, width, 3)).astype(np.float32), (0, 0), sigma)
        img += noise / noise.std()
    return np.clip(128 + 40 * img / img.std(), 0, 255).astype(np.uint8)


def warp(img: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Moves the content of ``img`` forward by the 2x3 affine ``matrix``: pixel p lands at matrix @ [p, 1]."""
    return cv2.warpAffine(
        img,
        matrix.astype(np.float32),
        img.shape[1::-1],
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT101,
    )


def shift(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    return warp(img, np.array([[1, 0, dx], [0, 1, dy]]))


def interior(a: np.ndarray) -> np.ndarray:
    """Crop the last two (H, W) axes by MARGIN."""
    return a[..., MARGIN:-MARGIN, MARGIN:-MARGIN]


def mean_epe(flow: np.ndarray, truth: np.ndarray) -> float:
    """Mean end-point error in pixels between (2, h, w) flows (truth may be a broadcastable (2, 1, 1))."""
    return float(np.linalg.norm(flow - truth, axis=0).mean())


@pytest.mark.parametrize("method", ["dis", "tvl1"])
@pytest.mark.parametrize(("dx", "dy"), [(1.3, -0.7), (-0.4, 2.2)])
def test_subpixel_shift_is_recovered(method, dx, dy):
    img = texture(0)
    result = estimate_flow(np.stack([img, shift(img, dx, dy)]), method=method)
    epe = mean_epe(interior(result.flow[1]), np.array([dx, dy])[:, None, None])
    assert epe < 0.1, f"{method}: mean end-point error {epe:.3f} px for a ({dx}, {dy}) shift"


def test_output_shapes_dtypes_and_exact_zero_at_reference():
    img = texture(1)
    frames = np.stack([shift(img, 0.5 * t, -0.3 * t) for t in range(5)])
    result = estimate_flow(frames, reference=2, progress=True)
    assert isinstance(result, FlowResult)
    assert result.flow.shape == (5, 2, H, W) and result.flow.dtype == np.float32
    assert np.all(result.flow[2] == 0)
    assert np.abs(result.flow[[0, 1, 3, 4]]).max() > 0.2
    assert result.reliability is None and result.camera_motion is None

    full = estimate_flow(frames, reliability=True, stabilize="median")
    assert np.all(full.flow[0] == 0)
    assert full.reliability.shape == (5, H, W) and full.reliability.dtype == np.bool_
    assert full.reliability[0].all()
    assert full.camera_motion.shape == (5,) and full.camera_motion.dtype == np.float32
    assert full.camera_motion[0] == 0


@pytest.mark.parametrize("reference", [0, 4])
def test_long_range_flow_follows_an_oscillation(reference):
    """Each frame's displacement from the reference is recovered, not an accumulation of per-step flows."""
    img = texture(2)
    t = np.arange(12)
    shifts = np.stack([2.5 * np.sin(2 * np.pi * t / 12), 1.5 * (1 - np.cos(2 * np.pi * t / 12))], axis=1)
    frames = np.stack([shift(img, dx, dy) for dx, dy in shifts])
    flow = estimate_flow(frames, reference=reference).flow
    for i in range(len(t)):
        truth = shifts[i] - shifts[reference]
        epe = mean_epe(interior(flow[i]), truth[:, None, None])
        assert epe < 0.1, f"frame {i}: error {epe:.3f} px against a displacement of {truth.round(2)}"


def test_flow_skips_unrelated_frames_in_between():
    """Direct matching against the reference: frames in between cannot corrupt a later frame's flow, as they
    would if two-frame flows were chained."""
    img = texture(2)
    frames = np.stack([img, texture(6), shift(img, 1.3, -0.7), texture(7), shift(img, -1.8, 0.9)])
    flow = estimate_flow(frames).flow
    assert mean_epe(interior(flow[2]), np.array([1.3, -0.7])[:, None, None]) < 0.1
    assert mean_epe(interior(flow[4]), np.array([-1.8, 0.9])[:, None, None]) < 0.1


def camera_and_patch_clip(background_motion: list[np.ndarray], patch_shift: list[tuple[float, float]]):
    """Frames whose background moves by the affine matrices ``background_motion`` and whose patch
    rows 30:66, cols 44:84 additionally moves by ``patch_shift`` (pixels)."""
    img = texture(3)
    frames = []
    for matrix, (dx, dy) in zip(background_motion, patch_shift, strict=True):
        frame = warp(img, matrix)
        frame[30:66, 44:84] = warp(img, matrix + np.array([[0, 0, dx], [0, 0, dy]]))[30:66, 44:84]
        frames.append(frame)
    return np.stack(frames)


PATCH_CORE = (slice(38, 58), slice(52, 76))  # patch pixels far enough from its edges to stay inside it


def background_mask() -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[MARGIN:-MARGIN, MARGIN:-MARGIN] = True
    mask[22:74, 36:92] = False  # the patch and a band around it
    return mask


@pytest.mark.parametrize("stabilize", ["median", "homography"])
def test_camera_translation_is_removed_and_local_motion_kept(stabilize):
    t = np.arange(6)
    camera = np.stack([2.0 * np.sin(t), -1.5 * np.sin(0.7 * t)], axis=1)
    local = np.stack([1.2 * np.sin(2 * t), 0.8 * np.cos(2 * t) - 0.8], axis=1)
    matrices = [np.array([[1, 0, cx], [0, 1, cy]]) for cx, cy in camera]
    result = estimate_flow(camera_and_patch_clip(matrices, list(map(tuple, local))), stabilize=stabilize)
    background = background_mask()
    for i in range(1, len(t)):
        flow = result.flow[i]
        assert mean_epe(flow[:, background], np.zeros((2, 1))) < 0.1, f"frame {i}: background still moves"
        patch_epe = mean_epe(flow[:, PATCH_CORE[0], PATCH_CORE[1]], local[i][:, None, None])
        assert patch_epe < 0.15, f"frame {i}: patch motion off by {patch_epe:.3f} px"
        assert abs(result.camera_motion[i] - np.linalg.norm(camera[i])) < 0.1


def test_homography_removes_camera_rotation_and_zoom_where_median_cannot():
    def similarity(angle_deg: float, scale: float, dx: float, dy: float) -> np.ndarray:
        matrix = cv2.getRotationMatrix2D((W / 2, H / 2), angle_deg, scale)
        return matrix + np.array([[0, 0, dx], [0, 0, dy]])

    matrices = [similarity(0, 1, 0, 0), similarity(1.0, 1.02, 0.8, -0.5), similarity(-0.8, 0.98, -0.6, 0.4)]
    local = [(0.0, 0.0), (1.5, 0.0), (0.0, -1.2)]
    frames = camera_and_patch_clip(matrices, local)
    background = background_mask()
    stabilised = estimate_flow(frames, stabilize="homography")
    translated = estimate_flow(frames, stabilize="median")
    for i in (1, 2):
        assert mean_epe(stabilised.flow[i][:, background], np.zeros((2, 1))) < 0.1
        assert mean_epe(translated.flow[i][:, background], np.zeros((2, 1))) > 0.3
        patch_epe = mean_epe(
            stabilised.flow[i][:, PATCH_CORE[0], PATCH_CORE[1]], np.array(local[i])[:, None, None]
        )
        assert patch_epe < 0.15
        assert stabilised.camera_motion[i] > 0.5


def test_degenerate_flow_falls_back_to_translation():
    """A flow collapsing the frame onto a line has no homography; the median translation is removed."""
    ys = np.mgrid[0:H, 0:W][0].astype(np.float32)
    flow = np.stack([np.full_like(ys, 0.7), -ys])[None]
    out, motion = remove_camera_motion(flow, "homography")
    median, median_motion = remove_camera_motion(flow, "median")
    np.testing.assert_allclose(out, median, atol=1e-4)
    np.testing.assert_allclose(motion, median_motion, rtol=1e-5)


def test_consistency_check_on_exact_flows():
    forward = np.zeros((2, H, W), np.float32)
    forward[0] = 3.0
    backward = -forward
    ok = forward_backward_consistency(forward, backward)
    assert ok[:, : W - 3].all(), "a consistent translation must pass"
    assert not ok[:, W - 2 :].any(), "pixels whose flow leaves the frame must fail"
    backward[:, 40:60, 40:60] = 0.0  # round trip off by 3 px there
    ok = forward_backward_consistency(forward, backward)
    assert not ok[40:60, 43:57].any()
    assert ok[:30, : W - 3].all()


@pytest.mark.parametrize("method", ["dis", "tvl1"])
def test_occluded_region_is_unreliable(method):
    """A square moving 6 px right over a static background covers a 6 px strip of it."""
    background, square = texture(4), texture(5)
    frame0, frame1 = background.copy(), background.copy()
    frame0[30:60, 40:70] = square[30:60, 40:70]
    frame1[30:60, 46:76] = square[30:60, 40:70]
    reliable = estimate_flow(np.stack([frame0, frame1]), method=method, reliability=True).reliability[1]
    assert reliable[32:58, 70:76].mean() < 0.3, "the covered strip must be flagged"
    # The square's core is visible in both frames (TV-L1 smears flow ~8 px across its edges: not those).
    assert reliable[38:52, 52:64].mean() > 0.9
    clean = np.concatenate(
        [reliable[MARGIN:22, MARGIN:-MARGIN].ravel(), reliable[68:-MARGIN, MARGIN:-MARGIN].ravel()]
    )
    assert clean.mean() > 0.95


@pytest.mark.parametrize(
    ("frames", "kwargs", "message"),
    [
        (np.zeros((3, 32, 32, 3), np.float32), {}, "uint8"),
        (np.zeros((3, 32, 32), np.uint8), {}, "shape"),
        (np.zeros((3, 32, 32, 4), np.uint8), {}, "shape"),
        (np.zeros((1, 32, 32, 3), np.uint8), {}, "at least 2 frames"),
        (np.zeros((3, 8, 32, 3), np.uint8), {}, "at least 16x16"),
        ([[[[0, 0, 0]]]], {}, "numpy array"),
        (np.zeros((3, 32, 32, 3), np.uint8), {"method": "farneback"}, "unknown optical flow method"),
        (np.zeros((3, 32, 32, 3), np.uint8), {"stabilize": "affine"}, "unknown stabilize mode"),
        (np.zeros((3, 32, 32, 3), np.uint8), {"reference": 3}, "out of range"),
        (np.zeros((3, 32, 32, 3), np.uint8), {"reference": -1}, "out of range"),
        (np.zeros((3, 32, 32, 3), np.uint8), {"reference": 1.0}, "integer"),
    ],
)
def test_bad_input_raises(frames, kwargs, message):
    with pytest.raises(GIDInputError, match=message):
        estimate_flow(frames, **kwargs)


def test_unknown_camera_motion_mode_raises():
    with pytest.raises(GIDInputError, match="camera motion mode"):
        remove_camera_motion(np.zeros((1, 2, 16, 16), np.float32), "none")


def test_tree_clip_moves_more_than_the_window_frame(tree_clip_path: Path):
    capture = cv2.VideoCapture(str(tree_clip_path))
    frames = []
    for _ in range(54):
        ok, frame = capture.read()
        assert ok, "tree.avi has fewer than 54 frames"
        frames.append(
            cv2.cvtColor(cv2.resize(frame, (160, 120), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        )
    capture.release()
    result = estimate_flow(np.stack(frames[::4]), reliability=True)
    assert np.isfinite(result.flow).all()
    speed = np.linalg.norm(result.flow[1:], axis=1)
    tree = np.median(speed[:, 10:60, 60:100])  # the crown, upper middle (rows/cols at 160x120)
    window = np.median(speed[:, 20:100, 4:14])  # the dark window post on the left
    assert tree > 2 * window, f"tree {tree:.2f} px vs window frame {window:.2f} px"
    assert result.reliability[1:].mean() > 0.8
    # The camera is static: stabilisation may only take out part of the crown's sway, which fills the frame.
    _, camera_motion = remove_camera_motion(result.flow[1:], "homography")
    assert camera_motion.max() < 1.0
