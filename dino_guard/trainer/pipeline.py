"""From dataset samples to the crops a step trains on: the two augmentation backends and the prefetcher.

Three replaceable steps (`Pipeline`), so augmentation can run in DataLoader
workers or on the training device:

1. `transform`: per image, in the workers. backend cpu: lightly's
   DINOTransform; backend device: `WorkerDecode` (decode and resize to a
   square, or pass a JPEG's bytes on with `transform.decode: device`).
2. `collate`: samples -> batch.
3. `views(batch, device)` -> (global crops, local crops) on the device.
   backend device: `DeviceViews`, the batched transform of device_aug.

`PrefetchViews` makes the views one batch ahead (on CUDA on a side stream).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from PIL import Image

from dino_guard.trainer.device_aug import jpeg as jpeg_device
from dino_guard.trainer.device_aug.transform import DeviceDINOTransform, default_decode_size
from dino_guard.trainer.images import EncodedJPEG, decode_resize


def collate_views(samples: list) -> dict:
    """[(list of view tensors, label, bad)] -> {"views": [B,C,H,W] per view, "labels", "bad"}."""
    views = [torch.stack(v) for v in zip(*(s[0] for s in samples), strict=True)]
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
    """The setup's backend: cpu (lightly's DINOTransform in the workers) or device."""
    t = setup.transform
    if t.backend == "device":
        size = default_decode_size(t.global_crop_size)
        return Pipeline(WorkerDecode(size, decode_on_device=t.decode == "device"), collate_images,
                        DeviceViews(DeviceDINOTransform.from_setup(t), size))
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


# ---------------------------------------------------------------- backend device


class WorkerDecode:
    """Dataset transform of backend device (in workers): file path or PIL image -> (uint8 square, original h/w, seed).

    Files arrive as paths (`takes_path`), so a large JPEG is decoded at the
    square's size by PIL's draft mode, not in full and then shrunk.

    With `decode_on_device` (transform.decode: device) the dataset hands JPEG
    files over undecoded (`takes_encoded`); they leave the worker as their
    bytes (1-D uint8), original h/w, seed and file name.
    """

    takes_path = True  # files come as paths: decode_resize opens them in JPEG draft mode (issue 12)

    def __init__(self, size: int, decode_on_device: bool = False):
        self.size, self.takes_encoded = size, decode_on_device

    def __call__(self, image: str | Image.Image | EncodedJPEG) -> tuple:
        # Drawn under the data set's per-sample seed (seed, epoch, index): the batch's
        # augmentation generator is seeded from these, so a resumed run sees the same crops.
        seed = int(torch.randint(0, 2**62, ()))
        if isinstance(image, EncodedJPEG):
            data = torch.frombuffer(bytearray(image.data), dtype=torch.uint8)  # bytearray: writable, no warning
            return data, torch.tensor([image.height, image.width], dtype=torch.int32), seed, image.name
        pixels, hw = decode_resize(image, self.size)
        return pixels, hw, seed


def collate_images(samples: list) -> dict:
    """[((pixels, hw, seed), label, bad)] -> {"images" (B,3,S,S) uint8, "sizes", "seed", "labels", "bad"}.

    Samples that are JPEG bytes (1-D; transform.decode: device) are not
    stacked: they go to "jpegs" (a list), their batch rows to "jpeg_rows" and
    their files to "jpeg_names"; "images" then holds only the other rows'
    squares, in batch order (None if there are none).
    """
    firsts = [s[0] for s in samples]
    _, sizes, seeds = zip(*(f[:3] for f in firsts), strict=True)
    batch = {"sizes": torch.stack(sizes), "seed": sum(seeds) % 2**62,
             "labels": torch.tensor([s[1] for s in samples]), "bad": [s[2] for s in samples if s[2]]}
    squares = [f[0] for f in firsts if f[0].dim() == 3]
    batch["images"] = torch.stack(squares) if squares else None
    if len(squares) < len(firsts):
        rows = [i for i, f in enumerate(firsts) if f[0].dim() == 1]
        batch.update(jpegs=[firsts[i][0] for i in rows], jpeg_rows=rows, jpeg_names=[firsts[i][3] for i in rows])
    return batch


class DeviceViews:
    """Pipeline.views of backend device: batch -> (global crops, local crops), made on the device.

    `size` is the workers' square, to which JPEGs decoded on the device are resized.
    """

    def __init__(self, transform: DeviceDINOTransform, size: int | None = None):
        self.transform = transform
        self.size = size or default_decode_size(transform.groups[0][0].crop_size)

    def __call__(self, batch: dict, device: torch.device) -> tuple:
        images, sizes = self.squares(batch, device)
        generator = torch.Generator().manual_seed(batch["seed"])
        groups = self.transform.groups_of(images, sizes, generator)
        return groups[0], (groups[1] if len(groups) > 1 else None)

    def squares(self, batch: dict, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) uint8 on the device and (B, 2) original h, w."""
        if "jpegs" in batch:  # decode: device; may replace undecodable rows and report them in batch["bad"]
            return jpeg_device.batch_squares(batch, self.size, device)
        return batch["images"].to(device, non_blocking=True), batch["sizes"]  # pinned by the DataLoader on CUDA


class PrefetchViews:
    """Iterate (batch, (global crops, local crops)), the views made one batch ahead.

    On CUDA, batch k+1's copy and augmentation are queued on a side stream
    before the caller queues step k, so the GPU runs both at once (the
    augmentation is memory-bound, the step compute-bound). The main stream
    waits on an event for exactly the batch it takes, and the crops are
    marked used on the main stream so the allocator does not hand their
    memory back to the side stream early. On the CPU it is plain iteration.
    Works with any Pipeline.views (backend cpu: only the copy overlaps).
    """

    def __init__(self, batches, views, device: torch.device):
        self.batches, self.views, self.device = iter(batches), views, device
        self.stream = torch.cuda.Stream(device) if device.type == "cuda" else None
        self.ahead = self._launch()

    def _launch(self):
        batch = next(self.batches, None)
        if batch is None:
            return None
        if self.stream is None:
            return batch, self.views(batch, self.device), None
        with torch.cuda.stream(self.stream):
            crops = self.views(batch, self.device)
            done = torch.cuda.Event()
            done.record(self.stream)
        return batch, crops, done

    def __iter__(self):
        return self

    def __next__(self):
        if self.ahead is None:
            raise StopIteration
        batch, crops, done = self.ahead
        if done is not None:
            main = torch.cuda.current_stream(self.device)
            main.wait_event(done)
            for t in crops:
                if t is not None:
                    t.record_stream(main)
        self.ahead = self._launch()  # queued before the caller's step on this batch
        return batch, crops
