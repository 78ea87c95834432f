"""Live poke: a photo's modal basis packed for the browser, and a browser interaction turned back into pokes.

The browser (``static/live_poke.js``) simulates the same damped modal oscillators as ``dynamics`` and warps the
photo itself, at the display's frame rate; the server's part is to send the basis once per photo, compact, and to
render a recorded interaction into the same mp4 a server-side poke gives.

Payload (``live_payload``), one JSON string (the value of the app's live block), format ``gid-live-basis``
version 1:

- ``image``: the photo at the live size (``width`` x ``height`` px) as a JPEG data URL;
- ``grid``: ``width`` x ``height`` of the grid the mode shapes are sampled on (coarser than the photo; the
  browser upsamples bilinearly, pixel centres aligned, as ``torch.nn.functional.interpolate(mode="bilinear",
  align_corners=False)`` does);
- ``modes``: M, the modes kept (those with the largest static compliance, in order of frequency), ``omegas``
  (M rad/s), ``reference_compliance`` (c_ref of the full basis, px^2 s^2), ``compliance_kept`` (their share of
  the full basis's compliance), ``params`` (DynamicsParams' damping, stiffness, mass, max_displacement);
- ``bits`` (8 or 16), ``scales`` (M x 4) and ``data``: base64 of little-endian signed integers laid out
  (M, grid height, grid width, 4) with channels spectral.CHANNELS (x.real, y.real, x.imag, y.imag), so one mode
  is one RGBA texture layer. A code c decodes to scale * sign(c) * (c / Q)^2, Q = 2^(bits-1) - 1: square-root
  companding, like the paper's adaptive normalisation, spends the levels on the many small coefficients. Mode
  shapes are in pixels of the photo at the live size;
- ``controls``: the ranges of the browser's sliders, the same ones ``parse_interaction`` checks;
  ``record_seconds``: the longest video Record makes (the browser logs no push that begins later).

A payload may instead be ``{"format": "gid-live-basis", "message": "..."}`` (``message_payload``): the browser
shows the message in place of the canvas (a photo without motion, a basis over the budget).
"""

from __future__ import annotations

import base64
import io
import json
import math
import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import GIDInputError
from ..media.images import image_to_tensor
from ..media.writer import VideoWriter
from ..motion.dynamics import DynamicsParams, ModalBasis, Poke, iter_poke_frames
from ..spectral.volume import SpectralVolume

PAYLOAD_FORMAT = "gid-live-basis"
PAYLOAD_VERSION = 1
LIVE_SIDE = 512
"""Longer side of the live canvas in pixels."""
GRID_SIDE = 256
"""Longer side of the grid the mode shapes travel on: the model's own (app.engine.MODEL_INPUT_SIDE), so nothing the
model predicted is lost; the browser upsamples to the canvas."""
LIVE_MODES = 8
"""Modes sent. Compliance (how far a mode moves under a steady force) falls as 1 / omega^2, so the slowest modes
carry nearly all of a poke's response: on the app's example photos the 8 largest hold over 99.9 % of it."""
LIVE_BITS = 8
"""Quantisation of the mode shapes: 8 (default) or 16 bits per value."""
MAX_PAYLOAD_BYTES = 4_000_000
"""The budget of one payload (the JSON string as sent, base64 included); a larger one is refused."""
JPEG_QUALITY = 90
STILL_SHAPE_PIXELS = 1e-6
"""A basis whose largest mode-shape value is below this many pixels has no motion to poke."""
FPS = 30.0
"""Frame rate of a recorded interaction's video (the server-side poke's)."""
SETTLE_SECONDS = 3.0
"""A recorded video runs on this long after the interaction's last push (the server-side poke's 90 frames)."""
MIN_FRAMES, MAX_FRAMES = 8, 300
"""Bounds of a recorded video's frames (limits.APP_MIN_FRAMES and APP_MAX_FRAMES)."""
MAX_POKES = 1200
"""Most pokes one recording may hold (the browser logs at most one per displayed frame, and none after
record_seconds: 10 s at 120 Hz)."""
CONTROL_RANGES: dict[str, tuple[float, float]] = {
    "stiffness": (0.25, 4.0),
    "damping": (0.0, 0.95),
    "strength": (0.25, 4.0),
}
"""(low, high) of the browser's sliders. Stiffness scales every mode's stiffness (speed ~ sqrt(stiffness));
damping is the modal damping ratio (1 would not swing); strength multiplies the drag into the force."""


