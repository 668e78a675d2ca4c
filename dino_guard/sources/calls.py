"""Calls into libraries, dispatched by qualified name: lightly, torch, torchvision, timm, Lightning.

Each handler turns a call into an abstract value and records in the trace
what the checks need (who is frozen, what the optimizer gets, ...). The
handlers live in lib_models (backbones), lib_data (data sets, loaders) and
lib_training (EMA, optimizers, precision, Lightning).
"""

from __future__ import annotations

import ast
from typing import Any, Optional

from dino_guard import backbones
from dino_guard.sources import lib_data as data
from dino_guard.sources import lib_lightly_train as lightly_train
from dino_guard.sources import lib_models as models
from dino_guard.sources import lib_training as training
from dino_guard.sources import lightly_api as api
from dino_guard.sources.callargs import ABSENT, Builtin, Call, Starred, record  # noqa: F401  (re-exported)
from dino_guard.sources.lib_data import view_count  # noqa: F401  (re-exported)
from dino_guard.sources.pybuiltins import BUILTINS  # noqa: F401  (re-exported)
from dino_guard.sources.trace import LossCall
from dino_guard.sources.values import Bound, Children, Obj, Params, Ref, Scaled, opaque


# --- lightly ---------------------------------------------------------------------------------

def _lightly_call(it, qual: str, call: Call) -> Any:
    last = qual.rsplit(".", 1)[-1]
    if last == "DINOProjectionHead":
        return record(it, Obj("head", call.pos, facts=call.bind(it, api.DINO_HEAD)))
    if last == "DINOLoss":
        return record(it, Obj("loss", call.pos, facts=call.bind(it, api.DINO_LOSS)))
    if last == "DINOTransform":
        return record(it, Obj("transform", call.pos, facts=call.bind(it, api.DINO_TRANSFORM)))
    if last == "DINOCollateFunction":
        return record(it, Obj("dino_collate", call.pos, facts=call.bind(it, api.DINO_COLLATE)))
    if last == "LightlyDataset":
        return data.dataset(it, call, call.arg(1, "transform", ABSENT), None)
    if qual.endswith("LightlyDataset.from_torch_dataset"):
        inner = call.arg(0, "dataset")
        return data.dataset(it, call, call.arg(1, "transform", ABSENT), inner if isinstance(inner, Obj) else None)
    if last in ("MaskedVisionTransformerTIMM", "MaskedVisionTransformerTorchvision"):
        vit = call.arg(0, "vit")
        return models.copy_backbone(vit, call.pos) if models.is_backbone(vit) else opaque(call.pos)
    if last == "deactivate_requires_grad":
        it.freeze([a for a in [call.arg(0, "model")] if isinstance(a, Obj)])
        return None
    if last == "update_momentum":
        return training.update_momentum(it, call)
    if last == "cosine_schedule":
        return training.cosine_schedule(it, call)
    if last == "MultiViewCollate":
        return Obj("multiview_collate", call.pos)
    if last == "LARS":
        return training.optimizer(it, call, None)
    return opaque(call.pos)




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
    if qual in lightly_train.TRAIN_FUNCTIONS:
        return lightly_train.train(it, call)
    if qual in ("timm.create_model", "timm.models.create_model"):
        return models.timm_model(it, call)
    if qual.startswith("timm.models.") and backbones.lookup(last) is not None:
        return models.timm_function(it, last, call)  # from timm.models.vision_transformer import vit_small_patch16_224
    if qual.startswith("torchvision.models."):
        return models.torchvision_model(it, last, call)
    if qual.startswith("torchvision.datasets."):
        return data.torchvision_dataset(it, last, call)
    if qual == "torch.hub.load":
        return models.hub_model(it, call)
    if qual in ("torch.utils.data.DataLoader", "torch.utils.data.dataloader.DataLoader"):
        return data.dataloader(it, call)
    if qual in _PASSTHROUGH:
        first = call.arg(0, "model")
        return first if isinstance(first, Obj) else opaque(call.pos)
    if qual in ("torch.nn.Sequential", "torch.nn.modules.container.Sequential"):
        return models.sequential(it, call)
    if last in ("DistributedDataParallel", "DataParallel") and root == "torch":
        module = call.arg(0, "module")
        return Obj("module", call.pos, attrs={"module": module}) if isinstance(module, Obj) else opaque(call.pos)
    if qual in ("copy.deepcopy",):
        return models.deepcopy(it, call.arg(0, "x"), {})
    if qual.startswith(_TORCH_OPTIM) and last[:1].isupper() and "lr_scheduler" not in qual:
        return training.optimizer(it, call, api.OPTIMIZERS.get(last))
    if qual in _NO_GRAD:
        return Obj("no_grad", call.pos)
    if qual == "torch.set_grad_enabled":
        return Obj("no_grad", call.pos) if call.arg(0, "mode") is False else opaque(call.pos)
    if qual == "torch.set_default_dtype":
        it.trace.precisions.append((None, call.pos))  # another default dtype: precision unknown
        return None
    if last == "autocast" and root == "torch":
        return training.autocast(it, call, qual)
    if last == "GradScaler" and root == "torch":
        it.trace.grad_scaler = call.pos
        return Obj("scaler", call.pos)
    if qual in api.LIGHTNING_TRAINERS:
        return training.trainer(it, call)
    if qual == "torch.nn.Identity":
        return Obj("identity", call.pos)
    if last in _EMA_HELPERS or last.startswith("_foreach_"):
        it.trace.ema_by_hand = True  # timm's ModelEmaV2, torch's AveragedModel, torch._foreach_lerp_: an EMA lightly does not see
        return opaque(call.pos)
    if qual == "math.sqrt":
        return _sqrt(call.arg(0, "x"), call.pos)
    if qual in ("itertools.chain",):
        return Params([o for a in call.args if isinstance(a, Params) for o in a.owners])
    return opaque(call.pos)


