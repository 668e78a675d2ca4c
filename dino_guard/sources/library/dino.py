"""The DINO library: what lightly, timm/torchvision, torch data, Lightning and LightlyTrain mean to the evaluator.

It implements the evaluator's hooks (dino_guard.sources.interp.hooks) and keeps
what it learns in a DinoTrace: who is frozen, which loops train, what the
loss and update_momentum are called with.
"""

from __future__ import annotations

import ast
from typing import Any

from dino_guard.sources.interp.callargs import Builtin, Call
from dino_guard.sources.interp.hooks import PlainPython
from dino_guard.sources.interp.scripts import descendants
from dino_guard.sources.interp.values import Bound, Children, Obj, Params, Ref, Seq, is_const, opaque
from dino_guard.sources.library import data, lightning, methods, models, table
from dino_guard.sources.library.trace import DinoTrace

FOLLOWED_PACKAGES = ("torch", "torchvision", "timm", "lightly", "copy", "pytorch_lightning", "lightning")
CLASSIFIERS = frozenset({"fc", "head", "heads", "classifier", "last_linear"})
UNBOUND_KINDS = frozenset({"opaque", "tensor", "epoch", "batch", "param", "range_index"})
EVALUATION_LOOP = "a loop under torch.no_grad() that never steps an optimizer"


def _zip(it, call: Call, frame) -> Any:
    if sum(isinstance(a, Params) for a in call.args) >= 2:
        it.trace.ema_by_hand = True  # zip(student.parameters(), teacher.parameters()): an EMA written by hand
    return opaque(call.pos)


