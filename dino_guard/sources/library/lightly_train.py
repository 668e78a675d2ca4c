"""LightlyTrain: `lightly_train.train(method="dino", model="timm/...", transform_args=..., epochs=...)`.

Only what LightlyTrain's documentation fixes is read: the model name
(`timm/<name>`, `torchvision/<name>`), the epochs, the crop sizes and number
of local views given in transform_args, and the per-device batch when
`devices` is a number (LightlyTrain's batch_size is global). Anything not
written stays unknown: LightlyTrain's own defaults are not lightly's.
"""

from __future__ import annotations

from typing import Any

from dino_guard.sources.interp.callargs import Call
from dino_guard.sources.interp.values import DictVal, Obj, opaque
from dino_guard.sources.library.models import backbone_obj
from dino_guard.sources.library.objects import record

TRAIN_FUNCTIONS = ("lightly_train.train", "lightly_train.pretrain")
_TIMM = "timm/"


def train(it, call: Call) -> Any:
    if call.star or call.kwargs.get("method") != "dino":
        return opaque(call.pos)
    _model(it, call)
    transform = _transform(it, call)
    _batch(it, call, transform)
    epochs = call.kwargs.get("epochs")
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
        it.trace.epochs.append((epochs, it.pos(call.kw_nodes["epochs"])))
    return None


def _model(it, call: Call) -> None:
    model = call.kwargs.get("model")
    if not isinstance(model, str):
        return
    name = model[len(_TIMM):] if model.startswith(_TIMM) else model  # torchvision/<name> is dino-guard's spelling too
    record(it, backbone_obj(call.pos, name, it.pos(call.kw_nodes["model"])))


def _transform(it, call: Call) -> Obj | None:
    args = call.kwargs.get("transform_args")
    if not isinstance(args, DictVal):
        return None
    pos = it.pos(call.kw_nodes["transform_args"])
    facts = {}
    size = _square(args.items.get("image_size"))
    if size is not None:
        facts["global_crop_size"] = (size, pos)
    local = args.items.get("local_view")
    if isinstance(local, DictVal):
        view = _square(local.items.get("view_size"))
        if view is not None:
            facts["local_crop_size"] = (view, pos)
        views = local.items.get("num_views")
        if isinstance(views, int) and not isinstance(views, bool):
            facts["n_local_views"] = (views, pos)
    return record(it, Obj("transform", pos, facts=facts))


def _batch(it, call: Call, transform: Obj | None) -> None:
    """LightlyTrain's batch_size is global: per device it is batch_size / (devices * num_nodes),
    known only when the call gives devices as a number."""
    batch, devices, nodes = (call.kwargs.get(k, d)
                             for k, d in (("batch_size", None), ("devices", None), ("num_nodes", 1)))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (batch, devices, nodes)):
        return
    if batch % (devices * nodes):
        return
    pos = it.pos(call.kw_nodes["batch_size"])
    record(it, Obj("trainer", call.pos, facts={"devices": (devices, it.pos(call.kw_nodes["devices"])),
                                                "num_nodes": (nodes, pos)}))
    dataset = Obj("dataset", pos, facts={"transform": (transform if transform is not None else opaque(pos), pos)})
    loader = record(it, Obj("dataloader", pos, facts={"batch_size": (batch // (devices * nodes), pos),
                                                      "dataset": (dataset, pos)}))
    it.trace.train_loaders.append(loader)  # what LightlyTrain feeds per device


def _square(value: Any):
    """224 or (224, 224) -> 224; a non-square size is not a DINOTransform crop size."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1] and isinstance(value[0], int):
        return value[0]
    return None
