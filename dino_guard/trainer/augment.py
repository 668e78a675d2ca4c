"""DINO multi-crop augmentation on the training device (`transform.backend: device`).

The work is split in three so that DataLoader workers stay cheap and the
device does the pixel work batched:

1. workers: `decode_resize` opens an image with PIL, converts any mode to RGB
   and resizes it to a fixed square (uint8 CHW, so batches stack and pin),
   keeping its original height and width; with `transform.decode: device`
   they pass RGB and grayscale JPEGs on undecoded and jpeg_device decodes
   and resizes them on the device;
2. host, main process: augment_params draws every random number of the batch
   from one torch.Generator;
3. device: `DeviceDINOTransform` cuts all crops of a view group with one
   roi_align call and applies flips, colour jitter (per-row random order),
   grayscale, blur (one grouped convolution), solarization and normalization
   to whole row subsets, with no Python loop over samples.

`build_pipeline` plugs these into the trainer's data path (data.Pipeline);
`PrefetchViews` makes the views one batch ahead, on CUDA on a side stream so
that they overlap the training step.

Crop geometry is drawn on the original height/width and scaled into the
resized square, so crop areas and aspect ratios are those of lightly's
DINOTransform on the full image; only the pixel detail is bounded by the
worker's resize (`default_decode_size`: 448 for 224 px global crops).
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from dino_guard.trainer import augment_ops as ops
from dino_guard.trainer import jpeg_device
from dino_guard.trainer.augment_params import GroupParams, ViewRecipe, sample_group
from dino_guard.trainer.data import EncodedJPEG

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_INT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def default_decode_size(global_crop_size: int) -> int:
    """Side of the worker's square: twice the global crop (448 for 224).

    Crops are cut from this square, so it bounds their detail. With DINO's
    scales the smallest global crop covers sqrt(0.4) = 63% of a side and the
    smallest local crop sqrt(0.05) = 22%: at 2x the global size both are
    still downsampled into the view (283 px -> 224, 100 px -> 96), as lightly's
    crops of a 500x375 photograph are. 8/7 (256) would upsample them and
    measurably soften the views (tests/trainer/test_augment.py).
    """
    return 2 * global_crop_size


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB: 16/32-bit integer scaled down (PIL would clip at 255), alpha dropped."""
    if image.mode in _INT_MODES:
        arr = np.asarray(image, dtype=np.float64)
        # 16-bit files open as I;16 or as I (PNG); an I image within 0..255 is 8-bit data.
        top = 255.0 if image.mode == "I" and arr.max(initial=0) <= 255 else 65535.0
        image = Image.fromarray(np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # palette transparency -> alpha, which RGB then drops
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_resize(source: Union[str, bytes, Image.Image], size: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Worker step: image (path, bytes or PIL) -> ((3, size, size) uint8, (2,) original h, w).

    JPEG decoding uses PIL's draft mode: the decoder itself scales by 1/2..1/8
    while staying at least `size`, which makes large photographs cheap.
    """
    image = source if isinstance(source, Image.Image) else Image.open(
        io.BytesIO(source) if isinstance(source, bytes) else source)
    width, height = image.size
    if image.format == "JPEG":
        image.draft("RGB", (size, size))
    image = to_rgb(image).resize((size, size), Image.BILINEAR)
    # CHW from PIL's channel planes: torch's HWC->CHW copy of uint8 takes ~10 ms at 448 px, this 0.2.
    pixels = torch.from_numpy(np.stack([np.asarray(plane) for plane in image.split()]))
    return pixels, torch.tensor([height, width], dtype=torch.int32)


def view_recipes(transform) -> Tuple[List[ViewRecipe], List[ViewRecipe]]:
    """A setup's `transform` section -> (2 global recipes, n_local local recipes), as lightly builds them."""
    t = transform
    common = dict(hf_prob=t.hf_prob, vf_prob=t.vf_prob, rr_prob=t.rr_prob, cj_prob=t.cj_prob,
                  cj_strength=t.cj_strength, cj_bright=t.cj_bright, cj_contrast=t.cj_contrast,
                  cj_sat=t.cj_sat, cj_hue=t.cj_hue, gray_prob=t.random_gray_scale, sigmas=tuple(t.sigmas))
    g0 = ViewRecipe(t.global_crop_size, tuple(t.global_crop_scale), blur_prob=t.gaussian_blur[0], **common)
    # lightly 1.6 does not pass cj_strength to the second global view (it keeps the
    # default 0.5); copied so that backend device draws what backend cpu draws.
    g1 = replace(g0, blur_prob=t.gaussian_blur[1], solarize_prob=t.solarization_prob, cj_strength=0.5)
    local = ViewRecipe(t.local_crop_size, tuple(t.local_crop_scale), blur_prob=t.gaussian_blur[2], **common)
    return [g0, g1], [local] * t.n_local_views


class _Staged:
    """GroupParams on the device: row-index lists and float tables, in two transfers.

    Row subsets (which rows flip, blur, get op o at jitter step k) are index
    lists built on the host, where the masks live, so their lengths are known
    without a device sync; one long and one float transfer carry them all.
    """

    SUBSETS = ("hflip", "vflip", "rot90", "gray", "blur", "solarize")

    def __init__(self, p: GroupParams, device: torch.device):
        lists = {name: getattr(p, name).nonzero().flatten() for name in self.SUBSETS}
        for step in range(4):
            for op in range(4):
                lists[(step, op)] = (p.jitter & (p.order[:, step] == op)).nonzero().flatten()
        n = p.boxes.shape[0]
        floats = torch.cat([p.boxes.flatten(), p.factors.flatten(), p.sigma])
        longs = torch.cat(list(lists.values()))
        floats, longs = _to_device(floats, device), _to_device(longs, device)
        self.boxes, self.factors, self.sigma = floats.split([5 * n, 4 * n, n])
        self.boxes, self.factors = self.boxes.view(n, 5), self.factors.view(n, 4)
        self.rows = dict(zip(lists, longs.split([len(v) for v in lists.values()])))


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cpu":
        return t
    return t.pin_memory().to(device, non_blocking=True)  # pinned: the copy does not block the host


def _on_rows(x: torch.Tensor, rows: torch.Tensor, fn, *args) -> torch.Tensor:
    """Apply fn to the rows listed (index_select / index_copy_: no boolean-mask sync)."""
    if rows.numel():
        x.index_copy_(0, rows, fn(x.index_select(0, rows), *args))
    return x


class DeviceDINOTransform(torch.nn.Module):
    """uint8 (B, 3, S, S) batch on any device -> [2 global (B,3,G,G), n_local (B,3,L,L)] float views.

    Per sample the same recipe as lightly's DINOTransform: RandomResizedCrop,
    flips, RandomApply(ColorJitter) in random op order, RandomGrayscale,
    Gaussian blur (global 1.0 / 0.1, local 0.5 by default), solarization on
    the second global view only, ImageNet normalization.
    """

    def __init__(self, global_views: Sequence[ViewRecipe], local_views: Sequence[ViewRecipe],
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 compile_ops: bool = False):
        super().__init__()
        self.groups = [list(v) for v in (global_views, local_views) if len(v)]
        # Eager, each colour op is 5-25 elementwise passes over its rows; compiled
        # (dynamic row counts), one fused kernel each. Off by default: compiling
        # takes tens of seconds and needs a C++/Triton toolchain.
        self.jitter_ops = tuple(torch.compile(f, dynamic=True) for f in ops.JITTER_OPS) if compile_ops \
            else ops.JITTER_OPS
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    @classmethod
    def from_setup(cls, transform, compile_ops: bool = False) -> "DeviceDINOTransform":
        """Build from a setup's `transform` section (dino_guard.schemas.setup.Transform)."""
        return cls(*view_recipes(transform), compile_ops=compile_ops)

    def sample(self, sizes: torch.Tensor, source_size: Tuple[int, int],
               generator: Optional[torch.Generator] = None) -> List[GroupParams]:
        """Every random parameter of a batch, on the host. sizes: (B, 2) original h, w."""
        sizes = sizes.cpu()
        return [sample_group(views, sizes[:, 0], sizes[:, 1], source_size, generator) for views in self.groups]

    def forward(self, images: torch.Tensor, sizes: Optional[torch.Tensor] = None,
                generator: Optional[torch.Generator] = None) -> List[torch.Tensor]:
        b = images.shape[0]
        return [view for group in self.groups_of(images, sizes, generator) for view in group.split(b)]

    def groups_of(self, images: torch.Tensor, sizes: Optional[torch.Tensor] = None,
                  generator: Optional[torch.Generator] = None) -> List[torch.Tensor]:
        """[global crops (2B, 3, G, G), local crops (n_local*B, 3, L, L)], rows view-major.

        That is the layout the training step feeds the backbone (one forward
        per crop size), so the trainer takes these without a torch.cat.
        """
        b, _, h, w = images.shape
        if sizes is None:  # the batch is at its original resolution
            sizes = torch.tensor([[h, w]]).expand(b, 2)
        params = self.sample(sizes, (h, w), generator)
        if self.mean.device != images.device:
            self.to(images.device)  # once; the constants then live where the images are
        src = images.float().div_(255)
        return [self.apply_group(src, p, recipes[0]) for recipes, p in zip(self.groups, params)]

    def apply_group(self, src: torch.Tensor, p: GroupParams, recipe: ViewRecipe) -> torch.Tensor:
        """Pixel work of one view group (rows view-major), in lightly's op order."""
        d = _Staged(p, src.device)
        x = ops.crop_resize(src, d.boxes, recipe.crop_size)
        _on_rows(x, d.rows["hflip"], torch.flip, (-1,))
        _on_rows(x, d.rows["vflip"], torch.flip, (-2,))
        _on_rows(x, d.rows["rot90"], torch.rot90, 1, (-2, -1))
        for step in range(4):
            for op, fn in enumerate(self.jitter_ops):
                rows = d.rows[(step, op)]
                _on_rows(x, rows, fn, d.factors.index_select(0, rows)[:, op])
        _on_rows(x, d.rows["gray"], lambda t: ops.grayscale(t).expand_as(t))
        radius = ops.blur_radius(recipe.sigmas[1])
        _on_rows(x, d.rows["blur"], ops.gaussian_blur, d.sigma.index_select(0, d.rows["blur"]), radius)
        _on_rows(x, d.rows["solarize"], ops.solarize)
        return x.sub_(self.mean).div_(self.std)


# ---------------------------------------------------------------- the trainer's data pipeline


class WorkerDecode:
    """Dataset transform of backend device (in workers): PIL image -> (uint8 square, original h/w, seed).

    With `decode_on_device` (transform.decode: device) the dataset hands JPEG
    files over undecoded (`takes_encoded`); they leave the worker as their
    bytes (1-D uint8), original h/w, seed and file name.
    """

    def __init__(self, size: int, decode_on_device: bool = False):
        self.size, self.takes_encoded = size, decode_on_device

    def __call__(self, image: Union[Image.Image, EncodedJPEG]) -> tuple:
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
    _, sizes, seeds = zip(*(f[:3] for f in firsts))
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

    def __init__(self, transform: DeviceDINOTransform, size: Optional[int] = None):
        self.transform = transform
        self.size = size or default_decode_size(transform.groups[0][0].crop_size)

    def __call__(self, batch: dict, device: torch.device) -> tuple:
        images, sizes = self.squares(batch, device)
        generator = torch.Generator().manual_seed(batch["seed"])
        groups = self.transform.groups_of(images, sizes, generator)
        return groups[0], (groups[1] if len(groups) > 1 else None)

    def squares(self, batch: dict, device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
        """(B, 3, S, S) uint8 on the device and (B, 2) original h, w."""
        if "jpegs" in batch:  # decode: device; may replace undecodable rows and report them in batch["bad"]
            return jpeg_device.batch_squares(batch, self.size, device)
        return batch["images"].to(device, non_blocking=True), batch["sizes"]  # pinned by the DataLoader on CUDA


def build_pipeline(setup):
    """`transform.backend: device`: workers decode and resize (or pass JPEGs on), the device makes the views."""
    from dino_guard.trainer.data import Pipeline

    t = setup.transform
    size = default_decode_size(t.global_crop_size)
    return Pipeline(WorkerDecode(size, decode_on_device=t.decode == "device"), collate_images,
                    DeviceViews(DeviceDINOTransform.from_setup(t), size))


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
