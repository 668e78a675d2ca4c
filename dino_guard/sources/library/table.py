"""What an imported callable means: a table from qualified name to handler(it, call, qual).

Looked up in order: the exact name (EXACT), then lightly's names by their last
part, then families by prefix (torchvision.models.*, torch.optim.*, ...), then
names by their last part within a package (torch's autocast, DDP). A name in
none of them is unknown: its value is a fresh opaque object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dino_guard import backbones
from dino_guard.sources import lightly_api as api
from dino_guard.sources.interp.callargs import Call
from dino_guard.sources.interp.values import Obj, Params, Ref, Scaled, opaque
from dino_guard.sources.library import data, lightly, lightly_train, lightning, models, training

Handler = Callable[[Any, Call, str], Any]


def _passthrough(it, call: Call, qual: str) -> Any:
    """torch.compile(model), Subset(dataset, ...), tqdm(loader): the first argument, wrapped."""
    first = call.arg(0, "model")
    return first if isinstance(first, Obj) else opaque(call.pos)


def _ddp(it, call: Call, qual: str) -> Any:
    module = call.arg(0, "module")
    return Obj("module", call.pos, attrs={"module": module}) if isinstance(module, Obj) else opaque(call.pos)


def _no_grad(it, call: Call, qual: str) -> Obj:
    return Obj("no_grad", call.pos)


def _set_grad_enabled(it, call: Call, qual: str) -> Any:
    return Obj("no_grad", call.pos) if call.arg(0, "mode") is False else opaque(call.pos)


def _set_default_dtype(it, call: Call, qual: str) -> None:
    it.trace.precisions.append((None, call.pos))  # another default dtype: precision unknown


def _grad_scaler(it, call: Call, qual: str) -> Obj:
    it.trace.grad_scaler = call.pos
    return Obj("scaler", call.pos)


def _ema_helper(it, call: Call, qual: str) -> Any:
    # timm's ModelEmaV2, torch's AveragedModel, torch._foreach_lerp_: an EMA lightly does not see
    it.trace.ema_by_hand = True
    return opaque(call.pos)


def _sqrt(it, call: Call, qual: str) -> Any:
    value = call.arg(0, "x")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        root = value ** 0.5
        return Scaled(root) if isinstance(value, Scaled) else root
    return opaque(call.pos)


def _chain(it, call: Call, qual: str) -> Params:
    return Params([o for a in call.args if isinstance(a, Params) for o in a.owners])


def _named(handler: Callable) -> Handler:
    """A handler(it, call) that does not need the qualified name."""
    return lambda it, call, qual: handler(it, call)


def _partial(it, call: Call, qual: str) -> Any:
    """functools.partial(DINOv2ProjectionHead, input_dim=384): calling it later calls the library with both."""
    callee = call.arg(0, "func")
    return (Obj("partial", call.pos, attrs={"callee": callee, "call": call}) if isinstance(callee, Ref)
            else opaque(call.pos))


def call_partial(it, partial: Obj, call: Call) -> Any:
    """The call a partial stands for: its own arguments first, the later call's after (keywords: the later win)."""
    inner: Call = partial.attrs["call"]
    merged = Call(call.node, inner.args[1:] + call.args, {**inner.kwargs, **call.kwargs}, inner.star or call.star,
                  inner.arg_nodes[1:] + call.arg_nodes, {**inner.kw_nodes, **call.kw_nodes}, call.pos)
    qual = partial.attrs["callee"].qual
    handler = lookup(qual)
    return handler(it, merged, qual) if handler is not None else opaque(call.pos)


EXACT: dict = {
    "functools.partial": _partial,
    "timm.create_model": _named(models.timm_model), "timm.models.create_model": _named(models.timm_model),
    "torch.hub.load": _named(models.hub_model),
    "torch.utils.data.DataLoader": _named(data.dataloader),
    "torch.utils.data.dataloader.DataLoader": _named(data.dataloader),
    "torch.nn.Sequential": _named(models.sequential),
    "torch.nn.modules.container.Sequential": _named(models.sequential),
    "torch.nn.Identity": lambda it, call, qual: Obj("identity", call.pos),
    "copy.deepcopy": lambda it, call, qual: models.deepcopy(it, call.arg(0, "x"), {}),
    "torch.set_grad_enabled": _set_grad_enabled, "torch.set_default_dtype": _set_default_dtype,
    "math.sqrt": _sqrt, "itertools.chain": _chain,
    **{name: _named(data.random_resized_crop) for name in data.CROP_CLASSES},
    **{name: _passthrough for name in ("torch.compile", "torch.nn.SyncBatchNorm.convert_sync_batchnorm",
                                       "torch.utils.data.Subset", "tqdm.tqdm", "tqdm.auto.tqdm")},
    **{name: _no_grad for name in ("torch.no_grad", "torch.inference_mode", "torch.autograd.no_grad",
                                   "torch.autograd.grad_mode.no_grad")},
    **{name: _named(lightning.trainer) for name in lightning.TRAINERS + lightning.FABRICS},
    **{name: _named(lightly_train.train) for name in lightly_train.TRAIN_FUNCTIONS},
}


def _torch_optimizer(it, call: Call, qual: str) -> Any:
    last = qual.rsplit(".", 1)[-1]
    if not last[:1].isupper() or "lr_scheduler" in qual:
        return opaque(call.pos)
    return training.optimizer(it, call, api.OPTIMIZERS.get(last))


def _timm_function(it, call: Call, qual: str) -> Any:
    last = qual.rsplit(".", 1)[-1]  # from timm.models.vision_transformer import vit_small_patch16_224
    return models.timm_function(it, last, call) if backbones.lookup(last) is not None else opaque(call.pos)


# (prefix, handler): families of names
PREFIXES = (
    ("torchvision.models.", lambda it, call, qual: models.torchvision_model(it, qual.rsplit(".", 1)[-1], call)),
    ("torchvision.datasets.", lambda it, call, qual: data.torchvision_dataset(it, qual.rsplit(".", 1)[-1], call)),
    ("timm.models.", _timm_function),
    ("torch.optim.", _torch_optimizer),
)

# (package, last name) -> handler: names torch exports from several modules
IN_PACKAGE = {
    ("torch", "DistributedDataParallel"): _ddp, ("torch", "DataParallel"): _ddp,
    ("torch", "autocast"): lambda it, call, qual: training.autocast(it, call, qual),
    ("torch", "GradScaler"): _grad_scaler,
}
EMA_HELPERS = frozenset({"ModelEma", "ModelEmaV2", "ModelEmaV3", "AveragedModel", "ExponentialMovingAverage", "EMA"})


def lookup(qual: str) -> Handler | None:
    handler = EXACT.get(qual)
    if handler is not None:
        return handler
    root, last = qual.split(".")[0], qual.rsplit(".", 1)[-1]
    if root == "lightly":
        return lambda it, call, qual: lightly.call(it, qual, call)
    for prefix, family in PREFIXES:
        if qual.startswith(prefix):
            return family
    handler = IN_PACKAGE.get((root, last))
    if handler is not None:
        return handler
    if last in EMA_HELPERS or last.startswith("_foreach_"):
        return _ema_helper
    return None
