"""Rules about the data and its transform (DG1xx)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from dino_guard.findings import Severity
from dino_guard.rules.registry import Issue, rule


@rule("DG101", "missing-transform", Severity.ERROR, needs=("transform",))
def missing_transform(ctx) -> Iterator[Issue]:
    """The data set has no DINO transform.

    What it checks:
        that `transform` is present and not null or `{name: none}`.

    Why it matters:
        without DINOTransform the dataset yields PIL images and a single view;
        the DataLoader fails with `default_collate: batch must contain tensors
        ... found <class 'PIL.Image.Image'>` (lightly issue #1701), or, with a
        plain ToTensor, DINO gets one view and nothing to match.

    Example:
        `transform: null`, or no `transform:` section at all.

    Use instead:
        `transform: {global_crop_size: 224, local_crop_size: 96,
        n_local_views: 6}` (lightly's DINOTransform arguments).

    References:
        lightly issue #1701; lightly.transforms.DINOTransform.
    """
    if ctx.dino_transform is not None:
        return
    yield Issue("transform", "the data set has no DINO transform: the DataLoader will yield PIL images "
                "(`default_collate: ... found <class 'PIL.Image.Image'>`) instead of 2 global + N local views",
                "add `transform: {global_crop_size: 224, local_crop_size: 96, n_local_views: 6}` "
                "(lightly's DINOTransform)",
                fix={"transform": {"global_crop_size": 224, "local_crop_size": 96, "n_local_views": 6}})


def suggested_output_dim(images: int) -> int:
    """A power of two near a quarter of the image count, within [256, 65536].

    DINO's 65536 prototypes were tuned for ImageNet's 1.28 M images; far more
    prototypes than images leaves most of them unused and slows the head.
    """
    if images < 1024:  # never more prototypes than images, or DG102 would fire on its own advice
        return int(min(256, 2 ** math.floor(math.log2(images))))
    return int(min(65536, 2 ** math.floor(math.log2(images / 4))))


@rule("DG102", "output-dim-too-large", Severity.WARNING, needs=("model.head.output_dim", "data"))
def output_dim_too_large(ctx) -> Iterator[Issue]:
    """The head's output_dim (number of prototypes) exceeds the number of images.

    What it checks:
        `model.head.output_dim` against the data set's size, taken from
        `data.dataset_size`, the synthetic set's size, or the image files
        counted under `data.path`.

    Why it matters:
        65536 prototypes were chosen for ImageNet (1.28 M images). On a few
        thousand images most prototypes are never the argmax of any image, the
        65536-wide last layer dominates memory and time, and training is
        slower to leave the uniform plateau.

    Example:
        `head: {output_dim: 65536}` with `data: {dataset_size: 5000}`.

    Use instead:
        `head: {output_dim: 1024}` and the same `loss.output_dim`.

    References:
        Caron et al. 2021 (DINO), appendix on output dimension; lightly issue
        #1274.
    """
    images = ctx.dataset_size
    output_dim = ctx.setup.model.head.output_dim
    if not images or output_dim <= images:
        return
    better = suggested_output_dim(images)
    yield Issue("model.head.output_dim", f"output_dim={output_dim} prototypes for a data set of {images} images: "
                "most prototypes will never be used",
                f"use output_dim: {better} (about a quarter of the image count, a power of two, "
                "at most the image count) in model.head and loss",
                fix={"model.head.output_dim": better, "loss.output_dim": better})


@rule("DG103", "conflicting-data-source", Severity.ERROR, needs=("data",))
def conflicting_data_source(ctx) -> Iterator[Issue]:
    """Both a folder and the built-in synthetic data set are given.

    What it checks:
        that `data.path` and `data.synthetic` are not both set.

    Why it matters:
        only one can be the training set; silently picking one trains on data
        the user did not mean.

    Example:
        `data: {path: /data/imagenet, synthetic: shapes}`.

    Use instead:
        `data: {path: /data/imagenet}` or `data: {synthetic: shapes, size:
        2000}`.

    References:
        docs/reference.md, "The setup file".
    """
    data = ctx.setup.data
    if data.path and data.synthetic:
        yield Issue("data.synthetic", f"data gives both a folder (path: {data.path}) and synthetic: {data.synthetic}",
                    "keep one: `path:` for your images, or `synthetic: shapes` for the built-in set",
                    fix={"data.synthetic": None})
