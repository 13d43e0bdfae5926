"""Decode photos into upright RGB uint8 arrays, refusing anything broken.

Every decoding problem becomes a `BadInput` carrying the path and a one-line
reason, so CLIs can print it without a traceback.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Photos larger than this are refused as possible decompression bombs.
MAX_PIXELS = 40_000_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class BadInput(Exception):
    """A file that cannot be used, with a short human-readable reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def is_image_path(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read `path` as an upright RGB uint8 array of shape [H, W, 3]."""
    return decode_image(read_bytes(path), path, max_pixels)


def check_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> None:
    """Raise the BadInput that `load_image` would for a missing, empty, non-image, truncated or too
    large file, from its header and end alone: cheap enough to vet every input before a model loads.
    (Corrupt pixel data is only found by decoding.)"""
    _opened(read_bytes(path), path, max_pixels)


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, or the BadInput `load_image` gives for a missing, folder or unreadable path."""
    p = Path(path)
    if not p.exists():
        raise BadInput(path, "no such file")
    if p.is_dir():
        raise BadInput(path, "is a directory, not an image")
    try:
        return p.read_bytes()
    except OSError as e:
        raise BadInput(path, f"cannot read file ({e.strerror or e})") from None


def _opened(data: bytes, path: str | os.PathLike, max_pixels: int) -> Image.Image:
    """The image, opened but not decoded, once its header and end say it can be."""
    if not data:
        raise BadInput(path, "empty file (0 bytes)")
    with warnings.catch_warnings():
        # PIL's own bomb check warns then errors at other limits; ours comes first. Its notes on corrupt
        # EXIF or TIFF tags would be multi-line noise on a CLI's stderr: the image decodes or is refused.
        warnings.simplefilter("ignore")
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError:
            raise BadInput(path, "image too large (possible decompression bomb)") from None
        except Exception:
            raise BadInput(path, "not a readable image") from None
    w, h = img.size
    if w * h > max_pixels:
        raise BadInput(path, f"image too large ({w}x{h} pixels > {max_pixels} limit): shrink it to "
                             f"{max_pixels / 1e6:.0f} megapixels or less")
    if img.format == "JPEG" and not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
        # PIL and OpenCV half-decode JPEGs cut short; refuse them instead.
        raise BadInput(path, "truncated JPEG (no end-of-image marker)")
    return img


def decode_image(data: bytes, path: str | os.PathLike = "<bytes>", max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes (see `load_image`)."""
    img = _opened(data, path, max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img.load()
            return _to_rgb8(ImageOps.exif_transpose(img))
        except Exception as e:
            raise BadInput(path, f"corrupt image data ({_short(e)})") from None


def _to_rgb8(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: PIL's convert("RGB") clips instead of scaling.
        a = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if a.max() > 255 else 255.0
        g = np.clip(a / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.stack([g, g, g], axis=-1))
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Composite on white so transparent areas don't turn black.
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"), dtype=np.uint8))


def _short(e: Exception) -> str:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    return msg[:120]
