"""CPU images/s of DINO augmentation: lightly's DINOTransform vs dino-guard's device path vs kornia.

Run from the repository root (results in RESULTS.md):

    .venv/bin/python bench/augment/bench_cpu.py --workers 2 --batch 32 --images 256 --rounds 3

Three pipelines, each a DataLoader over the same in-memory 500x375 JPEGs
with the same number of workers, interleaved round by round (the machine is
shared, so load drifts):
- lightly: workers decode (PIL) and run DINOTransform (2x224 + 6x96);
- device: workers decode and resize to 448 (decode_resize, uint8), the main
  process runs DeviceDINOTransform on the batch (here on the CPU);
- kornia: the same workers, the main process runs kornia 0.9's
  per-sample augmentation with DINO's view recipe.
Then the augmentation alone (no loader) on one uint8 batch.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from gpu_augment import photo_jpegs  # noqa: E402

from dino_guard.schemas.setup import Transform  # noqa: E402
from dino_guard.trainer.device_aug.transform import DeviceDINOTransform  # noqa: E402
from dino_guard.trainer.pipeline import DeviceViews, WorkerDecode, collate_images, collate_views  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Jpegs(torch.utils.data.Dataset):
    def __init__(self, blobs, transform):
        self.blobs, self.transform = blobs, transform

    def __len__(self):
        return len(self.blobs)

    def __getitem__(self, i):
        return self.transform(Image.open(io.BytesIO(self.blobs[i])).convert("RGB")), 0, ""


def kornia_views():
    """kornia per-sample pipeline, DINO's recipe: one AugmentationSequential per view type."""
    import kornia.augmentation as K

    def view(size, scale, blur, solarize):
        return K.AugmentationSequential(
            K.RandomResizedCrop((size, size), scale=scale, resample="BICUBIC"),
            K.RandomHorizontalFlip(),
            K.ColorJitter(0.4, 0.4, 0.2, 0.1, p=0.8),
            K.RandomGrayscale(p=0.2),
            K.RandomGaussianBlur((13, 13), (0.1, 2.0), p=blur),
            K.RandomSolarize(0.0, 0.0, p=solarize),
            K.Normalize(torch.tensor(MEAN), torch.tensor(STD)))

    g0, g1, loc = view(224, (0.4, 1.0), 1.0, 0.0), view(224, (0.4, 1.0), 0.1, 0.2), view(96, (0.05, 0.4), 0.5, 0.0)

    def run(batch, device):
        x = batch["images"].to(device).float().div_(255)
        return torch.cat([g0(x), g1(x)]), torch.cat([loc(x) for _ in range(6)])

    return run


def loader_rate(dataset, collate, views, workers: int, batch: int) -> float:
    """images/s over all batches but the first (worker start-up excluded)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=collate,
                                         drop_last=True, prefetch_factor=2 if workers else None)
    count, t0 = 0, None
    for b in loader:
        out = views(b, torch.device("cpu"))
        assert out[0].shape[-1] == 224
        if t0 is None:
            t0 = time.perf_counter()
        else:
            count += batch
    return count / (time.perf_counter() - t0)


def augment_only_ms(batch: int, source: int, repeats: int = 3) -> dict:
    x = torch.randint(0, 256, (batch, 3, source, source), dtype=torch.uint8)
    b = {"images": x, "sizes": torch.tensor([[375, 500]]).expand(batch, 2), "seed": 0}
    dev, kor = DeviceViews(DeviceDINOTransform.from_setup(Transform())), kornia_views()
    out = {}
    for name, fn in (("device", dev), ("kornia", kor)):
        fn(b, torch.device("cpu"))
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn(b, torch.device("cpu"))
            times.append(time.perf_counter() - t0)
        out[name] = round(statistics.median(times) * 1e3, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads of the main process; "
                         ">1 on a busy machine makes OpenMP spin-wait (8x slower here)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from lightly.transforms import DINOTransform

    blobs = photo_jpegs(args.images)
    pipelines = {
        "lightly": (Jpegs(blobs, DINOTransform()), collate_views,
                    lambda b, d: (torch.cat(b["views"][:2]), torch.cat(b["views"][2:]))),
        "device": (Jpegs(blobs, WorkerDecode(448)), collate_images,
                   DeviceViews(DeviceDINOTransform.from_setup(Transform()))),
        "kornia": (Jpegs(blobs, WorkerDecode(448)), collate_images, kornia_views()),
    }
    rates = {name: [] for name in pipelines}
    for _ in range(args.rounds):
        for name, (ds, collate, views) in pipelines.items():
            rates[name].append(round(loader_rate(ds, collate, views, args.workers, args.batch), 1))
    result = {"workers": args.workers, "batch": args.batch, "torch_threads": torch.get_num_threads(),
              "images_per_s_median": {k: statistics.median(v) for k, v in rates.items()},
              "images_per_s_rounds": rates,
              "augment_only_ms_per_batch_448_source": augment_only_ms(args.batch, 448)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
