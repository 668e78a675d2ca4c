"""Calls into libraries: lightly, torch, torchvision, timm, Lightning, builtins.

Each handler turns a call into an abstract value and records in the trace
what the checks need (who is frozen, what the optimizer gets, ...).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from dino_guard import backbones
from dino_guard.sources import lightly_api as api
from dino_guard.sources.trace import LossCall, MomentumCall, OptimizerCall
from dino_guard.sources.values import (Bound, Children, DictVal, Obj, Params, Range, Ref, Seq, is_const,
                                       opaque)


@dataclass
class Starred:
    value: Any


@dataclass
class Call:
    node: ast.Call
    args: list
    kwargs: dict
    star: bool  # *args or **kwargs: arguments not written out are unknown, not defaulted
    arg_nodes: list
    kw_nodes: dict
    pos: tuple

    def arg(self, index: int, name: str, default: Any = None) -> Any:
        if name in self.kwargs:
            return self.kwargs[name]
        plain = [a for a in self.args if not isinstance(a, Starred)]
        if index is not None and index < len(plain) and not any(isinstance(a, Starred) for a in self.args[:index + 1]):
            return plain[index]
        return default

    def bind(self, it, signature: tuple) -> dict:
        """name -> (value, position) for each parameter; defaults at the call's position."""
        out = {}
        for index, (name, default) in enumerate(signature):
            if name in self.kwargs:
                out[name] = (self.kwargs[name], it.pos(self.kw_nodes[name]))
            elif index < len(self.args) and not any(isinstance(a, Starred) for a in self.args[:index + 1]):
                out[name] = (self.args[index], it.pos(self.arg_nodes[index]))
            elif self.star:
                out[name] = (opaque(self.pos), self.pos)
            else:
                out[name] = (default, self.pos)
        return out


@dataclass
class Builtin:
    fn: Callable


# --- lightly ---------------------------------------------------------------------------------

def _lightly_call(it, qual: str, call: Call) -> Any:
    last = qual.rsplit(".", 1)[-1]
    if last == "DINOProjectionHead":
        return _record(it, Obj("head", call.pos, facts=call.bind(it, api.DINO_HEAD)))
    if last == "DINOLoss":
        return _record(it, Obj("loss", call.pos, facts=call.bind(it, api.DINO_LOSS)))
    if last == "DINOTransform":
        return _record(it, Obj("transform", call.pos, facts=call.bind(it, api.DINO_TRANSFORM)))
    if last == "DINOCollateFunction":
        return _record(it, Obj("dino_collate", call.pos, facts=call.bind(it, api.DINO_COLLATE)))
    if last == "LightlyDataset":
        return _dataset(it, call, call.arg(1, "transform", _ABSENT), None)
    if qual.endswith("LightlyDataset.from_torch_dataset"):
        inner = call.arg(0, "dataset")
        return _dataset(it, call, call.arg(1, "transform", _ABSENT), inner if isinstance(inner, Obj) else None)
    if last in ("MaskedVisionTransformerTIMM", "MaskedVisionTransformerTorchvision"):
        vit = call.arg(0, "vit")
        return _copy_backbone(vit, call.pos) if _is_backbone(vit) else opaque(call.pos)
    if last == "deactivate_requires_grad":
        it.freeze([a for a in [call.arg(0, "model")] if isinstance(a, Obj)])
        return None
    if last == "update_momentum":
        return _update_momentum(it, call)
    if last == "cosine_schedule":
        return Obj("schedule", call.pos, facts={"start": (call.arg(2, "start_value"), call.pos), "end": (call.arg(3, "end_value"), call.pos)})
    if last == "MultiViewCollate":
        return Obj("multiview_collate", call.pos)
    if last == "LARS":
        return _optimizer(it, call, None)
    return opaque(call.pos)


def _update_momentum(it, call: Call) -> None:
    nodes = [call.kw_nodes.get("model"), call.kw_nodes.get("model_ema")]
    for index in (0, 1):
        if nodes[index] is None and index < len(call.arg_nodes):
            nodes[index] = call.arg_nodes[index]
    texts = tuple(ast.unparse(n) if n is not None else "" for n in nodes)
    objs = (call.arg(0, "model"), call.arg(1, "model_ema"))
    it.trace.momentum_calls.append(MomentumCall(texts, objs, call.arg(2, "m"), call.pos))
    return None


_ABSENT = object()  # an argument not written in the call


