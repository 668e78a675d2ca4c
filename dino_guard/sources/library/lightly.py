"""lightly's calls: the DINO head, loss and transform, its data sets, EMA helpers and schedule.

Handlers are keyed by the last name: lightly exports each from several module
paths (`lightly.loss.DINOLoss`, `lightly.loss.dino_loss.DINOLoss`).
"""

from __future__ import annotations

import ast
from typing import Any

from dino_guard.sources import lightly_api as api
from dino_guard.sources.interp.callargs import ABSENT, Call
from dino_guard.sources.interp.values import Obj, opaque
from dino_guard.sources.library import data, lightning, models, training
from dino_guard.sources.library.objects import record
from dino_guard.sources.library.trace import IBOTCall, KoLeoCall, LossCall


def _bound(kind: str, signature: tuple):
    def handler(it, call: Call) -> Obj:
        return record(it, Obj(kind, call.pos, facts=call.bind(it, signature)))
    return handler


def _lightly_dataset(it, call: Call) -> Obj:
    return data.dataset(it, call, call.arg(1, "transform", ABSENT), None)


def _from_torch_dataset(it, call: Call) -> Obj:
    inner = call.arg(0, "dataset")
    return data.dataset(it, call, call.arg(1, "transform", ABSENT), inner if isinstance(inner, Obj) else None)


def _masked_vit(it, call: Call) -> Any:
    vit = call.arg(0, "vit")
    return models.copy_backbone(vit, call.pos) if models.is_backbone(vit) else opaque(call.pos)


def _dinov2_head(it, call: Call) -> Obj:
    """DINOv2ProjectionHead: a head like DINO's (the same width rules), without a last-layer freeze argument."""
    return record(it, Obj("head", call.pos, facts={**call.bind(it, api.DINOV2_HEAD), "dinov2": (True, call.pos)}))


def _deactivate_requires_grad(it, call: Call) -> None:
    it.library.freeze(it, [a for a in [call.arg(0, "model")] if isinstance(a, Obj)])


def _optimizer(it, call: Call) -> Obj:
    return training.optimizer(it, call, None)


# last name of a lightly callable -> handler(it, call)
BY_LAST_NAME = {
    "DINOProjectionHead": _bound("head", api.DINO_HEAD),
    "DINOLoss": _bound("loss", api.DINO_LOSS),
    "DINOv2ProjectionHead": _dinov2_head,
    "IBOTPatchLoss": _bound("ibot_loss", api.IBOT_LOSS),
    "KoLeoLoss": _bound("koleo_loss", api.KOLEO_LOSS),
    "linear_warmup_schedule": training.linear_warmup_schedule,
    "DINOTransform": _bound("transform", api.DINO_TRANSFORM),
    "DINOCollateFunction": _bound("dino_collate", api.DINO_COLLATE),
    "LightlyDataset": _lightly_dataset,
    "from_torch_dataset": _from_torch_dataset,
    "MaskedVisionTransformerTIMM": _masked_vit,
    "MaskedVisionTransformerTorchvision": _masked_vit,
    "deactivate_requires_grad": _deactivate_requires_grad,
    "update_momentum": training.update_momentum,
    "cosine_schedule": training.cosine_schedule,
    "MultiViewCollate": lambda it, call: Obj("multiview_collate", call.pos),
    "LARS": _optimizer,
}


def call(it, qual: str, call_: Call) -> Any:
    handler = BY_LAST_NAME.get(qual.rsplit(".", 1)[-1])
    return handler(it, call_) if handler is not None else opaque(call_.pos)


def loss_forward(it, loss: Obj, call_: Call) -> Obj:
    """DINOLoss(teacher_out, student_out, teacher_temp=None, epoch=None): the warmup runs only on epoch=."""
    teacher, student = call_.arg(0, "teacher_out"), call_.arg(1, "student_out")
    epoch = call_.arg(3, "epoch") is not None and call_.arg(2, "teacher_temp") is None
    nodes = [call_.kw_nodes.get("teacher_out"), call_.kw_nodes.get("student_out")]
    for index in (0, 1):
        if nodes[index] is None and index < len(call_.arg_nodes):
            nodes[index] = call_.arg_nodes[index]
    texts = tuple(ast.unparse(n) if n is not None else "" for n in nodes)
    positions = tuple(it.pos(n) if n is not None else call_.pos for n in nodes)
    update = LossCall(loss, teacher, student, epoch, call_.pos, texts, it.scope(), lightning.evaluation_method(it),
                      lightning.evaluation_site(it), positions)
    it.trace.loss_calls.append(update)
    it.library.note_teacher_update(update)  # every forward moves the loss centre
    return Obj("tensor", call_.pos, facts={"from_loss": (True, call_.pos)})


def _argument_texts(it, call_: Call, names: tuple) -> tuple:
    nodes = [call_.kw_nodes.get(name) or (call_.arg_nodes[i] if i < len(call_.arg_nodes) else None)
             for i, name in enumerate(names)]
    return tuple(ast.unparse(n) if n is not None else "" for n in nodes)


def ibot_forward(it, loss: Obj, call_: Call) -> Obj:
    """IBOTPatchLoss(teacher_out, student_out, mask, teacher_temp=None): its center moves on every call."""
    update = IBOTCall(loss, call_.arg(0, "teacher_out"), call_.arg(1, "student_out"), call_.pos,
                      _argument_texts(it, call_, ("teacher_out", "student_out")))
    it.trace.ibot_calls.append(update)
    return Obj("tensor", call_.pos, facts={"from_loss": (True, call_.pos)})


def koleo_forward(it, loss: Obj, call_: Call) -> Obj:
    """KoLeoLoss(x): x's rows are the images whose nearest neighbours it spreads."""
    it.trace.koleo_calls.append(KoLeoCall(call_.arg(0, "x"), call_.pos, _argument_texts(it, call_, ("x",))[0]))
    return Obj("tensor", call_.pos)
