"""JPEG decoding on the training device (`transform.decode: device`, with backend device).

DataLoader workers hand over a JPEG's bytes instead of its pixels
(images.encoded_jpeg says which files qualify), so they skip PIL's decode and
resize and the batch crosses shared and pinned memory at ~0.1 MB an image
instead of 0.6 MB. Here, in the main process on the views' side stream, one
batched torchvision.io.decode_jpeg call decodes them on the device; each is
resized to the workers' square with antialiased bilinear (the filter PIL's
resize uses) and put back in batch order among the squares the workers
decoded (PNGs, CMYK JPEGs, synthetic images). On the CPU the same code runs
on torchvision's libjpeg decoder, which is how the tests run it.

Memory stays bounded whatever the photographs' size (issue 15): the JPEGs
are decoded DECODE_CHUNK_PIXELS at a time (dino_guard.memory.spec, which
the estimate and DG601 add as the `decode` part), each chunk resized to
squares before the next is decoded, and a JPEG above DECODE_MAX_PIXELS never
comes here (images.encoded_jpeg leaves it to the worker's draft-mode decode).

A JPEG whose header looked fine but whose data no decoder accepts is
replaced by another image of the same batch and reported in batch["bad"],
as the dataset replaces unreadable files.
"""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_jpeg

from dino_guard.memory.spec import DECODE_CHUNK_PIXELS
from dino_guard.trainer.images import DataError


def batch_squares(batch: dict, size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """A collated batch with "jpegs" -> ((B, 3, size, size) uint8 on the device, (B, 2) original h, w).

    Rows whose JPEG could not be decoded hold a copy of the next decodable
    row (and its h, w); their files are appended to batch["bad"].
    """
    n, rows = len(batch["sizes"]), batch["jpeg_rows"]
    images = torch.empty((n, 3, size, size), dtype=torch.uint8, device=device)
    worker_rows = sorted(set(range(n)) - set(rows))
    if worker_rows:
        images[worker_rows] = batch["images"].to(device, non_blocking=True)
    failed = []
    for chunk in decode_chunks(rows, batch["sizes"], size):
        decoded = {}
        for k, image in zip(chunk, decode_all([batch["jpegs"][k] for k in chunk], device), strict=True):
            if isinstance(image, Exception):
                failed.append(rows[k])
                batch["bad"].append(f"{batch['jpeg_names'][k]}: {type(image).__name__}: {image}")
            else:
                decoded[rows[k]] = image
        for group in _same_shape(decoded).values():
            images[[row for row, _ in group]] = resize_square(torch.stack([im for _, im in group]), size)
    return images, _replace_failed(images, batch["sizes"], sorted(failed))


def decode_chunks(rows: list[int], sizes: torch.Tensor, size: int) -> list[list[int]]:
    """Positions in `rows` split into chunks of at most DECODE_CHUNK_PIXELS, counting each JPEG
    as its own pixels plus its square (a chunk holds at least one)."""
    chunks, current, pixels = [], [], 0
    for k, row in enumerate(rows):
        h, w = (int(v) for v in sizes[row])
        cost = h * w + size * size
        if current and pixels + cost > DECODE_CHUNK_PIXELS:
            chunks.append(current)
            current, pixels = [], 0
        current.append(k)
        pixels += cost
    return chunks + ([current] if current else [])


def decode_all(jpegs: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | Exception]:
    """JPEG bytes -> (3, h, w) uint8 RGB on the device, or the exception for a file no decoder takes."""
    try:
        return list(decode_jpeg(jpegs, mode=ImageReadMode.RGB, device=device))
    except RuntimeError:  # one bad file fails the whole batched call: find it
        return [_decode_one(data, device) for data in jpegs]


def _decode_one(data: torch.Tensor, device: torch.device) -> torch.Tensor | Exception:
    try:
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)
    except RuntimeError as exc:
        if device.type == "cpu":
            return exc
    try:  # nvJPEG rejects some encodings libjpeg reads: decode those on the host instead of dropping them
        return decode_jpeg(data, mode=ImageReadMode.RGB).to(device)
    except RuntimeError as exc:
        return exc


def resize_square(images: torch.Tensor, size: int) -> torch.Tensor:
    """(k, 3, h, w) uint8 -> (k, 3, size, size) uint8, antialiased bilinear as PIL's resize in the workers."""
    x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8)


def _same_shape(decoded: dict) -> dict:
    """{row: image} -> {shape: [(row, image)]}: photos often share a size, resized in one call each."""
    groups = defaultdict(list)
    for row, image in decoded.items():
        groups[tuple(image.shape)].append((row, image))
    return groups


def _replace_failed(images: torch.Tensor, sizes: torch.Tensor, failed: list[int]) -> torch.Tensor:
    """Fill each failed row with the next good row of the batch (cyclically), in place; the matching sizes."""
    if not failed:
        return sizes
    n = len(sizes)
    good = sorted(set(range(n)) - set(failed))
    if not good:
        raise DataError(f"no image of a batch of {n} could be decoded (see the files reported as skipped)")
    sizes = sizes.clone()
    for row in failed:
        donor = min(good, key=lambda i: (i - row) % n)  # deterministic: a resumed run sees the same crops
        images[row], sizes[row] = images[donor], sizes[donor]
    return sizes
