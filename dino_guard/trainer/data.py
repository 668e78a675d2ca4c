"""The data path: images -> (Dataset) -> (collate) -> batch -> (views) -> crops.

Three replaceable steps, so augmentation can run in DataLoader workers
(`transform.backend: cpu`, lightly's DINOTransform) or on the device
(`transform.backend: device`, dino_guard.trainer.augment):

1. `ImageDataset[(epoch, index)]` loads one image as RGB and applies the
   per-image transform; its random numbers are seeded from (seed, epoch,
   index), so a resumed run sees exactly the same crops.
2. `collate` stacks samples into a batch.
3. `views_from_batch` turns a batch on the device into the global crops
   (one tensor) and the local crops (one tensor).

Bad files never crash an epoch: an unreadable image is replaced by the
next readable one, counted, and reported once.
"""

from __future__ import annotations

import contextlib
import io
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from dino_guard.datafiles import IMAGE_SUFFIXES  # one list of image suffixes for check and train
from dino_guard.trainer.synthetic import CLASSES, shape_image


class DataError(Exception):
    """Data that cannot be trained on; the message names the path and the fix."""


# ---------------------------------------------------------------- sources


@dataclass
class Source:
    """What to load: a list of items (paths or synthetic indices) and labels."""

    items: list
    labels: Optional[list]  # None: unlabeled (no kNN)
    class_names: list = field(default_factory=list)
    ignored: int = 0  # files skipped by suffix (not images)
    description: str = ""

    def load(self, i: int) -> Image.Image:
        item = self.items[i]
        if isinstance(item, int):
            return shape_image(item)[0]
        return open_rgb(item)

    def load_raw(self, i: int) -> Union["EncodedJPEG", Image.Image]:
        """Like load, but an 8-bit RGB or grayscale JPEG file comes back undecoded (`transform.decode: device`)."""
        item = self.items[i]
        if isinstance(item, int):
            return shape_image(item)[0]
        with open(item, "rb") as f:
            head = f.read(len(JPEG_START))
            raw = encoded_jpeg(head + f.read(), item) if head == JPEG_START else None
        return raw or open_rgb(item)  # by path: PIL's errors then name the file


JPEG_START, JPEG_END = b"\xff\xd8\xff", b"\xff\xd9"  # start-of-image + a marker; end-of-image


@dataclass
class EncodedJPEG:
    """A JPEG file's bytes with the size its header states; decoded later, batched, on the device."""

    data: bytes
    height: int
    width: int
    name: str  # the file, for the bad-file report if the device cannot decode it


def encoded_jpeg(data: bytes, name: str) -> Optional[EncodedJPEG]:
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
    return EncodedJPEG(data, height, width, name)


def find_source(data, field: str = "data.path") -> Source:
    """The setup's `data` section (or eval.path as one) -> Source; a clear DataError before training."""
    if data.synthetic == "shapes":
        n = data.size
        return Source(list(range(n)), [i % len(CLASSES) for i in range(n)], list(CLASSES), 0,
                      f"built-in shapes data set, {n} images, {len(CLASSES)} classes")
    if not data.path:
        raise DataError("data: give `path:` (a folder of images) or `synthetic: shapes`")
    root = Path(data.path).expanduser()
    if not root.exists():
        raise DataError(f"{field}: {root} does not exist; fix the path or use `data: {{synthetic: shapes}}`")
    if not root.is_dir():
        raise DataError(f"{field}: {root} is a file, not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if not images:
        raise DataError(f"{field}: {root} holds no images ({len(files)} other files); "
                        f"expected {', '.join(sorted(IMAGE_SUFFIXES))} files, in class subfolders for kNN")
    classes = sorted({p.parent.relative_to(root).parts[0] for p in images if p.parent != root})
    labels = None
    if classes and all(p.parent != root for p in images):
        index = {c: i for i, c in enumerate(classes)}
        labels = [index[p.relative_to(root).parts[0]] for p in images]
    what = f"{len(images)} images in {root}" + (f", {len(classes)} classes" if labels else ", unlabeled")
    return Source([str(p) for p in images], labels, classes if labels else [], len(files) - len(images), what)


def open_rgb(path) -> Image.Image:
    """Open any image PIL reads as 8-bit RGB (grayscale, RGBA, 16-bit, CMYK, palette)."""
    with Image.open(path) as img:
        img.load()
        if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            arr = np.asarray(img, dtype=np.float64)
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
            img = Image.fromarray(arr.astype(np.uint8), "L")
        if img.mode in ("P", "LA", "PA"):
            img = img.convert("RGBA")
        if img.mode == "RGBA":
            base = Image.new("RGB", img.size, (0, 0, 0))
            base.paste(img, mask=img.getchannel("A"))
            return base
        return img.convert("RGB")


READ_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)


