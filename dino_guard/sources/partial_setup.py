"""From what the interpreter saw to a partial Setup: values, positions, known fields.

A field is filled only when the script determines it: every object that
could provide it agrees on one constant. Anything else stays out of `known`,
so the rules that need it stay silent. Inside a section that is known as a
whole (a backbone from the table), a field the script leaves open is listed
in `unknown`: a timm call's `**cfg` the reader cannot see into may set
dynamic_img_size or patch_size, so the crop rules that need them stay silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dino_guard.sources import lightly_api as api
from dino_guard.sources.interp import descendants
from dino_guard.sources.interp.values import Obj, Seq, is_const
from dino_guard.sources.library.data import loader_transform
from dino_guard.sources.library.trace import DinoTrace as Trace
from dino_guard.sources.roles import Roles

UNKNOWN_BACKBONE = "the backbone"  # schema filler when the name is not certain; reads as plain words in a message
_NOT_AGREED = object()
_FP32_UNSURE = frozenset({"accelerate", "deepspeed", "lightning_fabric", "apex", "composer"})
# What a backbone call's unseen **kwargs may set: which input sizes the model takes (DG301, DG302, DG303 need them).
OPEN_BY_KWARGS = ("model.backbone.dynamic_img_size", "model.backbone.patch_size")


@dataclass
class Built:
    data: dict = field(default_factory=lambda: {"model": {"backbone": {"name": UNKNOWN_BACKBONE}}})
    positions: dict = field(default_factory=dict)
    known: set = field(default_factory=set)
    unknown: set = field(default_factory=set)  # fields left open inside a known section
    epochs: int | None = None  # training length, for the script checks
    trained_by: str = "the script"  # who sets that length: the script, or the file that imports and trains it

    def put(self, dotted: str, value: Any, pos: tuple, known: bool = True) -> None:
        parts = dotted.split(".")
        section = self.data
        for part in parts[:-1]:
            section = section.setdefault(part, {})
        section[parts[-1]] = value
        self.positions[tuple(parts)] = pos
        if known:
            self.known.add(dotted)

    def place(self, dotted: str, pos: tuple) -> None:
        self.positions.setdefault(tuple(dotted.split(".")), pos)


def agreed(values: list) -> Any:
    """The one constant all values equal, or _NOT_AGREED."""
    if not values or not all(is_const(v) for v in values):
        return _NOT_AGREED
    first = values[0]
    if all(type(v) is type(first) and v == first for v in values):
        return first
    return _NOT_AGREED


def build(trace: Trace, roles: Roles) -> Built:
    built = Built()
    pair = DinoPair(trace)
    _backbone(built, _used(trace, pair.only(trace.of_kind("backbone"))), trace, roles)
    _section(built, "model.head", _students(_used(trace, trace.of_kind("head")), roles), api.HEAD_FIELDS)
    called_losses = {id(c.loss) for c in trace.loss_calls}
    losses = [o for o in trace.of_kind("loss") if id(o) in called_losses] or trace.of_kind("loss")
    _section(built, "loss", losses, api.LOSS_FIELDS, hidden=("warmup_teacher_temp_epochs",))
    loaders = _training_loaders(trace)
    _transform(built, trace, loaders)
    _loader_facts(built, loaders)
    _train_facts(built, trace, pair)
    _momentum(built, pair.only(trace.momentum_calls))
    _train_section(built, trace)
    _method(built, trace, pair)
    return built


def head_views(trace: Trace, roles: Roles) -> list[Built]:
    """One partial setup per head call the run uses, each with the backbones of its role.

    `build` judges the students' heads together; a teacher head (lightly's
    `teacher_head = DINOProjectionHead(...)`, a second call with its own
    arguments) runs a forward too, and its first step fails the same way. Each
    view holds the head's own values and positions, so a rule about the head
    reports every wrong call where it is written. The teacher's head meets the
    teacher's backbones when the script builds them apart (else all backbones).
    Only the head, backbone and method sections are filled: the rules that run
    on a view are those about the head (check/engine.py).
    """
    pair = DinoPair(trace)
    heads = _used(trace, trace.of_kind("head"))
    if len(heads) < 2:
        return []  # `build` already judges the one head
    backbones = _used(trace, pair.only(trace.of_kind("backbone")))
    teachers = [b for b in backbones if roles.in_teacher(b)]
    students = [b for b in backbones if not roles.in_teacher(b)]
    views = []
    for head in heads:
        view = Built()
        _backbone(view, (teachers if roles.in_teacher(head) else students) or backbones, trace, roles)
        _section(view, "model.head", [head], api.HEAD_FIELDS)
        _method(view, trace, pair)
        views.append(view)
    return views


def _method(built: Built, trace: Trace, pair: DinoPair) -> None:
    """DINOv2 when the DINO model's classes build DINOv2's parts: iBOT's loss, KoLeo, DINOv2ProjectionHead."""
    parts = pair.only(trace.of_kind("ibot_loss") + trace.of_kind("koleo_loss")
                      + [h for h in trace.of_kind("head") if h.fact("dinov2")])
    if parts:
        built.put("method", "dinov2", min(o.pos for o in parts))


