"""Images/s of one DataLoader worker of `transform.backend: device` on a folder of real-size JPEGs.

Run from the repository root (results in RESULTS.md, "Worker JPEG path"):

    .venv/bin/python bench/augment/worker_jpeg.py --images 24 --size 4032x3024 --rounds 3

It writes photo-like JPEGs (smooth colour noise plus texture, quality 90)
of a phone camera's size into a temporary folder, then reads them through
the trainer's own ImageDataset + WorkerDecode in this one process (what one
worker does per image: open, decode, resize to the 448 px square), twice
per round, interleaved (the machine is shared):
- path: the dataset hands the worker the file's path, so PIL's draft mode
  lets the JPEG decoder scale by 1/2..1/8 while decoding;
- decoded: the dataset hands over a fully decoded image (Source.load), as
  before issue 12: the whole 12 MP image is decoded, then resized.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dino_guard.schemas.setup import Data  # noqa: E402
from dino_guard.trainer.dataset import ImageDataset, find_source  # noqa: E402
from dino_guard.trainer.pipeline import WorkerDecode  # noqa: E402


def write_photos(folder: Path, n: int, width: int, height: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        low = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
        img = np.asarray(Image.fromarray(low).resize((width, height), Image.BICUBIC), dtype=np.int16)
        arr = np.clip(img + rng.integers(-20, 21, (height, width, 3), dtype=np.int16), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i:03d}.jpg", quality=90)


class FullyDecoded(WorkerDecode):
    """The worker transform as it was fed before: a decoded PIL image (no path, so no draft mode)."""

    takes_path = False


def images_per_s(dataset: ImageDataset) -> float:
    start = time.perf_counter()
    for i in range(len(dataset)):
        dataset[(0, i)]
    return len(dataset) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", default="4032x3024", help="WIDTHxHEIGHT of the JPEGs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--square", type=int, default=448, help="the workers' square (2 x a 224 global crop)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        write_photos(Path(tmp), args.images, width, height)
        source = find_source(Data(path=tmp))
        idx = list(range(len(source.items)))
        runs = {"path": ImageDataset(source, idx, WorkerDecode(args.square), 0),
                "decoded": ImageDataset(source, idx, FullyDecoded(args.square), 0)}
        rates = {name: [] for name in runs}
        for _ in range(args.rounds):
            for name, dataset in runs.items():
                rates[name].append(images_per_s(dataset))
    result = {name: round(statistics.median(r), 2) for name, r in rates.items()}
    result.update(images=args.images, size=args.size, square=args.square, rounds=args.rounds,
                  speedup=round(result["path"] / result["decoded"], 2))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
