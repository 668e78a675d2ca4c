"""Methods and attributes of library objects, and calling them: a table from method name to handler."""

from __future__ import annotations

import ast
from typing import Any

from dino_guard.sources import lightly_api as api
from dino_guard.sources.interp.callargs import Call, Starred
from dino_guard.sources.interp.scripts import find_method
from dino_guard.sources.interp.values import Bound, Children, Obj, Params, Ref, is_const, opaque
from dino_guard.sources.library import lightly, lightning, models, table

# methods whose effect on their arguments is fully known (the rest may change what they get)
KNOWN_METHODS = frozenset({"parameters", "named_parameters", "children", "modules", "cancel_last_layer_gradients",
                           "detach", "forward", "__call__", "fit", "add_module", "state_dict", "load_state_dict",
                           "step", "backward", "item", "flatten", "chunk", "view", "reshape", "mean", "sum",
                           "log", "log_dict", "update", "scale", "unscale_", "zero_grad"})
# methods that return the object itself (model.to(device))
SELF_METHODS = frozenset({"to", "cuda", "cpu", "train", "eval", "float", "double", "bfloat16", "type",
                          "share_memory", "apply", "requires_grad_", "half"})
EMA_METHODS = frozenset({"lerp_", "mul_", "copy_", "update_parameters"})
STEPPERS = ("optimizer", "scaler", "opaque")  # objects whose .step() is an optimizer step


def _parameters(it, obj: Obj, call: Call) -> Params:
    return Params([obj])


def _children(it, obj: Obj, call: Call) -> Children:
    return Children(obj)


def _cancel_last_layer_gradients(it, obj: Obj, call: Call) -> None:
    it.trace.last_layer_calls.append((ast.unparse(call.node.func.value), obj, call.pos))


def _detach(it, obj: Obj, call: Call) -> Obj:
    if not obj.fact("from_loss"):  # loss.detach() for logging says nothing about the teacher
        it.trace.detach_seen = True
    return Obj("tensor", call.pos)


def _fit(it, obj: Obj, call: Call) -> Any:
    if obj.kind == "trainer":
        lightning.fit(it, obj, call)
        return None
    return opaque(call.pos)


def _wrapped(it, obj: Obj, call: Call) -> Any:
    """Fabric's setup/setup_dataloaders/to_device: the objects it got; on anything else, unknown."""
    return lightning.wrapped(it, obj, call) if obj.kind == "trainer" else opaque(call.pos)


def _add_module(it, obj: Obj, call: Call) -> Any:
    if isinstance(call.arg(0, "name"), str):
        obj.attrs[call.arg(0, "name")] = call.arg(1, "module")
    return None


def _flatten(it, obj: Obj, call: Call) -> Any:
    """lightly's `backbone(x).flatten(start_dim=1)` on a feature map: a vector of channels x height x width
    values, still not the pooled feature vector a head's input_dim is sized for (DG715 follows it)."""
    if obj.kind == "tensor" and obj.fact("spatial") and call.arg(0, "start_dim", 0) == 1:
        return Obj("tensor", call.pos, facts={"flattened_map": obj.facts["spatial"],
                                              **{k: obj.facts[k] for k in ("map_channels",) if k in obj.facts}})
    return opaque(call.pos)


METHODS = {
    "parameters": _parameters, "flatten": _flatten, "named_parameters": _parameters,
    "children": _children, "modules": _children,
    "cancel_last_layer_gradients": _cancel_last_layer_gradients, "detach": _detach,
    "forward": lambda it, obj, call: call_object(it, obj, call),
    "__call__": lambda it, obj, call: call_object(it, obj, call),
    "fit": _fit, "add_module": _add_module, "zero_grad": lambda it, obj, call: None,
    **{name: _wrapped for name in ("setup", "setup_module", "setup_dataloaders", "to_device")},
    **{name: (lambda it, obj, call: obj) for name in SELF_METHODS},
}


def call_method(it, bound: Bound, call: Call) -> Any:
    """A library method on an object: model.to(device), head.cancel_last_layer_gradients(...)."""
    obj, name = bound.obj, bound.name
    _side_effects(it, obj, name, call)
    if name.startswith("__super__"):
        return None  # nn.Module.__init__ and friends
    handler = METHODS.get(name)
    return handler(it, obj, call) if handler is not None else opaque(call.pos)


def _side_effects(it, obj: Obj, name: str, call: Call) -> None:
    """What a method call tells about training: steps, frozen parameters, precision, an EMA by hand."""
    if name in ("backward", "manual_backward") or (name == "step" and obj.kind in STEPPERS):
        it.library.train_steps += 1  # this loop trains (an evaluation loop has neither)
    if name == "requires_grad_" and call.arg(0, "requires_grad", True) is False:
        it.library.freeze(it, obj.parts if obj.kind == "param" else [obj])  # p.requires_grad_(False) freezes p's owner
    if name == "half":
        it.trace.precisions.append(("fp16", call.pos))
    dtype = next((d for d in map(_dtype, call.args + list(call.kwargs.values())) if d), None)
    if name in ("to", "type") and dtype:
        it.trace.precisions.append((api.TORCH_DTYPES.get(dtype), call.pos))  # model.to(torch.bfloat16)
    if name in EMA_METHODS or (name == "update" and obj.kind == "opaque"):
        it.trace.ema_by_hand = True  # param_t.data.mul_(m).add_((1 - m) * param_s.data); ema.update(model)


