"""Forward warping (splatting) of images and feature maps by optical flow.

Every source pixel p carries its value to p + F(p) and shares it among the four target pixels around that point
with bilinear weights. The normalised modes divide by the total weight each target pixel received:

- ``summation``: sum of bilinear contributions (mass-conserving, not normalised);
- ``average``: every source weighs the same;
- ``linear``: sources weigh ``metric`` (non-negative);
- ``softmax``: sources weigh ``exp(metric)``, so where several land on one pixel the larger metric wins
  smoothly (Niklaus & Liu, 2020). With the paper's metric W(p) = mean_t |F_t(p)|, moving things stay in front.

Implementation: bilinear splatting is the adjoint of bilinear sampling. If ``A(g) z = grid_sample(z, g)`` samples
z at the points g, then ``A(g)^T x`` scatters x to those points with the same weights, which is exactly
summation splatting. PyTorch's ``grid_sampler_2d_backward`` computes ``A(g)^T x`` with native, vectorised CPU and
CUDA kernels, and its backward is again made of ``grid_sample`` and ``grid_sampler_2d_backward``:
    d<G, A^T x>/dx = A G = grid_sample(G, g),   d<G, A^T x>/dg = d<x, grid_sample(G, g)>/dg.
So the whole op, gradients included, runs in PyTorch's own kernels, without Python loops or scatter_add.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from ..errors import GIDInputError

SplatMode = Literal["summation", "average", "linear", "softmax"]
SPLAT_MODES: tuple[str, ...] = ("summation", "average", "linear", "softmax")

# grid_sampler enums: bilinear interpolation, zero padding (splats leaving the image are dropped).
_BILINEAR, _ZEROS = 0, 0
# Softmax weights exp(m - max m) are floored at exp(-_SOFTMAX_RANGE): beyond that a source loses every contest
# anyway, and the floor keeps weights and the hole threshold far from float32 underflow.
_SOFTMAX_RANGE = 30.0
# A target pixel is a hole when it received less than this fraction of one source pixel's bilinear mass.
COVERAGE_EPS = 1e-3
# Frames are splatted in chunks whose canvases fit in about this many bytes: small enough to stay in cache (at
# 512x320 a 34 MB chunk ran 28 % slower than a 4 MB one), and never fewer frames than threads, because the
# kernel parallelises over the batch.
CHUNK_BYTES = 4 * 2**20
# Frames rendered per chunk by the streaming renderers (the granularity at which frames reach a caller).
DEFAULT_CHUNK_SIZE = 8


def _canvas_length(length: int) -> int:
    """Smallest 2**n + 1 >= length: a canvas on which grid coordinates of integer positions are exact.

    grid_sample maps a normalised coordinate g to the pixel position (g + 1) / 2 * (size - 1). With size - 1 a
    power of two, both directions are exact in floating point, so a zero (or integer) displacement lands exactly on
    a pixel centre. Otherwise rounding leaks ~1e-5 of every pixel into its neighbours, which softmax weights
    would amplify into visible seams.
    """
    return 2 ** math.ceil(math.log2(max(length - 1, 1))) + 1


class _SummationSplat(torch.autograd.Function):
    """Summation splatting of ``values`` (B, C, H, W) to the normalised points ``grid`` (B, H, W, 2) of a canvas."""

    @staticmethod
    def forward(ctx, values: torch.Tensor, grid: torch.Tensor, canvas: tuple[int, int]) -> torch.Tensor:
        shape_like = values.new_empty(()).expand(values.shape[0], values.shape[1], *canvas)
        splatted, _ = torch.ops.aten.grid_sampler_2d_backward(
            values, shape_like, grid, _BILINEAR, _ZEROS, True, [True, False]
        )
        ctx.save_for_backward(values, grid)
        return splatted

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        values, grid = ctx.saved_tensors
        grad_values = grad_grid = None
        if ctx.needs_input_grad[0]:
            grad_values = F.grid_sample(grad_out, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        if ctx.needs_input_grad[1]:
            _, grad_grid = torch.ops.aten.grid_sampler_2d_backward(
                values, grad_out.contiguous(), grid, _BILINEAR, _ZEROS, True, [False, True]
            )
        return grad_values, grad_grid, None


def flow_to_grid(flow: torch.Tensor, canvas: tuple[int, int]) -> torch.Tensor:
    """(B, 2, H, W) flow in pixels -> (B, H, W, 2) target points p + F(p) in grid_sample's [-1, 1] coordinates.

    Coordinates are normalised over a canvas of (height, width) >= (H, W) with align_corners=True: -1 and 1 are
    the centres of the canvas's first and last pixels, and pixel (0, 0) of the flow is pixel (0, 0) of the canvas.
    """
    _, _, height, width = flow.shape
    xs = torch.arange(width, dtype=flow.dtype, device=flow.device)
    ys = torch.arange(height, dtype=flow.dtype, device=flow.device)
    grid_x = (flow[:, 0] + xs.view(1, 1, width)) * (2.0 / (canvas[1] - 1)) - 1.0
    grid_y = (flow[:, 1] + ys.view(1, height, 1)) * (2.0 / (canvas[0] - 1)) - 1.0
    return torch.stack([grid_x, grid_y], dim=-1)


def splat_sum(values: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Summation splatting: (B, C, H, W) values moved by (B, 2, H, W) flow in pixels -> (B, C, H, W).

    Splats that land outside the image are dropped; integer displacements are exact translations.
    """
    height, width = values.shape[-2:]
    canvas = (_canvas_length(height), _canvas_length(width))
    splatted = _SummationSplat.apply(values, flow_to_grid(flow, canvas), canvas)
    return splatted[..., :height, :width]


