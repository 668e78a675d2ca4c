"""What to train on: sources (a folder, the synthetic set), the dataset, the sampler, the splits.

`ImageDataset[(epoch, index)]` loads one image (images.py) and applies the
pipeline's per-image transform (pipeline.py); its random numbers are seeded
from (seed, epoch, index), so a resumed run sees exactly the same crops.
`EpochSampler` shards and orders them; `split_indices` holds out the kNN
queries the run plan asks for.

Bad files never crash an epoch: an unreadable image is replaced by the
next readable one, counted, and reported once.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dino_guard.datafiles import IMAGE_SUFFIXES  # one list of image suffixes for check and train
from dino_guard.trainer.images import JPEG_START, READ_ERRORS, DataError, EncodedJPEG, encoded_jpeg, open_rgb
from dino_guard.trainer.synthetic import CLASSES, shape_image

# ---------------------------------------------------------------- sources


@dataclass
class Source:
    """What to load: a list of items (paths or synthetic indices) and labels."""

    items: list
    labels: list | None  # None: unlabeled (no kNN)
    class_names: list = field(default_factory=list)
    ignored: int = 0  # files skipped by suffix (not images)
    description: str = ""

    def load(self, i: int) -> Image.Image:
        item = self.items[i]
        if isinstance(item, int):
            return shape_image(item)[0]
        return open_rgb(item)

    def load_path(self, i: int) -> str | Image.Image:
        """A file's path, undecoded: the worker's transform decodes it at the size it needs
        (PIL's JPEG draft mode; `transform.backend: device`). Synthetic images come as images."""
        item = self.items[i]
        return shape_image(item)[0] if isinstance(item, int) else item

    def load_raw(self, i: int) -> EncodedJPEG | str | Image.Image:
        """An 8-bit RGB or grayscale JPEG file as its bytes (`transform.decode: device`), else as load_path."""
        item = self.items[i]
        if isinstance(item, int):
            return shape_image(item)[0]
        with open(item, "rb") as f:
            head = f.read(len(JPEG_START))
            raw = encoded_jpeg(head + f.read(), item) if head == JPEG_START else None
        return raw or item  # other files: the worker decodes them by path


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

    What the transform gets: a decoded RGB image (Source.load), or with
    `takes_path = True` the file's path (Source.load_path: it decodes at the
    size it needs), or with `takes_encoded = True` a JPEG's bytes
    (Source.load_raw: decoded later on the device). Reading and transforming
    happen together, so a file that fails in either is replaced.
    """

    def __init__(self, source: Source, indices: list, transform: Callable, seed: int):
        self.source, self.indices, self.transform, self.seed = source, indices, transform, seed
        if getattr(transform, "takes_encoded", False):
            self.load = source.load_raw
        elif getattr(transform, "takes_path", False):
            self.load = source.load_path
        else:
            self.load = source.load

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, key: tuple):
        epoch, i = key
        bad = ""
        for attempt in range(len(self.indices)):
            j = self.indices[(i + attempt) % len(self.indices)]
            try:
                with seeded(hash((self.seed, epoch, i)) % 2**62):
                    sample = self.transform(self.load(j))
                break
            except READ_ERRORS as exc:
                bad = bad or f"{self.source.items[j]}: {type(exc).__name__}: {exc}"
        else:
            raise DataError(f"none of the {len(self.indices)} training images could be read (first: {bad})")
        label = self.source.labels[j] if self.source.labels else -1
        return sample, label, bad


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