@dataclass(frozen=True)
class LiveBasis:
    """A photo's modal basis as the browser gets it: fewer modes, a coarser grid, quantised.

    Attributes:
        image_size: (height, width) of the photo the shapes are in pixels of.
        omegas: (M,) float64 natural angular frequencies, rad/s.
        codes: (M, h, w, 4) int8 or int16 quantised mode shapes on the grid (module docstring).
        scales: (M, 4) float32 decoding scale per mode and channel, pixels.
        reference_compliance: c_ref of the full basis, px^2 s^2.
        compliance_kept: share of the full basis's total static compliance these modes hold, in [0, 1].
    """

    image_size: tuple[int, int]
    omegas: torch.Tensor
    codes: np.ndarray
    scales: torch.Tensor
    reference_compliance: float
    compliance_kept: float

    @property
    def bits(self) -> int:
        return 8 * self.codes.dtype.itemsize

    @property
    def grid_size(self) -> tuple[int, int]:
        """(height, width) of the grid."""
        return self.codes.shape[1], self.codes.shape[2]

    def shapes(self) -> torch.Tensor:
        """(M, 4, h, w) float32 decoded mode shapes on the grid, pixels of the photo."""
        return dequantize(torch.from_numpy(self.codes).permute(0, 3, 1, 2), self.scales, self.bits)

    def to_modal_basis(self) -> ModalBasis:
        """The basis the browser simulates, at the photo's size: the decoded shapes upsampled bilinearly (pixel
        centres aligned, as the browser samples them) with c_ref of the full basis. Its softmax metric is flat
        (the browser warps without one), so it also renders, with equal weights."""
        height, width = self.image_size
        shapes = F.interpolate(self.shapes(), size=(height, width), mode="bilinear", align_corners=False)
        return ModalBasis(
            shapes=shapes.contiguous(),
            omegas=self.omegas.clone(),
            metric=torch.zeros(1, 1, height, width),
            reference_compliance=self.reference_compliance,
        )