class DinoLibrary(PlainPython):
    builtins = {"zip": Builtin(_zip)}

    def __init__(self):
        self.loader_loops: list = []  # per enclosing loop over a DataLoader: the teacher updates seen in it
        self.train_steps = 0  # backward() and optimizer.step() calls seen: a training loop from an evaluation one

    def new_trace(self) -> DinoTrace:
        return DinoTrace()

    def on_import(self, it, qual: str, pos: tuple) -> None:
        if qual == "lightly" or qual.startswith("lightly."):
            it.trace.lightly_refs.setdefault(qual, pos)
        it.trace.imported.add(qual.split(".")[0])
        if "distributed" in qual or "DataParallel" in qual:
            it.trace.distributed = True  # torchrun/DDP: the number of devices is not in the script

    def call_ref(self, it, qual: str, call: Call, frame) -> Any:
        handler = table.lookup(qual)
        if handler is not None:
            return handler(it, call, qual)
        return data.foreign_dataset(it, call)

    def call_method(self, it, bound: Bound, call: Call) -> Any:
        return methods.call_method(it, bound, call)

    def call_object(self, it, obj: Obj, call: Call) -> Any:
        return methods.call_object(it, obj, call)

    def attribute(self, it, obj: Obj, name: str, node: ast.AST) -> Any:
        return methods.attribute(it, obj, name, node)

    def set_attribute(self, it, obj: Obj, name: str, value: Any, pos: tuple) -> bool:
        if name == "requires_grad" and obj.kind == "param" and value is False:
            self.freeze(it, obj.parts)  # for p in teacher.parameters(): p.requires_grad = False
            return True
        if obj.kind == "dataset" and name == "transform":
            obj.facts["transform"] = (value, pos)
        if obj.kind == "backbone" and name in CLASSIFIERS and not (isinstance(value, Obj) and value.kind == "identity"):
            obj.kind = "module"  # resnet.fc = nn.Linear(2048, 256): the output width is no longer the table's
        return False

    def follows(self, callee: Any) -> bool:
        if isinstance(callee, Bound):
            return callee.name in methods.KNOWN_METHODS or callee.name in methods.SELF_METHODS
        if isinstance(callee, Ref):
            return callee.qual.split(".")[0] in FOLLOWED_PACKAGES
        return isinstance(callee, Obj) and callee.kind != "opaque"

    def on_unfollowed(self, it, values: list) -> None:
        """A helper from another module may freeze (or update) the modules it gets."""
        for value in values:
            if isinstance(value, Obj) and value.kind not in ("opaque", "tensor", "batch", "epoch"):
                it.trace.maybe_frozen.update(id(o) for o in descendants(value))

    def bindable(self, value: Any) -> bool:
        return isinstance(value, Obj) and value.kind not in UNBOUND_KINDS

    def unpack(self, it, value: Any, count: int, node: ast.AST) -> list | None:
        if isinstance(value, Obj) and value.kind == "batch":  # (views, labels, filenames) = batch
            return [self.views_of(value)] + [opaque(it.pos(node)) for _ in range(count - 1)]
        if isinstance(value, Obj) and value.kind == "param":
            return [value] * count  # for name, p in teacher.named_parameters()
        return None

    def subscript(self, it, base: Any, index: Any, node: ast.AST) -> Any:
        if isinstance(base, Obj) and base.kind == "batch" and index == 0:
            return self.views_of(base)
        if isinstance(base, Children) and base.drop == 0 and index == -1:
            return models.last_child(base.owner, it.pos(node))
        return None

    def iterate(self, it, iterable: Any, node: ast.AST) -> Any:
        target = getattr(node, "target", node)
        if isinstance(iterable, Obj) and iterable.kind == "dataloader":
            return Obj("batch", it.pos(target), attrs={"loader": iterable})
        if isinstance(iterable, Params):
            return Obj("param", it.pos(target), parts=list(iterable.owners))
        return None

    def views_of(self, batch: Obj) -> Seq:
        """The views a DataLoader batch holds: 2 global + n_local with DINOTransform."""
        loader = batch.attrs.get("loader")
        return Seq(None, data.view_count(loader) if isinstance(loader, Obj) else None)

    def enter_loop(self, it, iterable: Any) -> Any:
        loader = _loader_of(iterable)
        if loader is None:
            return None
        self.loader_loops.append([])
        return loader, self.train_steps, self.gradient_off(it)

    def exit_loop(self, it, state: Any) -> None:
        """A loop over a DataLoader that steps an optimizer trains; one entirely under no_grad evaluates."""
        if state is None:
            return
        loader, steps_before, gradient_off = state
        updates = self.loader_loops.pop()
        if self.train_steps > steps_before:
            it.trace.training_loop = True
            it.trace.train_loaders.append(loader)
            if it.ranges and is_const(it.ranges[-1][0]):
                it.trace.epochs.append(it.ranges[-1])
        elif gradient_off:
            for update in updates:
                update.evaluation = update.evaluation or EVALUATION_LOOP

    def star_name(self, it, name: str, modules: list) -> Any:
        """A name only a star import can have bound.

        A followed package's own name (`torchvision` after `from helpers import *`) is that
        package, re-exported by the helper's `import torchvision`. Any other name is the
        star-imported module's only when there is one such module and it is in a followed
        package (`from lightly.loss import *` then `DINOLoss`); otherwise it stays unknown.
        """
        if name in FOLLOWED_PACKAGES:
            return Ref(name)
        if len(modules) == 1 and modules[0].split(".")[0] in FOLLOWED_PACKAGES:
            # not an import the removed-API check may judge: the name may be defined elsewhere
            return Ref(f"{modules[0]}.{name}")
        return None

    def on_instance(self, it, obj: Obj) -> None:
        lightning.mark_module(it, obj)

    def gradient_off(self, it) -> bool:
        """Inside `with torch.no_grad()`, a @torch.no_grad() function, or a Lightning evaluation hook."""
        return any(isinstance(c, Obj) and c.kind == "no_grad" for c in it.contexts) \
            or lightning.evaluation_method(it) is not None

    def freeze(self, it, owners: list) -> None:
        for owner in owners:
            for obj in descendants(owner):
                it.trace.frozen.add(id(obj))

    def note_teacher_update(self, update) -> None:
        """An update of the teacher or the loss centre: judged by the loop it runs in."""
        if self.loader_loops:
            self.loader_loops[-1].append(update)


def _loader_of(iterable: Any) -> Obj | None:
    """The DataLoader a for-loop walks, through enumerate(loader)."""
    while isinstance(iterable, Obj) and iterable.kind == "enumerate":
        iterable = iterable.attrs.get("of")
    return iterable if isinstance(iterable, Obj) and iterable.kind == "dataloader" else None