# ---------------------------------------------------------------- dataset


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch, numpy and random for one sample, then restore all three."""
    py, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed % 2**32)
        try:
            yield
        finally:
            random.setstate(py)
            np.random.set_state(np_state)


class ImageDataset(torch.utils.data.Dataset):
    """Indexed by (epoch, i); returns (transformed image, label, bad_path or "").

    A transform with `takes_encoded = True` gets JPEG files undecoded
    (Source.load_raw): it passes their bytes on to be decoded on the device.
    """

    def __init__(self, source: Source, indices: list, transform: Callable, seed: int):
        self.source, self.indices, self.transform, self.seed = source, indices, transform, seed
        self.load = source.load_raw if getattr(transform, "takes_encoded", False) else source.load

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: tuple):
        epoch, i = key
        bad = ""
        for attempt in range(len(self.indices)):
            j = self.indices[(i + attempt) % len(self.indices)]
            try:
                img = self.load(j)
                break
            except READ_ERRORS as exc:
                bad = bad or f"{self.source.items[j]}: {type(exc).__name__}: {exc}"
        else:
            raise DataError("no image in the data set could be read")
        label = self.source.labels[j] if self.source.labels else -1
        with seeded(hash((self.seed, epoch, i)) % 2**62):
            return self.transform(img), label, bad


class EpochSampler(torch.utils.data.Sampler):
    """(epoch, index) pairs: a seeded permutation per epoch, sharded across
    ranks the way DistributedSampler does (rank::world), the incomplete last
    global batch dropped, starting at `start_batch` of `epoch` (for an exact
    resume) and running on through `epochs` epochs.

    One sampler for the whole run keeps one DataLoader and its workers alive
    across epochs (restarting 15 workers at every epoch halved the images/s of
    a 4,096-image run on an H100). `group` (the accumulation steps) rounds
    each epoch down to whole optimizer steps, so no micro-batch straddles two.
    """

    def __init__(self, n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1,
                 start_batch: int = 0, epochs: int = 1, group: int = 1):
        self.n, self.b, self.seed, self.epoch = n, batch_size, seed, epoch
        self.rank, self.world, self.start_batch = rank, world, start_batch
        self.epochs, self.group = epochs, group

    def batches_per_epoch(self) -> int:
        return self.n // (self.b * self.world) // self.group * self.group

    def _epoch(self, epoch: int, start_batch: int) -> list:
        g = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        used = perm[: self.batches_per_epoch() * self.b * self.world]
        return [(epoch, i) for i in used[self.rank :: self.world][start_batch * self.b :]]

    def __iter__(self) -> Iterator[tuple]:
        for e in range(self.epoch, self.epoch + self.epochs):
            yield from self._epoch(e, self.start_batch if e == self.epoch else 0)

    def __len__(self) -> int:
        return (self.batches_per_epoch() * self.epochs - self.start_batch) * self.b


def split_indices(source: Source, held_out: int, seed: int = 0) -> tuple[list, list]:
    """Train indices and `held_out` seeded random kNN query indices (the run plan says how many)."""
    n = len(source.items)
    if not held_out:
        return list(range(n)), []
    g = torch.Generator().manual_seed(1234 + seed)
    perm = torch.randperm(n, generator=g).tolist()
    return sorted(perm[held_out:]), sorted(perm[:held_out])


# ---------------------------------------------------------------- collate and views


def collate_views(samples: list) -> dict:
    """[(list of view tensors, label, bad)] -> {"views": [B,C,H,W] per view, "labels", "bad"}."""
    views = [torch.stack(v) for v in zip(*(s[0] for s in samples))]
    labels = torch.tensor([s[1] for s in samples])
    return {"views": views, "labels": labels, "bad": [s[2] for s in samples if s[2]]}


def views_from_batch(batch: dict, device: torch.device, n_global: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """The global crops as one tensor and the local crops as one tensor, on the device."""
    views = [v.to(device, non_blocking=True) for v in batch["views"]]
    global_crops = torch.cat(views[:n_global])
    local_crops = torch.cat(views[n_global:]) if len(views) > n_global else None
    return global_crops, local_crops


@dataclass
class Pipeline:
    """The three replaceable steps of the data path."""

    transform: Callable  # PIL image -> sample (in workers)
    collate: Callable
    views: Callable  # (batch, device) -> (global crops, local crops)


def build_pipeline(setup) -> Pipeline:
    t = setup.transform
    if t.backend == "device":
        try:
            from dino_guard.trainer import augment  # issue 6
        except ImportError:
            raise DataError("transform.backend: device is not available in this version; use backend: cpu") from None
        return augment.build_pipeline(setup)
    from lightly.transforms import DINOTransform

    transform = DINOTransform(
        global_crop_size=t.global_crop_size, global_crop_scale=tuple(t.global_crop_scale),
        local_crop_size=t.local_crop_size, local_crop_scale=tuple(t.local_crop_scale),
        n_local_views=t.n_local_views, hf_prob=t.hf_prob, vf_prob=t.vf_prob, rr_prob=t.rr_prob,
        cj_prob=t.cj_prob, cj_strength=t.cj_strength, cj_bright=t.cj_bright, cj_contrast=t.cj_contrast,
        cj_sat=t.cj_sat, cj_hue=t.cj_hue, random_gray_scale=t.random_gray_scale,
        gaussian_blur=tuple(t.gaussian_blur), sigmas=tuple(t.sigmas), solarization_prob=t.solarization_prob)
    return Pipeline(transform, collate_views, views_from_batch)


def eval_transform(size: int) -> Callable:
    """Resize + center crop + ImageNet normalization, for kNN features."""
    import torchvision.transforms as T

    return T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(),
                      T.Normalize(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))])