class DinoPair:
    """The script classes that build DINO's head or loss.

    Benchmark modules define DINO next to MSN, BYOL or MoCo, each with its own
    backbone, optimizer and update_momentum: only the DINO classes' values (and
    those made outside any class) describe the DINO run.
    """

    def __init__(self, trace: Trace):
        self.scopes = {id(o.scope) for o in trace.of_kind("head") + trace.of_kind("loss") if o.scope is not None}

    def only(self, items: list) -> list:
        if not self.scopes:
            return items
        return [i for i in items if i.scope is None or id(i.scope) in self.scopes]


def _used(trace: Trace, objs: list) -> list:
    """The objects some forward call reaches (a backbone built but never run does not train).

    None when one of them is only an alternative (if/else, try/except) to something of
    another kind: which one the script uses is not certain.
    """
    reached = {id(o) for called, _ in trace.calls for o in descendants(called)}
    used = [o for o in objs if id(o) in reached] or objs
    if any(not _certain(o) for o in used):
        return []
    return used


def _certain(obj: Obj) -> bool:
    """Not an alternative, or every alternative is the same kind of object (the facts then decide)."""
    return obj.alternatives is None or all(isinstance(v, Obj) and v.kind == obj.kind for v in obj.alternatives)


def _students(heads: list, roles: Roles) -> list:
    """Heads that are not only the teacher's (a teacher head's settings do not train)."""
    students = [h for h in heads if not roles.is_teacher(h)]
    return students or heads


def _section(built: Built, prefix: str, objs: list, fields: tuple, hidden: tuple = ()) -> None:
    if not objs:
        return
    built.place(prefix, objs[0].pos)
    for name in fields:
        if any(name not in o.facts for o in objs):
            continue  # an argument one of the classes does not have (DINOv2ProjectionHead: no freeze_last_layer)
        value = agreed([o.fact(name) for o in objs])
        if value is not _NOT_AGREED:
            built.put(f"{prefix}.{name}", value, objs[0].facts[name][1], known=name not in hidden)


def _backbone(built: Built, objs: list, trace: Trace, roles: Roles) -> None:
    if not objs:
        return
    name = agreed([o.fact("name") for o in objs])
    width = agreed([o.fact("feature_dim") for o in objs])
    patch = agreed([o.fact("patch_size") for o in objs])
    in_table = all(o.fact("in_table") for o in objs)
    first = objs[0]
    built.place("model.backbone", first.pos)
    if isinstance(name, str):
        built.put("model.backbone.name", name, first.facts["name"][1])
    # resnet50 or wide_resnet50_2: 2048 either way
    if isinstance(width, int) and (not in_table or not isinstance(name, str)):
        built.put("model.backbone.feature_dim", width, first.facts["feature_dim"][1])
        if isinstance(patch, int):
            built.put("model.backbone.patch_size", patch, first.facts["patch_size"][1])
    for key in ("pretrained", "drop_path_rate"):
        value = agreed([o.fact(key) for o in objs])
        if value is not _NOT_AGREED and value is not None:
            built.put(f"model.backbone.{key}", value, first.facts[key][1])
    _dynamic_img_size(built, objs, trace, roles)
    if any(o.fact("open_kwargs") for o in objs):
        built.unknown.update(OPEN_BY_KWARGS)
    if (isinstance(name, str) and in_table) or (isinstance(width, int) and width > 0):
        built.known.add("model.backbone")