def _dataset(it, call: Call, transform: Any, inner: Optional[Obj]) -> Obj:
    obj = Obj("dataset", call.pos)
    if transform is not _ABSENT:
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
    return _record(it, obj)


def _torchvision_dataset(it, name: str, call: Call) -> Any:
    if name not in api.TORCHVISION_TRANSFORM_INDEX:
        return opaque(call.pos)
    index = api.TORCHVISION_TRANSFORM_INDEX[name]
    plain = [a for a in call.args if not isinstance(a, Starred)]
    if "transform" in call.kwargs or (index is not None and index < len(plain)):
        return _dataset(it, call, call.arg(index, "transform"), None)
    return _dataset(it, call, _ABSENT, None)


# --- backbones -------------------------------------------------------------------------------

def _backbone(call_pos: tuple, name: Any, name_pos: tuple, **facts: Any) -> Obj:
    obj = Obj("backbone", call_pos)
    if isinstance(name, str):
        obj.facts["name"] = (name, name_pos)
        info = backbones.lookup(name)
        if info is not None:
            obj.facts["feature_dim"] = (info.feature_dim, name_pos)
            obj.facts["patch_size"] = (info.patch_size, name_pos)
            obj.facts["in_table"] = (True, name_pos)
    for key, value in facts.items():
        if value is not None:
            obj.facts[key] = (value, name_pos)
    return obj


def _timm(it, call: Call) -> Obj:
    name = call.arg(0, "model_name")
    name_pos = it.pos(call.kw_nodes.get("model_name") or (call.arg_nodes[0] if call.arg_nodes else call.node))
    obj = _backbone(call.pos, name if isinstance(name, str) else None, name_pos)
    for key in ("pretrained", "dynamic_img_size", "drop_path_rate"):
        if key in call.kwargs and is_const(call.kwargs[key]):
            obj.facts[key] = (call.kwargs[key], it.pos(call.kw_nodes[key]))
    info = backbones.lookup(name) if isinstance(name, str) else None
    img_size = call.kwargs.get("img_size")
    if info is not None and img_size is not None and img_size != info.img_size:
        obj.facts.pop("name", None)  # another input size than the table's: keep only width and patch
        obj.facts.pop("in_table", None)
    if call.star:
        obj.facts.pop("dynamic_img_size", None)
    return _record(it, obj)


def _timm_function(it, name: str, call: Call) -> Obj:
    """timm's model functions take the same keywords as create_model, without the name."""
    shifted = Call(call.node, [name] + call.args, call.kwargs, call.star, [call.node.func] + call.arg_nodes,
                   call.kw_nodes, call.pos)
    return _timm(it, shifted)


def _torchvision_model(it, name: str, call: Call) -> Any:
    full = backbones.TORCHVISION_PREFIX + name
    if backbones.lookup(full) is None and name not in api.TORCHVISION_WIDTHS:
        return opaque(call.pos)
    obj = _backbone(call.pos, full, call.pos)
    if "feature_dim" not in obj.facts:
        obj.facts["feature_dim"] = (api.TORCHVISION_WIDTHS[name], call.pos)
        obj.facts["patch_size"] = (None, call.pos)
    return _record(it, obj)


def _hub(it, call: Call) -> Any:
    model = call.arg(1, "model")
    facts = api.HUB_MODELS.get(model) if isinstance(model, str) else None
    if facts is None:
        return opaque(call.pos)
    pos = it.pos(call.kw_nodes.get("model") or (call.arg_nodes[1] if len(call.arg_nodes) > 1 else call.node))
    obj = Obj("backbone", call.pos, facts={k: (v, pos) for k, v in facts.items()})
    obj.facts["dynamic_img_size"] = (True, pos)  # the hub DINO ViTs interpolate position embeddings
    obj.facts["in_table"] = (backbones.lookup(facts["name"]) is not None, pos)
    return _record(it, obj)


def _is_backbone(value: Any) -> bool:
    return isinstance(value, Obj) and value.kind == "backbone"


def _copy_backbone(source: Obj, pos: tuple) -> Obj:
    return Obj("backbone", pos, facts=dict(source.facts))


def _sequential(it, call: Call) -> Any:
    if len(call.args) == 1 and isinstance(call.args[0], Starred):
        children = call.args[0].value
        if isinstance(children, Children) and children.drop == 1 and _is_backbone(children.owner) \
                and children.owner.fact("patch_size") is None and "feature_dim" in children.owner.facts:
            return _copy_backbone(children.owner, call.pos)  # a ResNet without its fc: pooled features
    return Obj("module", call.pos, parts=[a for a in call.args if isinstance(a, Obj)])


