"""Training machinery: EMA updates and their schedule, optimizers, mixed precision."""

from __future__ import annotations

import ast
from typing import Any

from dino_guard.sources import lightly_api as api
from dino_guard.sources.interp.callargs import Call
from dino_guard.sources.interp.values import DictVal, Obj, Params, Ref, Seq
from dino_guard.sources.library import lightning
from dino_guard.sources.library.objects import record
from dino_guard.sources.library.trace import MomentumCall, OptimizerCall


def update_momentum(it, call: Call) -> None:
    nodes = [call.kw_nodes.get("model"), call.kw_nodes.get("model_ema")]
    for index in (0, 1):
        if nodes[index] is None and index < len(call.arg_nodes):
            nodes[index] = call.arg_nodes[index]
    texts = tuple(ast.unparse(n) if n is not None else "" for n in nodes)
    objs = (call.arg(0, "model"), call.arg(1, "model_ema"))
    update = MomentumCall(texts, objs, call.arg(2, "m"), call.pos, it.scope(),
                          lightning.evaluation_method(it), lightning.evaluation_site(it))
    it.trace.momentum_calls.append(update)
    it.library.note_teacher_update(update)
    return None


def optimizer(it, call: Call, name: str | None) -> Obj:
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
        "period": (call.arg(4, "period"), call.pos), "per_batch": (bool(it.library.loader_loops), call.pos)})
    it.trace.schedules.append(obj)
    obj.scope = it.scope()  # not recorded as an object: a schedule is a number, not a module
    return obj


def linear_warmup_schedule(it, call: Call) -> Obj:
    """lightly's linear_warmup_schedule(step, warmup_steps, start_value, end_value): DINOv2's teacher temperature."""
    node = call.kw_nodes.get("warmup_steps") or (call.arg_nodes[1] if len(call.arg_nodes) > 1 else call.node)
    obj = Obj("warmup", call.pos, facts={
        "step": (call.arg(0, "step"), call.pos), "warmup_steps": (call.arg(1, "warmup_steps"), it.pos(node)),
        "start": (call.arg(2, "start_value"), call.pos), "end": (call.arg(3, "end_value"), call.pos)})
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
