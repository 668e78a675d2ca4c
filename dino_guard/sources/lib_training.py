"""Training machinery: EMA updates, optimizers, mixed precision, Lightning's Trainer."""

from __future__ import annotations

import ast
from typing import Any, Optional

from dino_guard.sources import lightly_api as api
from dino_guard.sources.callargs import Call, record
from dino_guard.sources.trace import MomentumCall, OptimizerCall
from dino_guard.sources.values import DictVal, Obj, Params, Ref, Seq, is_const


def update_momentum(it, call: Call) -> None:
    nodes = [call.kw_nodes.get("model"), call.kw_nodes.get("model_ema")]
    for index in (0, 1):
        if nodes[index] is None and index < len(call.arg_nodes):
            nodes[index] = call.arg_nodes[index]
    texts = tuple(ast.unparse(n) if n is not None else "" for n in nodes)
    objs = (call.arg(0, "model"), call.arg(1, "model_ema"))
    update = MomentumCall(texts, objs, call.arg(2, "m"), call.pos, it.scope(), it.evaluation_method(), it.evaluation_site())
    it.trace.momentum_calls.append(update)
    it.note_teacher_update(update)
    return None




def optimizer(it, call: Call, name: Optional[str]) -> Obj:
    params = call.arg(0, "params")
    owners = _param_owners(params)
    it.trace.optimizers.append(OptimizerCall(owners, call.pos))
    obj = Obj("optimizer", call.pos)
    if name:
        obj.facts["name"] = (name, call.pos)
    lr = call.arg(1, "lr")  # torch.optim.* and lightly's LARS take lr second
    if isinstance(lr, (int, float)) and not isinstance(lr, bool):
        node = call.kw_nodes.get("lr") or (call.arg_nodes[1] if len(call.arg_nodes) > 1 else call.node)
        obj.facts["lr"] = (lr, it.pos(node))
    return record(it, obj)


def cosine_schedule(it, call: Call) -> Obj:
    """lightly's cosine_schedule(step, max_steps, start_value, end_value, period=None)."""
    node = call.kw_nodes.get("max_steps") or (call.arg_nodes[1] if len(call.arg_nodes) > 1 else call.node)
    obj = Obj("schedule", call.pos, facts={
        "start": (call.arg(2, "start_value"), call.pos), "end": (call.arg(3, "end_value"), call.pos),
        "step": (call.arg(0, "step"), call.pos), "max_steps": (call.arg(1, "max_steps"), it.pos(node)),
        "period": (call.arg(4, "period"), call.pos), "per_batch": (bool(it.loader_loops), call.pos)})
    it.trace.schedules.append(obj)
    obj.scope = it.scope()
    return obj


def _param_owners(value: Any) -> list:
    """Modules whose parameters an optimizer receives (the known part)."""
    if isinstance(value, Params):
        return list(value.owners)
    if isinstance(value, Seq) and value.items:
        return [o for item in value.items for o in _param_owners(item)]
    if isinstance(value, DictVal):
        return _param_owners(value.items.get("params"))
    return []


def autocast(it, call: Call, qual: str) -> Obj:
    """torch.autocast / torch.amp.autocast(device_type, dtype, enabled) or torch.cuda.amp.autocast(enabled, dtype)."""
    if qual.startswith("torch.cuda."):
        device, dtype, enabled = "cuda", call.arg(1, "dtype"), call.arg(0, "enabled", True)
    else:
        device, dtype, enabled = call.arg(0, "device_type"), call.arg(1, "dtype"), call.arg(2, "enabled", True)
    precision = None
    if isinstance(dtype, Ref):
        precision = api.TORCH_DTYPES.get(dtype.qual.rsplit(".", 1)[-1])
    elif dtype is None and device == "cuda":
        precision = "fp16"  # autocast on CUDA defaults to float16
    if enabled is True and precision:
        it.trace.precisions.append((precision, call.pos))
    elif enabled is not False:
        it.trace.precisions.append((None, call.pos))  # amp of unknown dtype or device: precision unknown
    return Obj("autocast", call.pos)


def trainer(it, call: Call) -> Obj:
    obj = Obj("trainer", call.pos)
    for name in ("max_epochs", "devices", "num_nodes", "accumulate_grad_batches", "precision", "strategy"):
        if name in call.kwargs:
            obj.facts[name] = (call.kwargs[name], it.pos(call.kw_nodes[name]))
    precision = obj.fact("precision", 32) if not call.star else None
    it.trace.precisions.append((api.LIGHTNING_PRECISION.get(precision) if is_const(precision) else None,
                                obj.facts.get("precision", (None, call.pos))[1]))
    epochs = _lightning_epochs(call)
    if epochs is not None:
        it.trace.epochs.append((epochs, obj.facts["max_epochs"][1]))
    devices = obj.fact("devices")
    if isinstance(devices, tuple) and devices and all(isinstance(d, int) for d in devices):
        obj.facts["devices"] = (len(devices), obj.facts["devices"][1])  # devices=[0, 1]: two GPUs
    return record(it, obj)


def _lightning_epochs(call: Call) -> Optional[int]:
    """The epochs a Lightning Trainer runs, per its documentation, or None when not certain.

    max_epochs=-1 means no epoch limit (max_steps or max_time stops the run); max_epochs=None
    or left out defaults to 1000 unless max_steps is set: neither is a length the script chose.
    """
    if call.star:
        return None
    if call.kwargs.get("max_steps", -1) != -1 or call.kwargs.get("max_time") is not None:
        return None  # whichever limit comes first stops the run: the epochs are only an upper bound
    value = call.kwargs.get("max_epochs")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return None
    return value


def fit(it, trainer: Obj, call: Call) -> None:
    it.trace.training_loop = True
    model = call.arg(0, "model")
    loaders = call.arg(1, "train_dataloaders")
    if isinstance(loaders, Obj) and loaders.kind == "dataloader":
        it.trace.train_loaders.append(loaders)
    elif isinstance(model, Obj) and model.cls is not None and loaders is None:
        from dino_guard.sources.interp import find_method

        method = find_method(model.cls, "train_dataloader")
        if method is not None:
            loader = it.call_func(method, [], {}, self_obj=model)
            if isinstance(loader, Obj) and loader.kind == "dataloader":
                it.trace.train_loaders.append(loader)