# --- training machinery ----------------------------------------------------------------------

def _dataloader(it, call: Call) -> Obj:
    obj = Obj("dataloader", call.pos)
    names = ("dataset", "batch_size", "shuffle", "sampler", "batch_sampler", "num_workers", "collate_fn")
    for index, name in enumerate(names):
        value = call.arg(index, name, _ABSENT)
        if value is _ABSENT:
            continue
        node = call.kw_nodes.get(name) or call.arg_nodes[index]
        obj.facts[name] = (value, it.pos(node))
    if "batch_size" not in obj.facts and not call.star and "batch_sampler" not in obj.facts:
        obj.facts["batch_size"] = (1, call.pos)  # torch's default
    return _record(it, obj)


def view_count(loader: Obj) -> Optional[int]:
    """Views per sample: 2 global + n_local_views, when the transform is known."""
    from dino_guard.sources.facts import loader_transform

    transform = loader_transform(loader)
    if isinstance(transform, Obj) and transform.kind in ("transform", "dino_collate"):
        n_local = transform.fact("n_local_views")
        if isinstance(n_local, int) and not isinstance(n_local, bool):
            return 2 + n_local
    return None


def _optimizer(it, call: Call, name: Optional[str]) -> Obj:
    params = call.arg(0, "params")
    owners = _param_owners(params)
    it.trace.optimizers.append(OptimizerCall(owners, call.pos))
    obj = Obj("optimizer", call.pos)
    if name:
        obj.facts["name"] = (name, call.pos)
    return _record(it, obj)


def _param_owners(value: Any) -> list:
    """Modules whose parameters an optimizer receives (the known part)."""
    if isinstance(value, Params):
        return list(value.owners)
    if isinstance(value, Seq) and value.items:
        return [o for item in value.items for o in _param_owners(item)]
    if isinstance(value, DictVal):
        return _param_owners(value.items.get("params"))
    return []


def _autocast(it, call: Call) -> Obj:
    device = call.arg(0, "device_type")
    dtype = call.arg(1, "dtype") if isinstance(device, str) else call.kwargs.get("dtype")
    enabled = call.kwargs.get("enabled", True)
    precision = None
    if isinstance(dtype, Ref):
        precision = api.TORCH_DTYPES.get(dtype.qual.rsplit(".", 1)[-1])
    elif dtype is None and (device == "cuda" or call.node.func and "cuda" in ast.unparse(call.node.func)):
        precision = "fp16"  # autocast on CUDA defaults to float16
    if enabled is True and precision:
        it.trace.precisions.append((precision, call.pos))
    elif enabled is not False:
        it.trace.precisions.append((None, call.pos))  # amp of unknown dtype: precision unknown
    return Obj("autocast", call.pos)


def _trainer(it, call: Call) -> Obj:
    obj = Obj("trainer", call.pos)
    for name in ("max_epochs", "devices", "num_nodes", "accumulate_grad_batches", "precision", "strategy"):
        if name in call.kwargs:
            obj.facts[name] = (call.kwargs[name], it.pos(call.kw_nodes[name]))
    precision = obj.fact("precision", 32) if not call.star else None
    it.trace.precisions.append((api.LIGHTNING_PRECISION.get(precision) if is_const(precision) else None,
                                obj.facts.get("precision", (None, call.pos))[1]))
    if is_const(obj.fact("max_epochs")) and obj.fact("max_epochs") is not None:
        it.trace.epochs.append(obj.facts["max_epochs"])
    return _record(it, obj)


def _fit(it, trainer: Obj, call: Call) -> None:
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


def _deepcopy(value: Any, memo: dict, frozen: set) -> Any:
    if not isinstance(value, Obj):
        return value
    if id(value) in memo:
        return memo[id(value)]
    copy = Obj(value.kind, value.pos, facts=dict(value.facts), cls=value.cls)
    memo[id(value)] = copy
    copy.attrs = {k: _deepcopy(v, memo, frozen) for k, v in value.attrs.items()}
    copy.parts = [_deepcopy(p, memo, frozen) for p in value.parts]
    if id(value) in frozen:
        frozen.add(id(copy))  # deepcopy keeps requires_grad flags
    return copy


def _record(it, obj: Obj) -> Obj:
    it.trace.objects.append(obj)
    return obj


# --- dispatch --------------------------------------------------------------------------------

