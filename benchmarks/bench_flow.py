"""Optical flow throughput and accuracy at 256x160, 2 threads.

Speed: reference -> frame t pairs per second of gid_pipeline.motion.flow.estimate_flow on tree.avi (frames 0-53,
resized to 256x160), for DIS and TV-L1, with and without the forward-backward reliability mask (which computes
a backward flow per pair too), plus the cost of camera-motion removal and the OpenCV threading choices.
Accuracy: mean end-point error (px, 16 px border excluded) on a synthetic clip with a known, spatially varying
oscillation, for the DIS presets, for direct long-range flow vs initialising each pair with the previous
pair's flow, and vs chaining two-frame flows (whose error drifts with t).
Run: python benchmarks/bench_flow.py [--repeats 3]; writes benchmarks/results/bench_flow.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import torch

from gid_pipeline.motion.flow import create_estimator, estimate_flow, remove_camera_motion

WIDTH, HEIGHT = 256, 160
TREE = Path(__file__).parents[1] / "tests" / "data" / "tree.avi"
RESULTS = Path(__file__).parent / "results"
Output = TypeVar("Output")
BORDER = 16  # px excluded from end-point errors: content there leaves or enters the frame


def load_tree(n_frames: int = 54) -> np.ndarray:
    """(n_frames, 160, 256, 3) uint8 RGB: tree.avi resized with area averaging."""
    capture = cv2.VideoCapture(str(TREE))
    frames = []
    for _ in range(n_frames):
        ok, frame = capture.read()
        if not ok:
            raise RuntimeError(f"{TREE} has fewer than {n_frames} frames")
        frames.append(
            cv2.cvtColor(cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        )
    capture.release()
    return np.stack(frames)


def synthetic_clip(
    n_frames: int = 30, amplitude: float = 3.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A textured image under a smooth, spatially varying oscillation (period 15 frames, up to ``amplitude``
    px) with 2 grey levels of sensor noise. Returns frames (T, 160, 256, 3) uint8 and their true flow from
    frame 0, (T, 2, 160, 256) float32 pixels."""
    rng = np.random.default_rng(seed)
    image = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    for sigma, weight in ((1.0, 0.5), (2.5, 1.0), (6.0, 1.5), (15.0, 2.0)):
        noise = cv2.GaussianBlur(rng.standard_normal((HEIGHT, WIDTH, 3)).astype(np.float32), (0, 0), sigma)
        image += weight * noise / noise.std()
    image = np.clip(128 + 40 * image / image.std(), 0, 255).astype(np.float32)

    def smooth_field() -> np.ndarray:
        field = np.stack([cv2.GaussianBlur(c, (0, 0), 20) for c in rng.standard_normal((2, HEIGHT, WIDTH))])
        return (amplitude * field / np.abs(field).max()).astype(np.float32)

    mode_a, mode_b = smooth_field(), smooth_field()
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    frames, flows = [], []
    for t in range(n_frames):
        phase = 2 * np.pi * t / 15
        flow = (mode_a * np.sin(phase) + mode_b * (1 - np.cos(phase)) / 2).astype(np.float32)
        # Frame t shows pixel p of frame 0 at p + flow(p): find the source q of each target x by iterating
        # q = x - flow(q), which converges for smooth flows with gradients well below 1.
        src_x, src_y = xs, ys
        for _ in range(20):
            src_x = xs - cv2.remap(flow[0], src_x, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            src_y = ys - cv2.remap(flow[1], src_x, src_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        frame = cv2.remap(image, src_x, src_y, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT101)
        frame = frame + 2.0 * rng.standard_normal(frame.shape)
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
        flows.append(flow)
    return np.stack(frames), np.stack(flows)


def epe_per_frame(flow: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(T,) mean end-point error in px over the interior, for (T, 2, H, W) flows."""
    inner = (slice(None), slice(None), slice(BORDER, -BORDER), slice(BORDER, -BORDER))
    return np.linalg.norm(flow[inner] - truth[inner], axis=1).mean(axis=(1, 2))


def gray(frames: np.ndarray) -> list[np.ndarray]:
    return [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]


def timed(step: Callable[[], Output], pairs: int, repeats: int) -> tuple[float, float, Output]:
    """Runs ``step`` ``repeats`` times. Returns pairs per second of the fastest run (the machine is shared, so
    the minimum is the signal), process CPU milliseconds per pair of that run (all threads; less sensitive to
    other load than wall time) and the last run's output."""
    runs = []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        output = step()
        runs.append((time.perf_counter() - wall, time.process_time() - cpu))
    wall, cpu = min(runs)
    return pairs / wall, 1000 * cpu / pairs, output


def direct_flows(
    estimator: cv2.DenseOpticalFlow, images: list[np.ndarray], init_previous: bool
) -> np.ndarray:
    """Frame 0 -> t for every t; optionally starting each pair from the previous pair's result."""
    flows = [np.zeros((HEIGHT, WIDTH, 2), np.float32)]
    if init_previous and isinstance(estimator, cv2.optflow.DualTVL1OpticalFlow):
        estimator.setUseInitialFlow(True)
    for t in range(1, len(images)):
        # A non-empty flow argument is the initial guess (TV-L1 needs one once setUseInitialFlow is on); calc
        # writes its result into it, hence the copy.
        initial = flows[-1].copy() if init_previous else None
        flows.append(estimator.calc(images[0], images[t], initial))
    return np.stack(flows).transpose(0, 3, 1, 2)


def chained_flows(estimator: cv2.DenseOpticalFlow, images: list[np.ndarray]) -> np.ndarray:
    """Frame 0 -> t by composing two-frame flows: F(0,t)(p) = F(0,t-1)(p) + F(t-1,t)(p + F(0,t-1)(p))."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    total = np.zeros((2, HEIGHT, WIDTH), np.float32)
    flows = [total.copy()]
    for t in range(1, len(images)):
        step = estimator.calc(images[t - 1], images[t], None)
        map_x, map_y = xs + total[0], ys + total[1]
        total = total + np.stack(
            [
                cv2.remap(step[..., c], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
                for c in (0, 1)
            ]
        )
        flows.append(total.copy())
    return np.stack(flows)


def dis_variant(
    preset: int, finest_scale: int | None = None, **settings: float
) -> Callable[[], cv2.DISOpticalFlow]:
    def make() -> cv2.DISOpticalFlow:
        dis = cv2.DISOpticalFlow_create(preset)
        if finest_scale is not None:
            dis.setFinestScale(finest_scale)
        for name, value in settings.items():
            getattr(dis, f"set{name}")(value)
        return dis

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    report: dict = {
        "size": [WIDTH, HEIGHT],
        "opencv": cv2.__version__,
        "load_average_at_start": os.getloadavg(),
    }
    rows: list[tuple[str, str]] = []

    # --- speed on the real clip ---
    tree = load_tree()
    tree_short = tree[:14]  # TV-L1 is ~50x slower than DIS; 13 pairs keep the run short
    estimate_flow(tree[:2])  # warm up OpenCV's thread pool
    speed = {}
    for method, clip in (("dis", tree), ("tvl1", tree_short)):
        for reliability in (False, True):
            rate, cpu_ms, _ = timed(
                lambda m=method, c=clip, r=reliability: estimate_flow(c, method=m, reliability=r),
                len(clip) - 1,
                args.repeats,
            )
            key = f"{method}{' + reliability' if reliability else ''}"
            speed[key] = {"pairs_per_s": rate, "cpu_ms_per_pair": cpu_ms}
            rows.append((f"speed tree 256x160: {key}", f"{rate:7.1f} pairs/s, {cpu_ms:6.1f} CPU ms/pair"))

    flow = estimate_flow(tree).flow[1:]
    for mode in ("median", "homography"):
        start = time.perf_counter()
        _, camera = remove_camera_motion(flow, mode)
        ms = 1000 * (time.perf_counter() - start) / len(flow)
        report[f"stabilize_{mode}"] = {
            "ms_per_frame": ms,
            "tree_camera_motion_px": {"mean": float(camera.mean()), "max": float(camera.max())},
        }
        rows.append((f"stabilize {mode}", f"{ms:7.2f} ms/frame"))
        rows.append(
            (
                "  camera motion on tree.avi (static camera)",
                f"mean {camera.mean():.2f}, max {camera.max():.2f} px",
            )
        )

    # OpenCV's own threads vs a Python thread pool of single-call workers (calc releases the GIL).
    images = gray(tree)
    for threads in (1, 2):
        cv2.setNumThreads(threads)
        estimator = create_estimator("dis")
        rate, _, _ = timed(
            lambda e=estimator: [e.calc(images[0], im, None) for im in images[1:]], 53, args.repeats
        )
        speed[f"dis serial, cv2 threads={threads}"] = {"pairs_per_s": rate}
        rows.append((f"dis serial, cv2.setNumThreads({threads})", f"{rate:7.1f} pairs/s"))

        def pooled() -> None:
            def worker(offset: int) -> None:
                estimator = create_estimator("dis")
                for im in images[1 + offset :: 2]:
                    estimator.calc(images[0], im, None)

            with ThreadPoolExecutor(2) as pool:
                list(pool.map(worker, (0, 1)))

        rate, _, _ = timed(pooled, 53, args.repeats)
        speed[f"dis 2-thread pool, cv2 threads={threads}"] = {"pairs_per_s": rate}
        rows.append((f"dis 2 Python threads, cv2.setNumThreads({threads})", f"{rate:7.1f} pairs/s"))
    cv2.setNumThreads(2)
    report["speed"] = speed

    # --- accuracy on a synthetic oscillation ---
    frames, truth = synthetic_clip()
    images = gray(frames)
    accuracy = {}
    presets = {
        "DIS ultrafast (preset)": dis_variant(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST),
        "DIS fast (preset)": dis_variant(cv2.DISOPTICAL_FLOW_PRESET_FAST),
        "DIS medium (preset, finest scale 1)": dis_variant(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM),
        "DIS fast, finest scale 0": dis_variant(cv2.DISOPTICAL_FLOW_PRESET_FAST, 0),
        "DIS medium, finest scale 0 [chosen]": lambda: create_estimator("dis"),
        "DIS medium, fs 0, patch stride 2": dis_variant(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, 0, PatchStride=2),
        "DIS medium, fs 0, 20 variational its": dis_variant(
            cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, 0, VariationalRefinementIterations=20
        ),
    }
    for name, make in presets.items():
        estimator = make()
        rate, _, flows = timed(lambda e=estimator: direct_flows(e, images, False), 29, args.repeats)
        epe = float(epe_per_frame(flows, truth)[1:].mean())
        accuracy[name] = {"epe_px": epe, "pairs_per_s": rate}
        rows.append((f"synthetic {name}", f"EPE {epe:.4f} px, {rate:6.1f} pairs/s"))

    short = len(images) // 2 + 1  # 16 frames for TV-L1 (one period plus one)
    for method, count in (("dis", len(images)), ("tvl1", short)):
        for label, init in (("direct", False), ("init from previous pair", True)):
            estimator = create_estimator(method)
            rate, _, flows = timed(
                lambda e=estimator, i=init, n=count: direct_flows(e, images[:n], i), count - 1, 1
            )
            epe = float(epe_per_frame(flows, truth[:count])[1:].mean())
            accuracy[f"{method} {label}"] = {"epe_px": epe, "pairs_per_s": rate}
            rows.append((f"synthetic {method} {label}", f"EPE {epe:.4f} px, {rate:6.1f} pairs/s"))
        chained = epe_per_frame(chained_flows(create_estimator(method), images[:count]), truth[:count])
        direct = epe_per_frame(direct_flows(create_estimator(method), images[:count], False), truth[:count])
        accuracy[f"{method} chained"] = {
            "epe_px_per_frame": chained.tolist(),
            "direct_epe_px_per_frame": direct.tolist(),
        }
        rows.append(
            (
                f"synthetic {method} chained 2-frame flow",
                f"EPE mean {chained[1:].mean():.4f}, last frame {chained[-1]:.4f} px "
                f"(direct: {direct[1:].mean():.4f}, {direct[-1]:.4f})",
            )
        )
    report["synthetic_accuracy"] = accuracy

    width = max(len(name) for name, _ in rows)
    load = ", ".join(f"{x:.1f}" for x in report["load_average_at_start"])
    print(f"gid_pipeline.motion.flow benchmark, {WIDTH}x{HEIGHT}, OpenCV {cv2.__version__}, 2 threads, load {load}")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_flow.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {RESULTS / 'bench_flow.json'}")


if __name__ == "__main__":
    main()