def quantize(values: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Square-root companded signed quantisation, one scale per mode and channel.

    Args:
        values: (M, 4, h, w) float, pixels.
        bits: 8 or 16.

    Returns:
        codes: (M, 4, h, w) int8 / int16, round(Q sign(v) sqrt(|v| / scale)), Q = 2^(bits-1) - 1; 0 stays 0.
        scales: (M, 4) float32, max |v| per mode and channel (1 where a channel is all zero).
    """
    if bits not in (8, 16):
        raise GIDInputError(f"the live basis is quantised to 8 or 16 bits, got {bits!r}")
    levels = 2 ** (bits - 1) - 1
    scales = values.abs().amax(dim=(2, 3)).float()
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    unit = values.float() / scales[:, :, None, None]
    codes = torch.round(torch.sign(unit) * unit.abs().sqrt() * levels)
    return codes.to(torch.int8 if bits == 8 else torch.int16), scales


def dequantize(codes: torch.Tensor, scales: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of quantize: (M, 4, h, w) integer codes and (M, 4) scales -> (M, 4, h, w) float32 pixels."""
    levels = 2 ** (bits - 1) - 1
    unit = codes.float() / levels
    return torch.sign(unit) * unit.square() * scales.float()[:, :, None, None]


def mode_compliance(basis: ModalBasis) -> torch.Tensor:
    """(M,) float64 total static compliance of each mode, sum over pixels of |Phi_k|^2 / omega_k^2 (px^4 s^2):
    how much of a steady push's response the mode carries."""
    energy = basis.shapes.double().square().sum(dim=(1, 2, 3))
    return energy / basis.omegas.square()


def pack_live_basis(
    basis: ModalBasis, grid_side: int = GRID_SIDE, modes: int = LIVE_MODES, bits: int = LIVE_BITS
) -> LiveBasis:
    """Compact a photo's modal basis for the browser: the ``modes`` most compliant modes, shrunk to a grid at most
    ``grid_side`` on its longer side (area-averaged; values stay in pixels of the photo), quantised.

    Raises GIDInputError for a basis without motion (nothing to poke) or bad settings.
    """
    if not (isinstance(modes, numbers.Integral) and modes >= 1):
        raise GIDInputError(f"modes must be a positive integer, got {modes!r}")
    if not (isinstance(grid_side, numbers.Integral) and grid_side >= 2):
        raise GIDInputError(f"grid_side must be an integer of at least 2, got {grid_side!r}")
    if float(basis.shapes.abs().amax()) < STILL_SHAPE_PIXELS:
        raise GIDInputError("this photo has no predicted motion: nothing in it would move when poked")
    compliance = mode_compliance(basis)
    keep = torch.sort(torch.topk(compliance, min(modes, basis.num_modes)).indices).values
    height, width = basis.size
    scale = min(1.0, grid_side / max(height, width))
    grid = (max(2, round(height * scale)), max(2, round(width * scale)))
    shapes = basis.shapes[keep]
    if grid != (height, width):
        shapes = F.interpolate(shapes, size=grid, mode="bilinear", align_corners=False, antialias=True)
    codes, scales = quantize(shapes, bits)
    return LiveBasis(
        image_size=(height, width),
        omegas=basis.omegas[keep].clone(),
        codes=codes.permute(0, 2, 3, 1).contiguous().numpy(),
        scales=scales,
        reference_compliance=basis.reference_compliance,
        compliance_kept=float(compliance[keep].sum() / compliance.sum()),
    )


def live_payload(
    image: np.ndarray,
    live: LiveBasis,
    params: DynamicsParams | None = None,
    max_bytes: float = MAX_PAYLOAD_BYTES,
) -> str:
    """The JSON string the browser gets for a photo (module docstring), at most ``max_bytes`` long.

    Args:
        image: (H, W, 3) uint8, the photo at live.image_size.
        live: its packed basis.
        params: the simulation's defaults (DynamicsParams() if None).
        max_bytes: the budget; a longer payload raises GIDInputError saying what to lower.
    """
    params = params or DynamicsParams()
    if tuple(image.shape[:2]) != live.image_size:
        raise GIDInputError(
            f"the photo is {image.shape[1]}x{image.shape[0]} but the live basis is for "
            f"{live.image_size[1]}x{live.image_size[0]} (width x height)"
        )
    jpeg = io.BytesIO()
    Image.fromarray(image).save(jpeg, format="JPEG", quality=JPEG_QUALITY)
    grid_height, grid_width = live.grid_size
    payload = {
        "format": PAYLOAD_FORMAT,
        "version": PAYLOAD_VERSION,
        "image": {
            "width": live.image_size[1],
            "height": live.image_size[0],
            "url": "data:image/jpeg;base64," + base64.b64encode(jpeg.getvalue()).decode("ascii"),
        },
        "grid": {"width": grid_width, "height": grid_height},
        "modes": len(live.omegas),
        "omegas": live.omegas.tolist(),
        "reference_compliance": live.reference_compliance,
        "compliance_kept": live.compliance_kept,
        "params": {
            "damping": params.damping,
            "stiffness": params.stiffness,
            "mass": params.mass,
            "max_displacement": params.max_displacement,
        },
        "controls": {name: list(bounds) for name, bounds in CONTROL_RANGES.items()},
        "record_seconds": MAX_FRAMES / FPS,
        "bits": live.bits,
        "scales": live.scales.tolist(),
        "data": base64.b64encode(live.codes.astype(live.codes.dtype.newbyteorder("<")).tobytes()).decode("ascii"),
    }
    text = json.dumps(payload, separators=(",", ":"))
    if len(text) > max_bytes:
        raise GIDInputError(
            f"the live motion basis would be {len(text) / 1e6:.1f} MB, over the {max_bytes / 1e6:.1f} MB budget: "
            f"send fewer modes, a coarser grid or 8-bit values"
        )
    return text


def message_payload(message: str) -> str:
    """A payload that makes the browser show ``message`` instead of the canvas."""
    return json.dumps({"format": PAYLOAD_FORMAT, "message": message})


def read_payload(text: str) -> LiveBasis:
    """The LiveBasis in a payload string (the inverse of live_payload for the basis), e.g. to simulate in Python
    exactly what the browser simulates. Raises GIDInputError for anything but a version-1 basis payload."""
    try:
        payload = json.loads(text)
        if payload.get("format") != PAYLOAD_FORMAT or payload.get("version") != PAYLOAD_VERSION:
            raise GIDInputError(f"not a {PAYLOAD_FORMAT} version {PAYLOAD_VERSION} payload")
        modes, bits = int(payload["modes"]), int(payload["bits"])
        grid = (int(payload["grid"]["height"]), int(payload["grid"]["width"]))
        dtype = np.dtype("<i1" if bits == 8 else "<i2")
        codes = np.frombuffer(base64.b64decode(payload["data"]), dtype=dtype).astype(dtype.newbyteorder("="))
        return LiveBasis(
            image_size=(int(payload["image"]["height"]), int(payload["image"]["width"])),
            omegas=torch.tensor(payload["omegas"], dtype=torch.float64),
            codes=codes.reshape(modes, *grid, 4),
            scales=torch.tensor(payload["scales"], dtype=torch.float32),
            reference_compliance=float(payload["reference_compliance"]),
            compliance_kept=float(payload["compliance_kept"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise GIDInputError(f"not a readable live basis payload ({error})") from None


# ------------------------------------------------------------------------------------------------ recording
@dataclass(frozen=True)
class Interaction:
    """What the browser recorded since the scene was last at rest, checked and mapped onto a video's grid.

    Attributes:
        pokes: the pushes, in pixels of the video (a drag is one held Poke per stretch of constant force).
        params: the damping and stiffness the browser simulated with.
        num_frames: frames of the video at FPS: through the last push and SETTLE_SECONDS after it.
    """

    pokes: tuple[Poke, ...]
    params: DynamicsParams
    num_frames: int


def parse_interaction(data: Any, video_size: tuple[int, int]) -> Interaction:
    """Check the browser's ``record`` event data and map it onto a video of video_size = (height, width).

    ``data`` is {"width", "height": the live canvas's size, "pokes": [{"x", "y", "dx", "dy", "start", "hold"}],
    "params": {"damping", "stiffness"}}, times in seconds since the recording began, points and forces in canvas
    pixels. Points map as pixel centres (app.photos.to_image_pixels), forces by the size ratio, so the modal
    response is the same on both grids (forces and mode shapes scale alike). Raises GIDInputError for anything
    malformed, out of range or recorded on a photo of another shape.
    """
    if not isinstance(data, Mapping):
        raise GIDInputError("the recording is missing: drag the photo, then press Record")
    width, height = _number(data, "width"), _number(data, "height")
    if width < 1 or height < 1:
        raise GIDInputError(f"the recording's canvas size {width:g}x{height:g} is not a picture size")
    video_height, video_width = video_size
    if abs((width / height) / (video_width / video_height) - 1.0) > 0.02:
        raise GIDInputError(
            f"the recording was made on a {width:g}x{height:g} canvas, which is not this photo's shape "
            f"({video_width}x{video_height}): poke the photo again"
        )
    raw = data.get("pokes")
    if not isinstance(raw, list) or not raw:
        raise GIDInputError("nothing was recorded: drag the photo, then press Record")
    if len(raw) > MAX_POKES:
        raise GIDInputError(f"the recording holds {len(raw)} pushes, more than the {MAX_POKES} one video may")
    params = data.get("params")
    if not isinstance(params, Mapping):
        raise GIDInputError("the recording has no simulation parameters")
    values = {name: _number(params, name) for name in ("damping", "stiffness")}
    for name, value in values.items():
        low, high = CONTROL_RANGES[name]
        if not low <= value <= high:
            raise GIDInputError(f"{name} must be between {low:g} and {high:g}, got {value:g}")
    sx, sy = video_width / width, video_height / height
    pokes = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise GIDInputError("a recorded push is not a record of x, y, dx, dy, start and hold")
        x, y, dx, dy, start, hold = (_number(item, key) for key in ("x", "y", "dx", "dy", "start", "hold"))
        if not (-0.5 <= x <= width - 0.5 and -0.5 <= y <= height - 0.5):
            raise GIDInputError(f"a recorded push at ({x:g}, {y:g}) is off the {width:g}x{height:g} canvas")
        pokes.append(Poke((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5, dx * sx, dy * sy, start, hold))
    end = max(poke.start + poke.hold for poke in pokes) + SETTLE_SECONDS
    num_frames = min(max(math.ceil(end * FPS), MIN_FRAMES), MAX_FRAMES)
    # Pushes that begin after the video's end cannot show in it.
    shown = tuple(poke for poke in pokes if poke.start < num_frames / FPS)
    return Interaction(shown, DynamicsParams(**values), num_frames)


def interaction_frames(image: np.ndarray, basis: ModalBasis, interaction: Interaction) -> Iterator[torch.Tensor]:
    """The server's rendering of a recorded interaction (dynamics.iter_poke_frames: the full basis, softmax
    splatting), as (n, 3, H, W) float32 chunks in [0, 1] at FPS. image: (H, W, 3) uint8 of the basis's size."""
    return iter_poke_frames(
        image_to_tensor(image), basis, interaction.pokes, interaction.num_frames, FPS, interaction.params
    )


def render_interaction_video(path: Path, image: np.ndarray, basis: ModalBasis, interaction: Interaction) -> Path:
    """Write interaction_frames as a browser-playable H.264 mp4 at ``path``; returns path."""
    with torch.inference_mode(), VideoWriter(path, FPS) as writer:
        for chunk in interaction_frames(image, basis, interaction):
            writer.write(chunk)
    return path


def _number(record: Mapping[str, Any], key: str) -> float:
    """record[key] as a float if it is a finite real number (not a bool), else GIDInputError naming it."""
    value = record.get(key)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise GIDInputError(f"the recording's {key} must be a finite number, got {value!r}")
    return float(value)


def photo_payload(image: np.ndarray, volume: SpectralVolume) -> str:
    """The payload for a photo at the live size and its spectral volume (any grid of the same aspect ratio), or a
    message payload when it has no motion or its basis is over the budget."""
    try:
        basis = ModalBasis.from_volume(volume, image.shape[0], image.shape[1])
        return live_payload(image, pack_live_basis(basis))
    except GIDInputError as error:
        return message_payload(_sentence(str(error)))


def browser_script() -> str:
    """The browser side, static/live_poke.js (package data), as source text."""
    return (resources.files(__package__) / "static" / "live_poke.js").read_text(encoding="utf-8")


def _sentence(text: str) -> str:
    """'this photo ...' -> 'This photo ....'"""
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."
