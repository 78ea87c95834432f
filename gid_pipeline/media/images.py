"""Reading still images: any file Pillow reads, a PIL image or an array -> uint8 (H, W, 3) RGB, within the size
limits, and the pipeline's image tensors.

A single image is ``np.ndarray`` uint8 of shape (H, W, 3), RGB; the renderer's and the pipeline's form is a
(3, H, W) float32 tensor in [0, 1] (``image_tensors``).
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps

from ..errors import GIDInputError
from ..limits import MAX_IMAGE_PIXELS, MIN_IMAGE_SIDE
from ..sizing import working_size

_IMAGE_MODES_16BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_SRGB = ImageCms.createProfile("sRGB")


def existing_file(path: str | os.PathLike[str], what: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise GIDInputError(f"{what} file not found: {p}")
    if not p.is_file():
        raise GIDInputError(f"{what} path is not a file: {p}")
    return p


def float_to_uint8(a: np.ndarray, what: str) -> np.ndarray:
    """Float values in [0, 1] -> uint8 levels (clamped, rounded)."""
    if not np.isfinite(a).all():
        raise GIDInputError(f"{what} contain NaN or infinite values")
    return np.rint(np.clip(a, 0.0, 1.0) * 255.0).astype(np.uint8)


def _array_to_pil(a: np.ndarray) -> Image.Image:
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype.kind == "f":
        a = float_to_uint8(a, "image values")
    gray16 = a.dtype == np.uint16 and a.ndim == 2
    if not (a.dtype == np.uint8 or gray16) or not (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        raise GIDInputError(
            "image array must be (H, W), (H, W, 3) or (H, W, 4) of uint8 or float in [0, 1], or (H, W)"
            f" uint16; got shape {a.shape} dtype {a.dtype}"
        )
    return Image.fromarray(a)


def _to_srgb(img: Image.Image) -> Image.Image:
    """Convert colours with an embedded ICC profile (Display P3 phone photos, CMYK print files) to sRGB."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA", "CMYK"):
        return img
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(img, src, _SRGB, outputMode="RGBA" if img.mode == "RGBA" else "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img  # an unusable profile: keep the numbers as they are, the common case of untagged sRGB


def _to_rgb8(img: Image.Image, name: str) -> np.ndarray:
    """Any Pillow mode -> uint8 (H, W, 3) RGB: 16 bit scaled to 8, transparency composited on white."""
    if img.mode in _IMAGE_MODES_16BIT:
        gray = np.asarray(img).astype(np.float32) * (255.0 / 65535.0)
        return np.repeat(np.rint(np.clip(gray, 0, 255)).astype(np.uint8)[..., None], 3, axis=2)
    img = _to_srgb(img)
    try:
        if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            img = Image.alpha_composite(white, img.convert("RGBA"))
        return np.asarray(img.convert("RGB"))
    except ValueError as e:
        raise GIDInputError(f"cannot convert {name} (Pillow mode {img.mode}) to RGB: {e}") from e


def read_image(image: str | os.PathLike[str] | Image.Image | np.ndarray) -> np.ndarray:
    """Load a photo as uint8 (H, W, 3) RGB.

    Accepts a path, a PIL image, or an array ((H, W), (H, W, 3), (H, W, 4) uint8 or float in [0, 1]; (H, W)
    uint16). EXIF orientation is applied; grayscale becomes RGB; transparency (RGBA, LA, palette or tRNS) is
    composited on white; 16-bit images are scaled to 8 bit (65535 -> 255); CMYK and images with an embedded
    ICC profile are converted to sRGB. A multi-frame file (GIF, TIFF) gives its first frame.
    Raises GIDInputError for a missing or undecodable file, or a side < MIN_IMAGE_SIDE or more than
    MAX_IMAGE_PIXELS pixels (checked from the header, before decoding).
    """
    if isinstance(image, np.ndarray):
        return _checked_rgb8(_array_to_pil(image), "image array")
    if isinstance(image, Image.Image):
        return _checked_rgb8(image, "image")
    path = existing_file(image, "image")
    try:
        with warnings.catch_warnings():
            # Pillow warns about "decompression bombs" above its own limit; ours is stricter.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)  # reads the header only
    except Image.DecompressionBombError as e:
        raise GIDInputError(f"{path} is too large: over {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise GIDInputError(f"{path} is not an image Pillow can read ({e})") from e
    with img:
        return _checked_rgb8(img, str(path))


def _checked_rgb8(img: Image.Image, name: str) -> np.ndarray:
    """Size limits (from the header), then decode, apply EXIF orientation, convert: uint8 (H, W, 3)."""
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:
        raise GIDInputError(f"{name} is too large: {w}x{h} is over {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels")
    if min(w, h) < MIN_IMAGE_SIDE:
        raise GIDInputError(
            f"{name} is too small: {w}x{h}, each side must be at least {MIN_IMAGE_SIDE} pixels"
        )
    try:
        img = ImageOps.exif_transpose(img)  # decodes the pixels; a copy, the caller's image is not changed
    except (OSError, SyntaxError, ValueError) as e:
        raise GIDInputError(f"cannot decode {name}: it is corrupt or truncated ({e})") from e
    return _to_rgb8(img, name)




def image_tensors(image: Any) -> list[torch.Tensor]:
    """One image in any accepted form -> a list of (3, H, W) float32 tensors in [0, 1] (a (B, 3, H, W) tensor
    gives B): a PIL image, an array or a path (read_image), or a (3, H, W) / (B, 3, H, W) float tensor in [0, 1].
    The size limits of read_image hold for tensors too."""
    if isinstance(image, torch.Tensor):
        if not image.is_floating_point():
            raise GIDInputError(f"an image tensor must be float in [0, 1], got {image.dtype}")
        if image.ndim not in (3, 4) or image.shape[-3] != 3:
            raise GIDInputError(f"an image tensor must be (3, H, W) or (B, 3, H, W), got {tuple(image.shape)}")
        batch = image.detach().float().cpu().reshape(-1, *image.shape[-3:])
        height, width = batch.shape[-2:]
        if min(height, width) < MIN_IMAGE_SIDE or height * width > MAX_IMAGE_PIXELS:
            raise GIDInputError(
                f"image is {width}x{height}: each side must be at least {MIN_IMAGE_SIDE} pixels and the image at most "
                f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"
            )
        if not bool(torch.isfinite(batch).all()) or batch.min() < 0 or batch.max() > 1:
            raise GIDInputError("an image tensor must hold finite values in [0, 1]")
        return list(batch)
    if isinstance(image, (Image.Image, np.ndarray, str, os.PathLike, Path)):
        return [image_to_tensor(read_image(image))]
    raise GIDInputError(
        f"an image must be a PIL image, an (H, W, 3) uint8 array or a float tensor, got {type(image).__name__}"
    )


def one_image_tensor(image: Any) -> torch.Tensor:
    """Exactly one image in any form image_tensors takes -> (3, H, W) float32 in [0, 1], at its own size."""
    if isinstance(image, (list, tuple)) or (isinstance(image, torch.Tensor) and image.dim() == 4):
        raise GIDInputError("give one image here (a PIL image, an (H, W, 3) array or a (3, H, W) tensor)")
    (tensor,) = image_tensors(image)
    return tensor


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [0, 1], the renderer's image format (always a copy)."""
    return torch.tensor(image).permute(2, 0, 1).float().div_(255.0)


def resize_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (height, width, 3) uint8 for size = (width, height); Lanczos, a no-op at equal size."""
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


def fit_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Resize (H, W, 3) uint8 so that its longer side is ``long_side`` (even sides)."""
    return resize_image(image, working_size(image.shape[1], image.shape[0], long_side))
