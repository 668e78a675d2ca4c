"""What the evaluator records while it walks a program: the names objects are bound to, and the
objects a library made. A library extends Trace with its own records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dino_guard.sources.interp.values import Obj, Position


@dataclass
class Binding:
    """An object bound to a name or attribute: `self.encoder = ...`."""

    text: str  # the target as written, e.g. "self.encoder"
    obj: Obj
    pos: Position
    scope: Any = None  # the frame or object the name lives in: the same text in two classes is two bindings

    @property
    def key(self) -> tuple:
        return (id(self.scope), self.text.rsplit(".", 1)[-1])


@dataclass
class Trace:
    objects: list = field(default_factory=list)  # every library object made (Obj), in order
    object_ids: set = field(default_factory=set)
    bindings: list = field(default_factory=list)
    # position of a name read -> span of the literal its value was written as
    origins: dict = field(default_factory=dict)

    def record(self, obj: Obj, scope: Any = None) -> Obj:
        """Remember an object a library call made, and the script class whose method made it."""
        obj.scope = scope
        self.objects.append(obj)
        self.object_ids.add(id(obj))
        return obj

    def of_kind(self, kind: str) -> list:
        return [o for o in self.objects if o.kind == kind]
