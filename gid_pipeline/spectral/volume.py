"""A spectral volume with the facts needed to play it back, and its safetensors file format.

A file holds one tensor ``spectrum`` (K, 4, H, W) float32 (float16 with save(half=True)) in pixels of its H x W
grid (channel order spectral.CHANNELS) and string metadata: format, version, num_frames (T, the period in frames
the spectrum was computed over) and fps (frames per second of that period); a volume sampled with a motion mask
also holds ``motion_mask`` (2, h, w) uint8 (0-255: the shares painted "moves" and "stays still", on the model's
grid), so that a replay shows what was asked. Loading never unpickles anything.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..errors import GIDInputError
from ..files import write_bytes_atomic
from .transform import CHANNELS, amplitude, frequencies_hz, resize_spectrum

FORMAT_NAME = "gid_pipeline.spectral.volume"
FORMAT_VERSION = "1"
TENSOR_NAME = "spectrum"
MASK_NAME = "motion_mask"


_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.uint8: "U8"}


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """The safetensors file of these tensors and metadata, byte for byte the same for the same input.

    safetensors' own writer keeps the metadata in a hash map, so its order, and the file's bytes, change from run
    to run; this writes the format's header (8-byte little-endian length, JSON, padded with spaces to 8 bytes)
    with sorted keys, then the tensors' little-endian data in name order. safe_open reads it as any other file.
    """
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks, offset = [], 0
    for name in sorted(tensors):
        data = tensors[name].contiguous().numpy().tobytes()
        header[name] = {"dtype": _DTYPES[tensors[name].dtype], "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}  # fmt: skip
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


@dataclass(frozen=True)
class SpectralVolume:
    """Per-pixel oscillation spectrum plus its time base.

    Attributes:
        spectrum: (K, 4, H, W) float32, pixels of the H x W grid, channel order spectral.CHANNELS.
        num_frames: T, frames in the period the spectrum describes (frequency spacing fps / T).
        fps: frames per second of that period.
        motion_mask: (2, h, w) float32 in [0, 1], the motion mask the volume was sampled with (motion.mask), or
            None; kept as given (on its own grid) by resizing and playback.
    """

    spectrum: torch.Tensor
    num_frames: int
    fps: float
    motion_mask: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.spectrum.dim() != 4 or self.spectrum.shape[1] != 4:
            raise GIDInputError(f"a spectral volume is (K, 4, H, W), got shape {tuple(self.spectrum.shape)}")
        if self.num_frames < 2 or not (math.isfinite(self.fps) and self.fps > 0):
            raise GIDInputError(f"need num_frames >= 2 and fps > 0, got {self.num_frames} and {self.fps}")
        if self.spectrum.shape[0] > self.num_frames // 2 + 1:
            raise GIDInputError(
                f"{self.spectrum.shape[0]} frequencies cannot come from a {self.num_frames}-frame period"
            )
        if not bool(torch.isfinite(self.spectrum).all()):
            raise GIDInputError("the spectral volume contains NaN or infinite values")
        mask = self.motion_mask
        if mask is not None and (mask.dim() != 3 or mask.shape[0] != 2 or not bool(((mask >= 0) & (mask <= 1)).all())):
            raise GIDInputError(f"a volume's motion mask is (2, h, w) in [0, 1], got shape {tuple(mask.shape)}")

    @property
    def num_frequencies(self) -> int:
        return self.spectrum.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) of the grid the displacements are measured on."""
        return self.spectrum.shape[-2], self.spectrum.shape[-1]

    @property
    def frequencies_hz(self) -> torch.Tensor:
        """(K,) float64 frequency of each coefficient in Hz."""
        return frequencies_hz(self.num_frequencies, self.num_frames, self.fps)

    @property
    def period_seconds(self) -> float:
        return self.num_frames / self.fps

    def amplitude(self) -> torch.Tensor:
        """(K, H, W) |S_k(p)| in pixels."""
        return amplitude(self.spectrum)

    def resized(self, height: int, width: int) -> SpectralVolume:
        """The same motion on a height x width grid, displacements scaled by the size ratio."""
        return SpectralVolume(resize_spectrum(self.spectrum, (height, width)), self.num_frames, self.fps,
                              self.motion_mask)  # fmt: skip

    def save(self, path: str | Path, half: bool = False) -> Path:
        """Write a safetensors file atomically (a crash leaves no half-written file); the same volume always gives
        the same bytes. half stores the spectrum as float16: half the size, and displacements of up to 64 px keep
        an error below 1/32 px (under 1/1000 px for the usual sub-pixel coefficients); load reads either."""
        path = Path(path)
        metadata = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "num_frames": str(self.num_frames),
            "fps": repr(float(self.fps)),
            "channels": ",".join(CHANNELS),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        dtype = torch.float16 if half else torch.float32
        tensors = {TENSOR_NAME: self.spectrum.detach().to(dtype).cpu().contiguous()}
        if self.motion_mask is not None:
            tensors[MASK_NAME] = (self.motion_mask.detach().float().cpu() * 255).round().to(torch.uint8).contiguous()
        # Serialised to bytes and written with open(), which honours the umask (save_file creates 0600 files).
        return write_bytes_atomic(path, safetensors_bytes(tensors, metadata))

    @classmethod
    def load(cls, path: str | Path) -> SpectralVolume:
        """Read a file written by save; any other file gives a GIDInputError that says what is wrong."""
        path = Path(path)
        if not path.is_file():
            raise GIDInputError(f"spectral volume file {path} does not exist")
        try:
            with safe_open(path, framework="pt") as handle:
                metadata = handle.metadata() or {}
                if metadata.get("format") != FORMAT_NAME or TENSOR_NAME not in handle.keys():
                    raise GIDInputError(f"{path} is a safetensors file but not a gid_pipeline spectral volume")
                spectrum = handle.get_tensor(TENSOR_NAME)
                mask = handle.get_tensor(MASK_NAME) if MASK_NAME in handle.keys() else None
        except (SafetensorError, OSError, ValueError) as error:
            if isinstance(error, GIDInputError):
                raise
            raise GIDInputError(f"{path} is not a safetensors spectral volume ({error})") from error
        if metadata.get("channels", ",".join(CHANNELS)) != ",".join(CHANNELS):
            raise GIDInputError(f"{path} stores channels {metadata['channels']}, expected {','.join(CHANNELS)}")
        try:
            num_frames, fps = int(metadata["num_frames"]), float(metadata["fps"])
        except (KeyError, ValueError) as error:
            raise GIDInputError(f"{path} lacks valid num_frames/fps metadata ({error})") from error
        try:
            if mask is not None and mask.dtype != torch.uint8:
                raise GIDInputError(f"its {MASK_NAME} must be uint8, got {mask.dtype}")
            return cls(spectrum.float(), num_frames, fps, None if mask is None else mask.float() / 255.0)
        except GIDInputError as error:
            raise GIDInputError(f"{path}: {error}") from error
