"""Abstract values the script interpreter computes.

A value is either a Python constant (int, float, str, bool, None, or a tuple
of constants), or one of the records below. Whatever the analysis cannot
determine becomes a fresh `Obj(kind="opaque")`: fresh so that two unknown
things are never mistaken for the same object (`a is b`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CONST_TYPES = (int, float, str, bool, type(None), bytes)

Position = tuple  # (line, column), both 1-based


def is_const(value: Any) -> bool:
    if isinstance(value, tuple):
        return all(is_const(v) for v in value)
    return isinstance(value, CONST_TYPES)


@dataclass(eq=False)
class Obj:
    """A runtime object: a module, dataset, loss, tensor or something unknown.

    `facts` holds constructor arguments as name -> (value, position of the
    argument or of the call when the default applies). `attrs` holds Python
    attributes assigned on it (self.head = ...). `kind` is the library's word
    for what it is ("opaque" for unknown).
    """

    kind: str
    pos: Position = (1, 1)
    facts: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    cls: Any = None  # a Cls for instances of a class defined in the script
    parts: list = field(default_factory=list)  # child modules (nn.Sequential(a, b), DDP(m))
    alternatives: list | None = None  # the values branches disagree between (try/except, if/else), itself included
    scope: Any = None  # the script class whose method created it: one file may define several models

    def fact(self, name: str, default: Any = None) -> Any:
        entry = self.facts.get(name)
        return entry[0] if entry is not None else default

    def children(self) -> list:
        """Objects whose parameters .parameters() of this one includes."""
        return [v for v in self.attrs.values() if isinstance(v, Obj)] + [p for p in self.parts if isinstance(p, Obj)]


class Scaled(float):
    """A float computed from a batch size (`base_lr * batch_size / 256`): a script's own scaling rule."""

    __slots__ = ()


def opaque(pos: Position = (1, 1)) -> Obj:
    return Obj("opaque", pos)


@dataclass(eq=False)
class Seq:
    """A list or tuple of non-constants; `max_len` is an upper bound on its length."""

    items: list | None = None
    max_len: int | None = None
    sample: Any = None  # what one element is, for a comprehension: [f(v) for v in items]
    pos: tuple | None = None  # where the comprehension is written

    @property
    def length(self) -> int | None:
        return len(self.items) if self.items is not None else None

    def elements(self) -> list:
        """The element values known: the items, or the one sample of a comprehension."""
        if self.items is not None:
            return list(self.items)
        return [self.sample] if self.sample is not None else []


@dataclass(eq=False)
class DictVal:
    items: dict = field(default_factory=dict)  # constant key -> value
    complete: bool = True  # every key is in items: a `**` of it passes exactly these keywords


@dataclass(frozen=True)
class Ref:
    """A name imported from a module: 'os.path.join'."""

    qual: str


@dataclass(frozen=True)
class Range:
    stop: Any  # a constant int or an Obj


@dataclass(eq=False)
class Func:
    node: Any  # ast.FunctionDef
    owner: Any = None  # the Cls whose method this is
    decorators: list = field(default_factory=list)  # evaluated decorators: contexts the body runs in
    calls: int = 0


@dataclass(eq=False)
class Cls:
    node: Any  # ast.ClassDef
    bases: list = field(default_factory=list)  # evaluated base classes (Cls or Ref)
    methods: dict = field(default_factory=dict)  # name -> Func
    instances: int = 0


@dataclass(eq=False)
class Bound:
    """A method read from an object: a script method (func) or a library one (name)."""

    obj: Obj
    name: str
    func: Func | None = None


@dataclass(eq=False)
class Params:
    """model.parameters(): the parameters of `owners` (a list of Obj)."""

    owners: list


@dataclass(eq=False)
class Children:
    """list(model.children())[:-drop]."""

    owner: Obj
    drop: int = 0
