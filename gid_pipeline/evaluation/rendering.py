"""How good is a renderer? Frame t rendered from frame 0 with known motion, against the real frame t.

Cases: a real clip (flow from frame 0 to every frame by flow.estimate_flow) and held-out procedural scenes
(procedural.generate_scene with render_frames=True: exact displacements and exactly rendered frames). Every
method gets the same image, displacements F_t (pixels, frame 0 -> t) and splatting metric W(p) = mean_t |F_t(p)|
over the whole motion (pixels):

    learned        a SplatRenderer (models.renderer), given W itself
    softmax        pixel softmax splatting + pull-push fill, as the loop renderer does it (rendering.render_frames
                   with rendering.softmax_metric(W))
    average        pixel average splatting + pull-push fill
    backward_warp  frame 0 sampled at p - F_t(p) (bilinear, border padding): the usual cheap baseline, which treats
                   the forward flow of frame 0 as if it were the backward flow of frame t
    static         frame 0 itself (no motion): what any renderer has to beat

An untrained SplatRenderer (zero output layer) is render_frames with log-weights temperature * W: the softmax
method up to the metric's scale (softmax_metric normalises W by its 99th percentile), a sanity check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ..data.builder import centre_crop, cover_size
from ..data.triples import HELD_OUT_SEED
from ..errors import GIDInputError
from ..media.video import probe_video, read_video
from ..models.renderer import SplatRenderer
from ..motion.flow import estimate_flow, sample_fields
from ..procedural.scenes import generate_scene
from ..rendering.loop import render_frames, softmax_metric
from ..rendering.splatting import motion_metric
from .cases import DEFAULT_SIZE
from .metrics import mean_std, psnr, ssim_per_image

LEARNED, SOFTMAX, AVERAGE, BACKWARD_WARP, STATIC = "learned", "softmax", "average", "backward_warp", "static"
BASELINE_RENDERERS = (SOFTMAX, AVERAGE, BACKWARD_WARP, STATIC)
DEFAULT_CHUNK = 8


@dataclass(frozen=True)
class RenderCase:
    """Frame 0, the motion and the real frames to reproduce.

    Attributes:
        name, kind: readable name; "clip" or "procedural".
        image: (3, H, W) float32 in [0, 1], frame 0.
        flows: (N, 2, H, W) float32 pixels, frame 0 -> frame times[n].
        targets: (N, 3, H, W) float32 in [0, 1], the real frames at times.
        metric: (1, H, W) float32 W(p) = mean over all frames of the motion of |F_t(p)|, pixels.
        times: the N frame indices evaluated.
    """

    name: str
    kind: str
    image: torch.Tensor
    flows: torch.Tensor
    targets: torch.Tensor
    metric: torch.Tensor
    times: tuple[int, ...]


@dataclass(frozen=True)
class RenderFigureRow:
    """One case's hardest frame (largest mean |F_t|): the real frame, each method's frame, the flow magnitude."""

    name: str
    time: int
    target: torch.Tensor
    frames: dict[str, torch.Tensor]
    flow_magnitude: torch.Tensor


@dataclass(frozen=True)
class RenderEvaluation:
    report: dict[str, Any]
    rows: list[RenderFigureRow]


def _to_float(frames: Any) -> torch.Tensor:
    """(N, H, W, 3) uint8 numpy -> (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255.0)


def clip_render_case(
    path: str | Path,
    clip_frames: int | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    frame_step: int = 1,
    method: str = "dis",
    stabilize: str = "none",
) -> RenderCase:
    """A real clip as a render case: frames 0..clip_frames-1, centre-cropped and resized to size (width, height),
    flow from frame 0 to each (flow.estimate_flow), every frame_step-th frame from frame_step on evaluated."""
    info = probe_video(path)
    usable = info.num_frames if clip_frames is None else clip_frames
    if usable < 2 or frame_step >= usable:
        raise GIDInputError(f"{path}: {usable} usable frames leave none to render with a step of {frame_step}")
    clip = read_video(path, num_frames=usable, size=cover_size((info.width, info.height), size), max_frames=usable)
    frames = centre_crop(clip.frames, size)
    flows = torch.from_numpy(estimate_flow(frames, method=method, stabilize=stabilize).flow)
    times = tuple(range(frame_step, usable, frame_step))
    index = list(times)
    return RenderCase(f"{Path(path).name}[0:{usable}]", "clip", _to_float(frames[:1])[0], flows[index],
                      _to_float(frames[index]), motion_metric(flows), times)  # fmt: skip


