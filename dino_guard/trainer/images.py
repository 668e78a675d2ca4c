"""Reading one image: any file PIL opens -> 8-bit RGB, for both augmentation backends.

`open_rgb` (backend cpu, kNN) and `decode_resize` (backend device's
workers) share one converter, `to_rgb`; `encoded_jpeg` says which JPEGs
can travel undecoded to the device (`transform.decode: device`). Bottom of
the data path: dataset.py and pipeline.py import this, never the reverse.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dino_guard.memory.spec import DECODE_MAX_PIXELS


class DataError(Exception):
    """Data that cannot be trained on; the message names the path and the fix."""


READ_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)
_INT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> 8-bit RGB: 16/32-bit integers scaled down by their range (PIL would clip at 255),
    floats stretched to their min..max, alpha dropped, CMYK/palette/1-bit converted."""
    if image.mode in _INT_MODES:
        arr = np.asarray(image, dtype=np.float64)
        # 16-bit files open as I;16 or as I (PNG); an I image within 0..255 is 8-bit data.
        top = 255.0 if image.mode == "I" and arr.max(initial=0) <= 255 else 65535.0
        image = Image.fromarray(np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min(initial=0)), float(arr.max(initial=0))
        arr = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        image = Image.fromarray(arr.astype(np.uint8), mode="L")
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # palette transparency -> alpha, which RGB then drops
    return image if image.mode == "RGB" else image.convert("RGB")


def open_rgb(path) -> Image.Image:
    """Open and fully decode any image PIL reads, as 8-bit RGB."""
    with Image.open(path) as img:
        img.load()
        return to_rgb(img)


JPEG_START, JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"  # start-of-image + a marker; end-of-image


@dataclass
class EncodedJPEG:
    """A JPEG file's bytes with the size its header states; decoded later, batched, on the device."""

    data: bytes
    height: int
    width: int
    name: str  # the file, for the bad-file report if the device cannot decode it


def encoded_jpeg(data: bytes, name: str) -> EncodedJPEG | None:
    """The file as EncodedJPEG if the device decoder takes it, else None (the worker decodes it).

    Only the header is parsed (PIL's open reads no pixels). CMYK/YCCK JPEGs
    are left to PIL, which converts them as open_rgb does; so is a file
    without an end-of-image marker near its end: most likely truncated, and
    PIL's decode in the worker reports it as unreadable as for any format.
    """
    if not data.startswith(JPEG_START) or JPEG_END not in data[-64:]:
        return None
    with Image.open(io.BytesIO(data)) as img:
        if img.format != "JPEG" or img.mode not in ("RGB", "L"):
            return None
        width, height = img.size
    if width * height > DECODE_MAX_PIXELS:  # bounded device memory: the worker decodes it in draft mode
        return None
    return EncodedJPEG(data, height, width, name)


def decode_resize(source: str | bytes | Image.Image, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Worker step: image (path, bytes or PIL) -> ((3, size, size) uint8, (2,) original h, w).

    JPEG decoding uses PIL's draft mode: the decoder itself scales by 1/2..1/8
    while staying at least `size`, which makes large photographs cheap.
    """
    if isinstance(source, Image.Image):
        width, height = source.size
        image = to_rgb(source).resize((size, size), Image.BILINEAR)
    else:
        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as opened:
            width, height = opened.size
            if opened.format == "JPEG":
                opened.draft("RGB", (size, size))
            image = to_rgb(opened).resize((size, size), Image.BILINEAR)
    # CHW from PIL's channel planes: torch's HWC->CHW copy of uint8 takes ~10 ms at 448 px, this 0.2.
    pixels = torch.from_numpy(np.stack([np.asarray(plane) for plane in image.split()]))
    return pixels, torch.tensor([height, width], dtype=torch.int32)