def _dynamic_img_size(built: Built, objs: list, trace: Trace, roles: Roles) -> None:
    """dynamic_img_size of the backbones the local crops reach.

    A teacher fed only the global views (lightly's `teacher(v) for v in
    views[:2]`) never sees a local crop, so only the students count, unless a
    loss call certainly gives the teacher more than the two global views.
    Backbones that disagree (one built with it, one without) leave the field
    open when the reader cannot tell which one the crops reach.
    """
    students = [o for o in objs if not roles.is_teacher(o)]
    teachers_too = len(students) < len(objs) and _teacher_sees_local_views(trace)
    cropped = objs if teachers_too or not students else students
    values = [o.fact("dynamic_img_size") for o in cropped]
    value = agreed(values)
    if isinstance(value, bool):
        built.put("model.backbone.dynamic_img_size", value, cropped[0].facts["dynamic_img_size"][1])
    elif len({v is True for v in values}) > 1 and not teachers_too:
        built.unknown.add("model.backbone.dynamic_img_size")
    _keyword_place(built, cropped)


def _teacher_sees_local_views(trace: Trace) -> bool:
    return any(isinstance(c.teacher, Seq) and c.teacher.length is not None and c.teacher.length > 2
               for c in trace.loss_calls)


def _keyword_place(built: Built, objs: list) -> None:
    """Where dynamic_img_size=True would be written when the script leaves it out (DG302's fix):
    the timm call that builds the first backbone without it."""
    calls = [o.facts["timm_call"][1] for o in objs if "timm_call" in o.facts and o.fact("dynamic_img_size") is not True]
    if calls:
        built.place("model.backbone.dynamic_img_size", calls[0])


def _training_loaders(trace: Trace) -> list:
    loaders = list({id(loader): loader for loader in trace.train_loaders}.values())
    if not loaders:
        every = trace.of_kind("dataloader")
        loaders = every if len(every) == 1 else []
    return loaders


def _transform(built: Built, trace: Trace, loaders: list) -> None:
    choices = [(loader_transform(loader), loader) for loader in loaders]
    if not choices:
        makers = trace.of_kind("transform") + trace.of_kind("dino_collate")
        choices = [(m, None) for m in makers]
    first = choices[0][0] if choices else None
    if choices and any(c is not first for c, _ in choices):
        return
    if choices and first is None:
        dataset = choices[0][1].fact("dataset")
        built.put("transform", None, dataset.facts["transform"][1])
    elif isinstance(first, Obj) and first.kind in ("transform", "dino_collate"):
        _transform_fields(built, first)
    elif not trace.of_kind("transform") and not trace.of_kind("dino_collate"):
        _hand_written_crops(built, trace)


def _hand_written_crops(built: Built, trace: Trace) -> None:
    """A multi-crop transform written by hand with torchvision's RandomResizedCrop: two crop sizes, the larger
    global and the smaller local, each with one scale. Only the scales are stated (what DG304 compares);
    anything not constant, a third size or disagreeing scales leave the transform unknown."""
    crops = {}
    for crop in trace.of_kind("crop"):
        size, scale = _square(crop.fact("size")), crop.fact("scale")
        if size is None or not (isinstance(scale, tuple) and len(scale) == 2 and all(_number(s) for s in scale)):
            return
        crops.setdefault(size, set()).add((scale, crop.facts["scale"][1]))
    if len(crops) != 2 or any(len({s for s, _ in found}) != 1 for found in crops.values()):
        return
    (local_scale, local_pos), = crops[min(crops)]
    (global_scale, global_pos), = crops[max(crops)]
    built.put("transform.global_crop_scale", list(global_scale), global_pos)
    built.put("transform.local_crop_scale", list(local_scale), local_pos)


