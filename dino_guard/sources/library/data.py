"""Data: lightly and torchvision data sets, their transform, and the DataLoader."""

from __future__ import annotations

from typing import Any

from dino_guard.sources import lightly_api as api
from dino_guard.sources.interp.callargs import ABSENT, Call, Starred
from dino_guard.sources.interp.values import Obj, opaque
from dino_guard.sources.library.objects import record


def dataset(it, call: Call, transform: Any, inner: Obj | None) -> Obj:
    obj = Obj("dataset", call.pos)
    if transform is not ABSENT:
        node = call.kw_nodes.get("transform")
        if node is None:
            plain = call.arg_nodes[1] if len(call.arg_nodes) > 1 else call.node
            node = plain
        obj.facts["transform"] = (transform, it.pos(node))
    elif inner is not None and "transform" in inner.facts:
        obj.facts["transform"] = inner.facts["transform"]
    elif inner is not None and inner.kind != "dataset":
        obj.facts["transform"] = (opaque(call.pos), call.pos)  # an unknown data set may transform itself
    elif call.star:
        obj.facts["transform"] = (opaque(call.pos), call.pos)
    else:
        obj.facts["transform"] = (None, call.pos)
    return record(it, obj)


def torchvision_dataset(it, name: str, call: Call) -> Any:
    if name not in api.TORCHVISION_TRANSFORM_INDEX:
        return opaque(call.pos)
    index = api.TORCHVISION_TRANSFORM_INDEX[name]
    root = call.arg(0, "root")
    if name == "ImageFolder" and isinstance(root, str):
        node = call.kw_nodes.get("root") or (call.arg_nodes[0] if call.arg_nodes else call.node)
        it.trace.image_folders.append((root, it.pos(node)))
    plain = [a for a in call.args if not isinstance(a, Starred)]
    if "transform" in call.kwargs or (index is not None and index < len(plain)):
        return dataset(it, call, call.arg(index, "transform"), None)
    return dataset(it, call, ABSENT, None)


def dataloader(it, call: Call) -> Obj:
    obj = Obj("dataloader", call.pos)
    names = ("dataset", "batch_size", "shuffle", "sampler", "batch_sampler", "num_workers", "collate_fn")
    for index, name in enumerate(names):
        value = call.arg(index, name, ABSENT)
        if value is ABSENT:
            continue
        node = call.kw_nodes.get(name) or call.arg_nodes[index]
        obj.facts[name] = (value, it.pos(node))
    if "batch_size" not in obj.facts and not call.star and "batch_sampler" not in obj.facts:
        obj.facts["batch_size"] = (1, call.pos)  # torch's default
    return record(it, obj)


def foreign_dataset(it, call: Call) -> Any:
    """A callable from another module given `transform=<DINOTransform>`: a data set that applies it.

    torchvision's convention (VisionDataset(root, transform=...)) that custom data sets follow:
    `RecursiveImageDataset(root_dir=..., transform=DINOTransform(...))`. Any other keyword
    (`transforms=`, a positional transform) or any other value leaves the call unknown.
    """
    transform = call.kwargs.get("transform")
    if call.star or not (isinstance(transform, Obj) and transform.kind == "transform"):
        return opaque(call.pos)
    return dataset(it, call, transform, None)


UNKNOWN = object()  # what makes a loader's views when the script does not say


def loader_transform(loader: Obj) -> Any:
    """What makes a loader's views: a DINOTransform (or old collate) Obj, None, or UNKNOWN."""
    collate = loader.fact("collate_fn")
    if isinstance(collate, Obj) and collate.kind == "dino_collate":
        return collate
    if ("collate_fn" in loader.facts and collate is not None
            and not (isinstance(collate, Obj) and collate.kind == "multiview_collate")):
        return UNKNOWN  # a custom collate may apply the transform itself
    dataset = loader.fact("dataset")
    if not (isinstance(dataset, Obj) and dataset.kind == "dataset"):
        return UNKNOWN
    return dataset.fact("transform", UNKNOWN)


def view_count(loader: Obj) -> int | None:
    """Views per sample: 2 global + n_local_views, when the transform is known."""
    transform = loader_transform(loader)
    if isinstance(transform, Obj) and transform.kind in ("transform", "dino_collate"):
        n_local = transform.fact("n_local_views")
        if isinstance(n_local, int) and not isinstance(n_local, bool):
            return 2 + n_local
    return None



CROP_CLASSES = tuple(f"torchvision.transforms.{m}RandomResizedCrop" for m in ("", "v2.", "transforms."))
_CROP_SIGNATURE = (("size", None), ("scale", (0.08, 1.0)))  # torchvision's default scale covers the whole image


def random_resized_crop(it, call: Call) -> Obj:
    """torchvision's RandomResizedCrop: its size and scale, for a multi-crop transform written by hand."""
    return record(it, Obj("crop", call.pos, facts=call.bind(it, _CROP_SIGNATURE)))