def attribute(it, obj: Obj, name: str, node: ast.AST) -> Any:
    """Attributes libraries give objects: a backbone's width, a LightningModule's current_epoch, VGG's features."""
    pos = it.pos(node)
    if obj.kind == "backbone":
        if name in api.WIDTH_ATTRS and is_const(obj.fact("feature_dim")):
            return obj.fact("feature_dim")
        if name == "fc" and is_const(obj.fact("feature_dim")) and obj.fact("patch_size") is None:
            return Obj("fc", pos, facts={"in_features": obj.facts["feature_dim"]})
    if obj.kind == "fc" and name == "in_features":
        return obj.fact("in_features")
    family = obj.fact("torchvision")
    if name == "features" and isinstance(family, str) and family.startswith(models.MAP_FAMILIES):
        return Obj("module", pos, facts={"spatial": (f"torchvision's {family}().features (a feature map)", pos)})
    return lightning.attribute(it, obj, name, pos)


def call_object(it, obj: Obj, call: Call) -> Any:
    """Calling an object: a loss, or a module's forward."""
    if obj.kind == "loss":
        return lightly.loss_forward(it, obj, call)
    if obj.kind == "partial":
        return table.call_partial(it, obj, call)
    if obj.kind == "ibot_loss":
        return lightly.ibot_forward(it, obj, call)
    if obj.kind == "koleo_loss":
        return lightly.koleo_forward(it, obj, call)
    if obj.kind not in ("backbone", "head", "instance", "module", "opaque"):
        return opaque(call.pos)
    it.trace.calls.append((obj, it.library.gradient_off(it)))
    if obj.kind == "head":
        it.trace.head_inputs.append((obj, call.arg(0, "x"), call.pos))
    forward = find_method(obj.cls, "forward") if obj.cls is not None else None
    result = None
    if forward is not None:
        result = it.call_func(forward, [a for a in call.args if not isinstance(a, Starred)], call.kwargs, self_obj=obj)
    if isinstance(result, Obj) and result.kind == "tensor" and "module" in result.facts:
        return result  # the tensor the script's forward returns: it remembers which module made it
    if obj.cls is not None or obj.kind == "opaque":
        return Obj("tensor", call.pos)  # a forward with branches or unknown code: which module answered is unknown
    return tensor_from(obj, call.pos)


def tensor_from(module: Obj, pos: tuple) -> Obj:
    """The output of calling module: remembers the module (who computed the teacher's outputs)
    and whether it is a feature map rather than a flat feature vector."""
    facts = {"module": (module, pos)}
    if module.fact("spatial"):
        facts["spatial"] = module.facts["spatial"]  # where the map is made: one finding per backbone
        facts.update({k: module.facts[k] for k in ("map_channels",) if k in module.facts})
    return Obj("tensor", pos, facts=facts)


def _dtype(value: Any) -> str | None:
    """'bfloat16' for torch.bfloat16, else None."""
    if isinstance(value, Ref) and value.qual.startswith("torch.") and value.qual.count(".") == 1:
        last = value.qual.rsplit(".", 1)[-1]
        return last if last in api.TORCH_DTYPES or last.startswith(("float", "bfloat")) else None
    return None


_IN_PLACE = frozenset({"mul_", "add_", "sub_", "copy_", "lerp_", "addcmul_"})


def state_dict_ema(tree: ast.Module) -> bool:
    """An EMA written over state_dict() values: a loop over a module's state_dict() that updates tensors in place
    (`v.mul_(m).add_(s[k], alpha=1 - m)`, `v *= m`, `sd[k] = ...`) or a computed dict loaded back
    (`teacher.load_state_dict({k: m * v + (1 - m) * s[k] for k, v in ...})`). The evaluator does not follow the
    values of a state dict, so the reader looks at the code's shape."""
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and _reads_state_dict([node.iter]):
            if any(_in_place_update(n) for part in node.body for n in ast.walk(part)):
                return True
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "load_state_dict":
            comps = [n for arg in node.args for n in ast.walk(arg) if isinstance(n, ast.DictComp)]
            if any(_reads_state_dict([g.iter for g in comp.generators]) for comp in comps):
                return True
    return False


def _reads_state_dict(sources: list) -> bool:
    return any(isinstance(n, ast.Attribute) and n.attr == "state_dict" for s in sources for n in ast.walk(s))


def _in_place_update(node: ast.AST) -> bool:
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _IN_PLACE:
        return True
    if isinstance(node, ast.AugAssign):
        return True
    return isinstance(node, ast.Assign) and any(isinstance(t, ast.Subscript) for t in node.targets)