def procedural_render_cases(
    count: int,
    first_seed: int = HELD_OUT_SEED,
    size: tuple[int, int] = DEFAULT_SIZE,
    num_frames: int = 150,
    fps: float = 30.0,
    frame_step: int = 5,
) -> Iterator[RenderCase]:
    """count held-out procedural scenes (seeds first_seed, first_seed + 1, ...) with exact motion and frames,
    generated one at a time as the iterator is consumed (a 256x160 scene of 150 frames takes seconds)."""
    if count < 1 or frame_step < 1 or frame_step >= num_frames:
        raise GIDInputError(f"need count >= 1 and 1 <= frame_step < num_frames, got {count}, {frame_step}")
    if first_seed < HELD_OUT_SEED:
        raise GIDInputError(f"procedural seeds below {HELD_OUT_SEED} are training seeds; evaluate held-out ones")
    times = tuple(range(frame_step, num_frames, frame_step))

    def generate() -> Iterator[RenderCase]:
        for seed in range(first_seed, first_seed + count):
            scene = generate_scene(seed, size, num_frames, fps, min(16, num_frames // 2 + 1), render_frames=True)
            index = list(times)
            yield RenderCase(f"procedural-{seed}-{scene.meta['scene_type']}", "procedural",
                             _to_float(scene.image[None])[0], scene.displacements[index],
                             _to_float(scene.frames[index]), motion_metric(scene.displacements), times)  # fmt: skip

    return generate()


def backward_warp(image: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
    """Frame 0 sampled at p - F_t(p): (3, H, W) image in [0, 1] and (N, 2, H, W) flows in pixels -> (N, 3, H, W).

    Bilinear, border padding, pixel centres at integer coordinates (align_corners=True).
    """
    source = image.unsqueeze(0).expand(flows.shape[0], -1, -1, -1).to(flows.dtype)
    return sample_fields(source, -flows)


Renderer = Callable[[RenderCase, torch.Tensor], torch.Tensor]


def renderers(learned: SplatRenderer | None = None, device: str | torch.device = "cpu") -> dict[str, Renderer]:
    """The methods compared, name -> render(case, flows (n, 2, H, W)) -> (n, 3, H, W) frames in [0, 1]."""

    def softmax(case: RenderCase, flows: torch.Tensor) -> torch.Tensor:
        return render_frames(case.image, flows, softmax_metric(case.metric), mode="softmax")

    def average(case: RenderCase, flows: torch.Tensor) -> torch.Tensor:
        return render_frames(case.image, flows, mode="average")

    def static(case: RenderCase, flows: torch.Tensor) -> torch.Tensor:
        return case.image.unsqueeze(0).expand(flows.shape[0], -1, -1, -1)

    methods: dict[str, Renderer] = {}
    if learned is not None:
        model = learned.to(device).eval()

        def learned_renderer(case: RenderCase, flows: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                frames = model(case.image[None].to(device), flows.to(device), case.metric[None].to(device))
            return frames.float().cpu()

        methods[LEARNED] = learned_renderer
    methods.update({SOFTMAX: softmax, AVERAGE: average, BACKWARD_WARP: lambda c, f: backward_warp(c.image, f),
                    STATIC: static})  # fmt: skip
    return methods


def evaluate_renderers(
    cases: Iterable[RenderCase],
    learned: SplatRenderer | None = None,
    *,
    device: str | torch.device = "cpu",
    chunk_size: int = DEFAULT_CHUNK,
    figure_cases: int = 3,
    progress: bool = False,
    total: int | None = None,
) -> RenderEvaluation:
    """PSNR (dB) and SSIM of every method's frames against the real frames, per case and aggregated.

    Cases are consumed once, in order (an iterator keeps one case in memory at a time); frames are rendered
    chunk_size at a time. The report gives, per method, mean and std over all evaluated frames (overall and per case
    kind) and per case the mean and std over its frames. total: the number of cases, for the progress bar only.
    """
    methods = renderers(learned, device)
    case_reports, rows = [], []
    per_frame: dict[str, dict[str, dict[str, list[float]]]] = {}
    bar = tqdm(cases, desc="renderer evaluation", unit="case", total=total, disable=not progress)
    for index, case in enumerate(bar):
        # The figure shows the frame with the most motion.
        hardest = int(case.flows.norm(dim=1).mean(dim=(1, 2)).argmax())
        scores: dict[str, dict[str, list[float]]] = {name: {"psnr": [], "ssim": []} for name in methods}
        shown: dict[str, torch.Tensor] = {}
        for start in range(0, len(case.times), chunk_size):
            flows, targets = case.flows[start : start + chunk_size], case.targets[start : start + chunk_size]
            for name, render in methods.items():
                frames = render(case, flows).clamp(0.0, 1.0)
                scores[name]["psnr"] += psnr(frames, targets).tolist()
                scores[name]["ssim"] += ssim_per_image(frames, targets).tolist()
                if start <= hardest < start + chunk_size:
                    shown[name] = frames[hardest - start]
        if index < figure_cases:
            rows.append(RenderFigureRow(case.name, case.times[hardest], case.targets[hardest], shown,
                                        case.flows[hardest].norm(dim=0)))  # fmt: skip
        for name, values in scores.items():
            for metric, frame_values in values.items():
                per_frame.setdefault(case.kind, {}).setdefault(name, {}).setdefault(metric, []).extend(frame_values)
        case_reports.append({
            "name": case.name,
            "kind": case.kind,
            "size": [case.image.shape[-1], case.image.shape[-2]],
            "frames": list(case.times),
            "mean_motion_px": float(case.metric.mean()),
            "results": {name: {metric: mean_std(v) for metric, v in values.items()} for name, values in scores.items()},
        })  # fmt: skip
    if not case_reports:
        raise GIDInputError("no render cases to evaluate")
    summary_by_kind = {
        kind: {name: {metric: mean_std(v) for metric, v in values.items()} for name, values in by_method.items()}
        for kind, by_method in per_frame.items()
    }
    summary = {
        name: {metric: mean_std([v for kind in per_frame.values() for v in kind[name][metric]])
               for metric in ("psnr", "ssim")}
        for name in methods
    }  # fmt: skip
    report = {
        "kind": "renderer",
        "methods": list(methods),
        "num_cases": len(case_reports),
        "definitions": {
            "psnr": "10 log10(1 / MSE) per frame, frames in [0, 1], capped at 100 dB; mean and std over frames",
            "ssim": "structural similarity per frame (11-tap Gaussian window, sigma 1.5); mean and std over frames",
            "motion": "clip: DIS optical flow frame 0 -> t; procedural: exact displacements. Splatting metric "
                      "W(p) = mean over all frames of |F_t(p)| px",
        },
        "summary": summary,
        "summary_by_kind": summary_by_kind,
        "cases": case_reports,
    }  # fmt: skip
    return RenderEvaluation(report, rows)