_EMA_HELPERS = frozenset({"ModelEma", "ModelEmaV2", "ModelEmaV3", "AveragedModel", "ExponentialMovingAverage", "EMA"})
_EMA_METHODS = frozenset({"lerp_", "mul_", "copy_", "update_parameters"})

KNOWN_METHODS = frozenset({"parameters", "named_parameters", "children", "modules", "cancel_last_layer_gradients",
                           "detach", "forward", "__call__", "fit", "add_module", "state_dict", "load_state_dict",
                           "step", "backward", "item", "flatten", "chunk", "view", "reshape", "mean", "sum",
                           "log", "log_dict", "update", "scale", "unscale_", "zero_grad"})
SELF_METHODS = frozenset({"to", "cuda", "cpu", "train", "eval", "float", "double", "bfloat16", "type",
                           "share_memory", "apply", "requires_grad_", "half", "zero_grad"})


def method_call(it, bound: Bound, call: Call) -> Any:
    """A library method on an object: model.to(device), head.cancel_last_layer_gradients(...)."""
    obj, name = bound.obj, bound.name
    if name in ("backward", "manual_backward") or (name == "step" and obj.kind in ("optimizer", "scaler", "opaque", "fabric")):
        it.train_steps += 1  # this loop trains (an evaluation loop has neither)
    if name == "requires_grad_" and call.arg(0, "requires_grad", True) is False:
        it.freeze(obj.parts if obj.kind == "param" else [obj])  # p.requires_grad_(False) freezes p's owner
    if name == "half":
        it.trace.precisions.append(("fp16", call.pos))
    if name in ("to", "type") and any(_dtype(a) for a in call.args + list(call.kwargs.values())):
        dtype = next(_dtype(a) for a in call.args + list(call.kwargs.values()) if _dtype(a))
        it.trace.precisions.append((api.TORCH_DTYPES.get(dtype), call.pos))  # model.to(torch.bfloat16)
    if name in _EMA_METHODS:
        it.trace.ema_by_hand = True  # param_t.data.mul_(m).add_((1 - m) * param_s.data)
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
        training.fit(it, obj, call)
        return None
    if name == "add_module" and isinstance(call.arg(0, "name"), str):
        obj.attrs[call.arg(0, "name")] = call.arg(1, "module")
        return None
    if name.startswith("__super__"):
        return None  # nn.Module.__init__ and friends
    return opaque(call.pos)