_TORCH_OPTIM = ("torch.optim.",)
_NO_GRAD = ("torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad", "torch.autograd.grad_mode.no_grad")
_PASSTHROUGH = ("torch.compile", "torch.nn.SyncBatchNorm.convert_sync_batchnorm", "torch.utils.data.Subset",
                "tqdm.tqdm", "tqdm.auto.tqdm")


def ref_call(it, qual: str, call: Call, frame) -> Any:
    """A call of an imported name, by its qualified name."""
    root, last = qual.split(".")[0], qual.rsplit(".", 1)[-1]
    if root == "lightly":
        return _lightly_call(it, qual, call)
    if qual in ("timm.create_model", "timm.models.create_model"):
        return _timm(it, call)
    if qual.startswith("timm.models.") and backbones.lookup(last) is not None:
        return _timm_function(it, last, call)  # from timm.models.vision_transformer import vit_small_patch16_224
    if qual.startswith("torchvision.models."):
        return _torchvision_model(it, last, call)
    if qual.startswith("torchvision.datasets."):
        return _torchvision_dataset(it, last, call)
    if qual == "torch.hub.load":
        return _hub(it, call)
    if qual in ("torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"):
        return _dataloader(it, call)
    if qual in _PASSTHROUGH:
        first = call.arg(0, "model")
        return first if isinstance(first, Obj) else opaque(call.pos)
    if qual in ("torch.nn.Sequential", "torch.nn.modules.container.Sequential"):
        return _sequential(it, call)
    if last in ("DistributedDataParallel", "DataParallel") and root == "torch":
        module = call.arg(0, "module")
        return Obj("module", call.pos, attrs={"module": module}) if isinstance(module, Obj) else opaque(call.pos)
    if qual in ("copy.deepcopy",):
        return _deepcopy(call.arg(0, "x"), {}, it.trace.frozen)
    if qual.startswith(_TORCH_OPTIM) and last[:1].isupper() and "lr_scheduler" not in qual:
        return _optimizer(it, call, api.OPTIMIZERS.get(last))
    if qual in _NO_GRAD:
        return Obj("no_grad", call.pos)
    if qual == "torch.set_grad_enabled":
        return Obj("no_grad", call.pos) if call.arg(0, "mode") is False else opaque(call.pos)
    if qual == "torch.set_default_dtype":
        it.trace.precisions.append((None, call.pos))  # another default dtype: precision unknown
        return None
    if last == "autocast" and root == "torch":
        return _autocast(it, call)
    if last == "GradScaler" and root == "torch":
        it.trace.grad_scaler = call.pos
        return Obj("scaler", call.pos)
    if qual in api.LIGHTNING_TRAINERS:
        return _trainer(it, call)
    if qual == "torch.nn.Identity":
        return Obj("identity", call.pos)
    if qual in ("itertools.chain",):
        return Params([o for a in call.args if isinstance(a, Params) for o in a.owners])
    return opaque(call.pos)


KNOWN_METHODS = frozenset({"parameters", "named_parameters", "children", "modules", "cancel_last_layer_gradients",
                           "detach", "forward", "__call__", "fit", "add_module", "state_dict", "load_state_dict",
                           "step", "backward", "item", "flatten", "chunk", "view", "reshape", "mean", "sum",
                           "log", "log_dict", "update", "scale", "unscale_", "zero_grad"})
SELF_METHODS = frozenset({"to", "cuda", "cpu", "train", "eval", "float", "double", "bfloat16", "type",
                           "share_memory", "apply", "requires_grad_", "half", "zero_grad"})


def method_call(it, bound: Bound, call: Call) -> Any:
    """A library method on an object: model.to(device), head.cancel_last_layer_gradients(...)."""
    obj, name = bound.obj, bound.name
    if name == "requires_grad_" and call.arg(0, "requires_grad", True) is False:
        it.freeze(obj.parts if obj.kind == "param" else [obj])  # p.requires_grad_(False) freezes p's owner
    if name == "half":
        it.trace.precisions.append(("fp16", call.pos))
    if name in ("to", "type") and any(_dtype(a) for a in call.args + list(call.kwargs.values())):
        dtype = next(_dtype(a) for a in call.args + list(call.kwargs.values()) if _dtype(a))
        it.trace.precisions.append((api.TORCH_DTYPES.get(dtype), call.pos))  # model.to(torch.bfloat16)
    if name in SELF_METHODS:
        return obj if name != "zero_grad" else None
    if name in ("parameters", "named_parameters"):
        return Params([obj])
    if name in ("children", "modules"):
        return Children(obj)
    if name == "cancel_last_layer_gradients":
        it.trace.last_layer_calls.append((_text(call.node.func.value), obj, call.pos))
        return None
    if name == "detach":
        if not obj.fact("from_loss"):  # loss.detach() for logging says nothing about the teacher
            it.trace.detach_seen = True
        return Obj("tensor", call.pos)
    if name in ("forward", "__call__"):
        return object_call(it, obj, call)
    if name == "fit" and obj.kind == "trainer":
        _fit(it, obj, call)
        return None
    if name == "add_module" and isinstance(call.arg(0, "name"), str):
        obj.attrs[call.arg(0, "name")] = call.arg(1, "module")
        return None
    if name.startswith("__super__"):
        return None  # nn.Module.__init__ and friends
    return opaque(call.pos)


