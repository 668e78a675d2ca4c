"""DINO multi-crop augmentation on the training device (`transform.backend: device`).

The work is split in three so that DataLoader workers stay cheap and the
device does the pixel work batched:

1. workers: `images.decode_resize` opens an image with PIL, converts any
   mode to RGB and resizes it to a fixed square (uint8 CHW, so batches stack
   and pin), keeping its original height and width; with `transform.decode:
   device` they pass RGB and grayscale JPEGs on undecoded and device_aug.jpeg
   decodes and resizes them on the device;
2. host, main process: device_aug.params draws every random number of the batch
   from one torch.Generator;
3. device: `DeviceDINOTransform` cuts all crops of a view group with one
   roi_align call and applies flips, colour jitter (per-row random order),
   grayscale, blur (one grouped convolution), solarization and normalization
   to whole row subsets, with no Python loop over samples.

`pipeline.build_pipeline` plugs these into the trainer's data path;
`pipeline.PrefetchViews` makes the views one batch ahead, on CUDA on a side stream so
that they overlap the training step.

Crop geometry is drawn on the original height/width and scaled into the
resized square, so crop areas and aspect ratios are those of lightly's
DINOTransform on the full image; only the pixel detail is bounded by the
worker's resize (`default_decode_size`: 448 for 224 px global crops).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from dino_guard.trainer.device_aug import ops
from dino_guard.trainer.device_aug.params import GroupParams, ViewRecipe, sample_group

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def default_decode_size(global_crop_size: int) -> int:
    """Side of the worker's square: twice the global crop (448 for 224).

    Crops are cut from this square, so it bounds their detail. With DINO's
    scales the smallest global crop covers sqrt(0.4) = 63% of a side and the
    smallest local crop sqrt(0.05) = 22%: at 2x the global size both are
    still downsampled into the view (283 px -> 224, 100 px -> 96), as lightly's
    crops of a 500x375 photograph are. 8/7 (256) would upsample them and
    measurably soften the views (tests/trainer/test_device_aug.py).
    """
    return 2 * global_crop_size


def view_recipes(transform) -> tuple[list[ViewRecipe], list[ViewRecipe]]:
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
        self.rows = dict(zip(lists, longs.split([len(v) for v in lists.values()]), strict=True))


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
    def from_setup(cls, transform, compile_ops: bool = False) -> DeviceDINOTransform:
        """Build from a setup's `transform` section (dino_guard.schemas.setup.Transform)."""
        return cls(*view_recipes(transform), compile_ops=compile_ops)

    def sample(self, sizes: torch.Tensor, source_size: tuple[int, int],
               generator: torch.Generator | None = None) -> list[GroupParams]:
        """Every random parameter of a batch, on the host. sizes: (B, 2) original h, w."""
        sizes = sizes.cpu()
        return [sample_group(views, sizes[:, 0], sizes[:, 1], source_size, generator) for views in self.groups]

    def forward(self, images: torch.Tensor, sizes: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> list[torch.Tensor]:
        b = images.shape[0]
        return [view for group in self.groups_of(images, sizes, generator) for view in group.split(b)]

    def groups_of(self, images: torch.Tensor, sizes: torch.Tensor | None = None,
                  generator: torch.Generator | None = None) -> list[torch.Tensor]:
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
        return [self.apply_group(src, p, recipes[0]) for recipes, p in zip(self.groups, params, strict=True)]

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
