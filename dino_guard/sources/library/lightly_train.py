"""LightlyTrain: `lightly_train.train(method="dino", model="timm/...", transform_args=..., epochs=...)`.

Only what LightlyTrain's documentation fixes is read: the model name
(`timm/<name>`, `torchvision/<name>`), the epochs, and the crop sizes and
number of local views given in transform_args. Anything not written stays
unknown: LightlyTrain's own defaults are not lightly's.
"""

from __future__ import annotations

from typing import Any

from dino_guard.sources.interp.callargs import Call
from dino_guard.sources.library.objects import record
from dino_guard.sources.library.models import backbone_obj
from dino_guard.sources.interp.values import DictVal, Obj, opaque

TRAIN_FUNCTIONS = ("lightly_train.train", "lightly_train.pretrain")
_TIMM = "timm/"


def train(it, call: Call) -> Any:
    if call.star or call.kwargs.get("method") != "dino":
        return opaque(call.pos)
    _model(it, call)
    _transform(it, call)
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


def _transform(it, call: Call) -> None:
    args = call.kwargs.get("transform_args")
    if not isinstance(args, DictVal):
        return
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
    record(it, Obj("transform", pos, facts=facts))


def _square(value: Any):
    """224 or (224, 224) -> 224; a non-square size is not a DINOTransform crop size."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1] and isinstance(value[0], int):
        return value[0]
    return None