def _square(size: Any) -> int | None:
    if isinstance(size, tuple) and len(size) == 2 and size[0] == size[1]:
        size = size[0]
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 0 else None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _transform_fields(built: Built, maker: Obj) -> None:
    built.place("transform", maker.pos)
    resolved = True
    for name in api.TRANSFORM_FIELDS:
        if name not in maker.facts:
            resolved = resolved and name not in api.TRANSFORM_CORE  # LightlyTrain's transform_args name only some
            continue
        value = maker.fact(name)
        value = list(value) if isinstance(value, tuple) else value
        if is_const(maker.fact(name)):
            built.put(f"transform.{name}", value, maker.facts[name][1])
        elif name in api.TRANSFORM_CORE:
            resolved = False
    if resolved:
        built.known.add("transform")


def _loader_facts(built: Built, loaders: list) -> None:
    for key, dotted in (("batch_size", "train.batch_size"), ("num_workers", "data.num_workers")):
        values = [loader.fact(key) for loader in loaders if key in loader.facts]
        value = agreed(values) if len(values) == len(loaders) else _NOT_AGREED
        if isinstance(value, int) and not isinstance(value, bool):
            built.put(dotted, value, loaders[0].facts[key][1])


def _train_facts(built: Built, trace: Trace, pair: DinoPair) -> None:
    epochs = agreed([e for e, _ in trace.epochs])
    if isinstance(epochs, int) and not isinstance(epochs, bool):
        built.put("train.epochs", epochs, trace.epochs[0][1])
        built.epochs = epochs
    _precision(built, trace)
    for trainer in trace.of_kind("trainer"):
        for key in ("devices", "num_nodes", "accumulate_grad_batches"):
            value = trainer.fact(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                built.put(f"train.{key}", value, trainer.facts[key][1])
    optimizers = pair.only(trace.of_kind("optimizer"))
    names = agreed([o.fact("name") for o in optimizers])
    if isinstance(names, str):
        built.put("optimizer.name", names, optimizers[0].pos)


def _precision(built: Built, trace: Trace) -> None:
    if trace.precisions:
        value = agreed([p for p, _ in trace.precisions])
        if isinstance(value, str):
            built.put("train.precision", value, trace.precisions[0][1])
        return
    if trace.training_loop and trace.grad_scaler is None and not (trace.imported & _FP32_UNSURE):
        loaders = trace.train_loaders
        built.put("train.precision", "fp32", loaders[0].pos if loaders else (1, 1))


def _momentum(built: Built, calls: list) -> None:
    starts, ends, pos = [], [], None
    for call in calls:
        m = call.m
        if isinstance(m, Obj) and m.kind == "schedule":
            starts.append(m.fact("start"))
            ends.append(m.fact("end"))
        else:
            starts.append(m)
            ends.append(m)
        pos = pos or call.pos
    start, end = agreed(starts), agreed(ends)
    if _fraction(start) and _fraction(end):
        built.put("teacher_momentum.start", float(start), pos)
        built.put("teacher_momentum.end", float(end), pos)
        built.known.add("teacher_momentum")


def _fraction(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# What the memory estimate reads besides the batch: a "train" known as a whole must not rest on defaults.
_TRAIN_NEEDS = ("train.batch_size", "train.precision", "train.devices", "optimizer.name", "model.head.input_dim",
                "model.head.hidden_dim", "model.head.bottleneck_dim", "model.head.output_dim", "model.head.batch_norm")


def _train_section(built: Built, trace: Trace) -> None:
    """Mark `train` known when the per-device step is fully determined (memory rules, DG601/DG602)."""
    if ("train.devices" not in built.known and not trace.distributed and not trace.of_kind("trainer")
            and trace.training_loop):
        # a plain loop on one device
        built.put("train.devices", 1, built.positions.get(("train", "batch_size"), (1, 1)))
    if all(name in built.known for name in _TRAIN_NEEDS):
        built.known.add("train")
