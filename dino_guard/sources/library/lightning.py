"""Lightning: the Trainer's arguments, fit(), and what a LightningModule does that the script does not write.

Lightning's documented semantics: `max_epochs=-1` is no epoch limit, `max_steps`
or `max_time` may end the run first, `devices=[0, 1]` is two devices, and the
evaluation hooks (validation_step, ...) run under no_grad without stepping
an optimizer.
"""

from __future__ import annotations

from typing import Any

from dino_guard.sources import lightly_api as api
from dino_guard.sources.interp.callargs import Call, Starred
from dino_guard.sources.interp.scripts import all_bases, find_method
from dino_guard.sources.interp.values import Obj, Ref, Seq, is_const, opaque
from dino_guard.sources.library.objects import record

TRAINERS = api.LIGHTNING_TRAINERS
# Fabric(accelerator, strategy, devices, num_nodes, precision, ...): the Trainer's devices and precision
FABRICS = ("lightning.Fabric", "lightning.fabric.Fabric", "lightning_fabric.Fabric", "lightning.pytorch.Fabric")
EVALUATION_METHODS = frozenset({"validation_step", "test_step", "predict_step", "on_validation_epoch_end",
                                "on_test_epoch_end", "validation_epoch_end", "test_epoch_end"})


def mark_module(it, obj: Obj) -> None:
    """An object of a class derived from LightningModule (it has current_epoch, trainer, ...)."""
    if any(isinstance(b, Ref) and b.qual.endswith("LightningModule") for b in all_bases(obj.cls)):
        obj.facts["lightning"] = (True, obj.pos)


def attribute(it, obj: Obj, name: str, pos: tuple) -> Any:
    if name == "current_epoch" and obj.fact("lightning"):
        return Obj("epoch", pos, facts={"lightning": (True, pos)})
    return None


def evaluation_method(it) -> str | None:
    """The evaluation hook running now (validation_step, ...), if any."""
    return next((n for n in reversed(it.func_names) if n in EVALUATION_METHODS), None)


def evaluation_site(it) -> tuple | None:
    """Inside an evaluation hook, the line of the hook that leads here (a shared helper's call), else None."""
    for index in range(len(it.func_names) - 1, -1, -1):
        if it.func_names[index] in EVALUATION_METHODS:
            return it.call_sites[index + 1] if index + 1 < len(it.call_sites) else None
    return None


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
    callbacks = call.kwargs.get("callbacks")
    if callbacks is not None and not _script_objects(callbacks):
        it.trace.ema_by_hand = True  # a callback from elsewhere may update the teacher (an EMA callback)
    devices = obj.fact("devices")
    if isinstance(devices, tuple) and devices and all(isinstance(d, int) for d in devices):
        obj.facts["devices"] = (len(devices), obj.facts["devices"][1])  # devices=[0, 1]: two GPUs
    return record(it, obj)


def wrapped(it, obj: Obj, call: Call) -> Any:
    """Fabric's setup(module, *optimizers), setup_dataloaders(*loaders), to_device(x): what it got, wrapped."""
    plain = [a for a in call.args if not isinstance(a, Starred)]
    if call.star or not plain:
        return opaque(call.pos)
    return plain[0] if len(plain) == 1 else Seq(plain, len(plain))


def _script_objects(value: Any) -> bool:
    """Callbacks the script defines itself (their methods are read); anything else is not followed."""
    items = value.elements() if isinstance(value, Seq) else list(value) if isinstance(value, tuple) else [value]
    return all(isinstance(v, Obj) and v.cls is not None for v in items)


def _lightning_epochs(call: Call) -> int | None:
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
        method = find_method(model.cls, "train_dataloader")
        if method is not None:
            loader = it.call_func(method, [], {}, self_obj=model)
            if isinstance(loader, Obj) and loader.kind == "dataloader":
                it.trace.train_loaders.append(loader)