def object_call(it, obj: Obj, call: Call) -> Any:
    """Calling an object: a loss, or a module's forward."""
    if obj.kind == "loss":
        teacher, student = call.arg(0, "teacher_out"), call.arg(1, "student_out")
        epoch = call.arg(3, "epoch") is not None
        it.trace.loss_calls.append(LossCall(obj, teacher, student, epoch, call.pos))
        return Obj("tensor", call.pos, facts={"from_loss": (True, call.pos)})
    if obj.kind in ("backbone", "head", "instance", "module", "opaque"):
        it.trace.calls.append((obj, it.no_grad > 0))
        if obj.cls is not None:
            from dino_guard.sources.interp import find_method

            forward = find_method(obj.cls, "forward")
            if forward is not None:
                it.call_func(forward, [a for a in call.args if not isinstance(a, Starred)], call.kwargs, self_obj=obj)
        return Obj("tensor", call.pos)
    return opaque(call.pos)


def _dtype(value: Any) -> Optional[str]:
    """'bfloat16' for torch.bfloat16, else None."""
    if isinstance(value, Ref) and value.qual.startswith("torch.") and value.qual.count(".") == 1:
        last = value.qual.rsplit(".", 1)[-1]
        return last if last in api.TORCH_DTYPES or last.startswith(("float", "bfloat")) else None
    return None


def _text(node: ast.AST) -> str:
    return ast.unparse(node)


# --- builtins --------------------------------------------------------------------------------

def _range(it, call: Call, frame) -> Any:
    plain = [a for a in call.args if not isinstance(a, Starred)]
    if call.star or not plain:
        return Range(opaque(call.pos))
    stop = plain[0] if len(plain) == 1 else plain[1]
    start = 0 if len(plain) == 1 else plain[0]
    if isinstance(stop, int) and isinstance(start, int) and not isinstance(stop, bool):
        return Range(stop - start)
    return Range(opaque(call.pos))


def _list(it, call: Call, frame) -> Any:
    value = call.arg(0, "iterable")
    if isinstance(value, (Params, Children, Seq)):
        return value
    if isinstance(value, tuple):
        return Seq(list(value), len(value))
    return Seq()


def _len(it, call: Call, frame) -> Any:
    value = call.arg(0, "obj")
    if isinstance(value, Seq) and value.length is not None:
        return value.length
    if isinstance(value, (tuple, str)):
        return len(value)
    return opaque(call.pos)


def _enumerate(it, call: Call, frame) -> Any:
    return Obj("enumerate", call.pos, attrs={"of": call.arg(0, "iterable")})


def _passthrough(index: int):
    def fn(it, call: Call, frame) -> Any:
        value = call.arg(index, "iterable")
        return value if value is not None else opaque(call.pos)
    return fn


def _number(kind):
    def fn(it, call: Call, frame) -> Any:
        value = call.arg(0, "x")
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                return kind(value)
            except (ValueError, OverflowError):
                pass
        return opaque(call.pos)
    return fn


def _super(it, call: Call, frame) -> Any:
    if frame.self_obj is None:
        return opaque(call.pos)
    return Obj("super", call.pos, attrs={"self": frame.self_obj, "owner": frame.owner})


def _dict(it, call: Call, frame) -> Any:
    return DictVal(dict(call.kwargs)) if not call.star else DictVal()


BUILTINS = {
    "range": Builtin(_range), "list": Builtin(_list), "tuple": Builtin(_list), "len": Builtin(_len),
    "enumerate": Builtin(_enumerate), "filter": Builtin(_passthrough(1)), "tqdm": Builtin(_passthrough(0)),
    "int": Builtin(_number(int)), "float": Builtin(_number(float)), "super": Builtin(_super),
    "dict": Builtin(_dict), "print": Builtin(lambda it, call, frame: None),
}