def instance_attribute(it, obj: Obj, name: str, pos: tuple) -> Any:
    """Attributes libraries give objects: a LightningModule's current_epoch, a torchvision VGG's features."""
    if name == "current_epoch" and obj.fact("lightning"):
        return Obj("epoch", pos, facts={"lightning": (True, pos)})
    if name == "features" and isinstance(obj.fact("torchvision"), str) and obj.fact("torchvision").startswith(models.MAP_FAMILIES):
        return Obj("module", pos, facts={"spatial": (f"torchvision's {obj.fact('torchvision')}().features (a feature map)", pos)})
    return None


def object_call(it, obj: Obj, call: Call) -> Any:
    """Calling an object: a loss, or a module's forward."""
    if obj.kind == "loss":
        return _loss_forward(it, obj, call)
    if obj.kind in ("backbone", "head", "instance", "module", "opaque"):
        it.trace.calls.append((obj, it.no_grad > 0))
        if obj.kind == "head":
            it.trace.head_inputs.append((obj, call.arg(0, "x"), call.pos))
        result = None
        if obj.cls is not None:
            from dino_guard.sources.interp import find_method

            forward = find_method(obj.cls, "forward")
            if forward is not None:
                result = it.call_func(forward, [a for a in call.args if not isinstance(a, Starred)], call.kwargs, self_obj=obj)
        if isinstance(result, Obj) and result.kind == "tensor" and "module" in result.facts:
            return result  # the tensor the script's forward returns: it remembers which module made it
        if obj.cls is not None or obj.kind == "opaque":
            return Obj("tensor", call.pos)  # a forward with branches or unknown code: which module answered is unknown
        return tensor_from(obj, call.pos)
    return opaque(call.pos)


def tensor_from(module: Obj, pos: tuple) -> Obj:
    """The output of calling module: remembers the module (who computed the teacher's outputs)
    and whether it is a feature map rather than a flat feature vector."""
    facts = {"module": (module, pos)}
    if module.fact("spatial"):
        facts["spatial"] = module.facts["spatial"]  # where the map is made: one finding per backbone
    return Obj("tensor", pos, facts=facts)


def _loss_forward(it, loss: Obj, call: Call) -> Obj:
    """DINOLoss(teacher_out, student_out, teacher_temp=None, epoch=None): the warmup runs only on epoch=."""
    teacher, student = call.arg(0, "teacher_out"), call.arg(1, "student_out")
    epoch = call.arg(3, "epoch") is not None and call.arg(2, "teacher_temp") is None
    nodes = [call.kw_nodes.get("teacher_out"), call.kw_nodes.get("student_out")]
    for index in (0, 1):
        if nodes[index] is None and index < len(call.arg_nodes):
            nodes[index] = call.arg_nodes[index]
    texts = tuple(ast.unparse(n) if n is not None else "" for n in nodes)
    positions = tuple(it.pos(n) if n is not None else call.pos for n in nodes)
    record_ = LossCall(loss, teacher, student, epoch, call.pos, texts, it.scope(), it.evaluation_method(),
                       it.evaluation_site(), positions)
    it.trace.loss_calls.append(record_)
    it.note_teacher_update(record_)
    return Obj("tensor", call.pos, facts={"from_loss": (True, call.pos)})


def _sqrt(value: Any, pos: tuple) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        root = value ** 0.5
        return Scaled(root) if isinstance(value, Scaled) else root
    return opaque(pos)


def _dtype(value: Any) -> Optional[str]:
    """'bfloat16' for torch.bfloat16, else None."""
    if isinstance(value, Ref) and value.qual.startswith("torch.") and value.qual.count(".") == 1:
        last = value.qual.rsplit(".", 1)[-1]
        return last if last in api.TORCH_DTYPES or last.startswith(("float", "bfloat")) else None
    return None


def _text(node: ast.AST) -> str:
    return ast.unparse(node)