def _check_inputs(values: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor | None, mode: str) -> None:
    if mode not in SPLAT_MODES:
        raise GIDInputError(f"unknown splatting mode {mode!r}; choose one of {', '.join(SPLAT_MODES)}")
    if values.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise GIDInputError(
            f"expected values (B, C, H, W) and flow (B, 2, H, W), got {tuple(values.shape)} and {tuple(flow.shape)}"
        )
    if values.shape[0] != flow.shape[0] or values.shape[-2:] != flow.shape[-2:]:
        raise GIDInputError(f"values {tuple(values.shape)} and flow {tuple(flow.shape)} differ in batch or size")
    if mode in ("linear", "softmax"):
        if metric is None:
            raise GIDInputError(f"splatting mode {mode!r} needs a metric")
        if metric.dim() != 4 or metric.shape[1] != 1 or metric.shape[-2:] != values.shape[-2:]:
            raise GIDInputError(f"metric must be (B or 1, 1, H, W), got {tuple(metric.shape)}")


def _source_weights(metric: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-source weights (B, 1, H, W) for the normalised modes, and each batch item's smallest weight (B,1,1,1)."""
    if mode == "softmax":
        # Subtracting the max keeps exp() <= 1 whatever the metric's scale; the floor keeps it >= exp(-range).
        shifted = metric - metric.amax(dim=(-2, -1), keepdim=True).detach()
        weights = torch.exp(shifted.clamp_min(-_SOFTMAX_RANGE))
    else:
        if bool((metric < 0).any()):
            raise GIDInputError("linear splatting needs a non-negative metric")
        weights = metric
    return weights, weights.detach().amin(dim=(-2, -1), keepdim=True)


def splat(
    values: torch.Tensor,
    flow: torch.Tensor,
    metric: torch.Tensor | None = None,
    mode: SplatMode = "softmax",
    return_valid: bool = False,
    chunk_size: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Forward-warp images or feature maps by flow.

    Args:
        values: (B, C, H, W) float images or features.
        flow: (B, 2, H, W) displacement in pixels, x first: source p lands at p + flow[:, :, p].
        metric: (B, 1, H, W) or (1, 1, H, W) importance, needed by ``linear`` (weights, >= 0) and ``softmax``
            (log-weights; include any temperature). Ignored by ``summation`` and ``average``.
        mode: ``summation``, ``average``, ``linear`` or ``softmax`` (module docstring).
        return_valid: also return the (B, 1, H, W) bool mask of target pixels that received any source
            (False marks holes, e.g. disocclusions); costs one more channel.
        chunk_size: splat this many batch items at a time (bounded memory); None picks it from CHUNK_BYTES.

    Returns:
        (B, C, H, W) splatted values (zero in holes), and the valid mask if asked.
    """
    _check_inputs(values, flow, metric, mode)
    batch, channels, height, width = values.shape
    step = chunk_size or _auto_chunk_size(channels, height, width)
    # Chunks are written into preallocated outputs (slice assignment keeps autograd working) rather than
    # concatenated at the end, which would copy every frame once more.
    output = values.new_empty(values.shape)
    valid = torch.empty(batch, 1, height, width, dtype=torch.bool, device=values.device) if return_valid else None
    for start in range(0, batch, step):
        stop = min(start + step, batch)
        chunk_metric = None if metric is None else metric[start:stop] if metric.shape[0] == batch else metric
        out, chunk_valid = _splat_chunk(values[start:stop], flow[start:stop], chunk_metric, mode, return_valid)
        output[start:stop] = out
        if valid is not None:
            valid[start:stop] = chunk_valid
    return output if valid is None else (output, valid)


def _auto_chunk_size(channels: int, height: int, width: int) -> int:
    """Batch items per chunk: as many canvases of (channels + 1) float32 planes as fit in CHUNK_BYTES, at least
    one per thread."""
    canvas_bytes = (channels + 1) * _canvas_length(height) * _canvas_length(width) * 4
    return max(torch.get_num_threads(), CHUNK_BYTES // canvas_bytes, 1)


def _splat_chunk(
    values: torch.Tensor, flow: torch.Tensor, metric: torch.Tensor | None, mode: str, return_valid: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    channels = values.shape[1]
    if mode == "summation":
        if not return_valid:
            return splat_sum(values, flow), None
        ones = values.new_ones(values.shape[0], 1, *values.shape[-2:])
        both = splat_sum(torch.cat([values, ones], dim=1), flow)
        return both[:, :channels], both[:, channels:] > COVERAGE_EPS
    if mode == "average":
        weights = values.new_ones(values.shape[0], 1, *values.shape[-2:])
        smallest = values.new_ones(values.shape[0], 1, 1, 1)
    else:
        weights, smallest = _source_weights(metric.to(values.dtype), mode)
        weights = weights.expand(values.shape[0], 1, *values.shape[-2:])
        smallest = smallest.expand(values.shape[0], 1, 1, 1)
    both = splat_sum(torch.cat([values * weights, weights], dim=1), flow)
    numerator, total = both[:, :channels], both[:, channels:]
    # A pixel is covered if it got at least COVERAGE_EPS of the lightest source's full weight.
    threshold = (COVERAGE_EPS * smallest).clamp_min(torch.finfo(total.dtype).tiny)
    valid = total > threshold
    output = torch.where(valid, numerator / torch.where(valid, total, torch.ones_like(total)), 0.0)
    return output, valid if return_valid else None


def motion_metric(displacements: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """The paper's splatting metric: temperature * W(p), W(p) = mean over t of |F_t(p)|_2.

    Args:
        displacements: (..., T, 2, H, W) in pixels.
        temperature: multiplies W (1 / pixels when used as softmax log-weights).

    Returns:
        (..., 1, H, W) float.
    """
    # hypot of the two channels: a reduction over a size-2 dim is ~70x slower on CPU for the same result.
    magnitude = torch.hypot(displacements[..., 0:1, :, :], displacements[..., 1:2, :, :])
    return temperature * magnitude.mean(dim=-4)
