"""What the evaluator asks a library: the meaning of calls, attributes and loops it cannot know.

The evaluator (this package) knows Python only. Everything a library means,
from what a constructor returns to which `with` turns gradients off, comes
through one object with these methods; `PlainPython` is the library that
knows nothing, so the evaluator runs on its own (tests, other readers).
Each method returns None (or False) for "not mine: do the plain thing".
"""

from __future__ import annotations

import ast
from typing import Any

from dino_guard.sources.interp.trace import Trace
from dino_guard.sources.interp.values import Obj, opaque


class PlainPython:
    builtins: dict = {}  # extra builtins by name, over the evaluator's own

    def new_trace(self) -> Trace:
        return Trace()

    def on_import(self, it, qual: str, pos: tuple) -> None:
        """A module or name was imported (`qual` fully qualified)."""

    def call_ref(self, it, qual: str, call, frame) -> Any:
        """A call of an imported name: its value."""
        return opaque(call.pos)

    def call_method(self, it, bound, call) -> Any:
        """A method of a library object: its value."""
        return opaque(call.pos)

    def call_object(self, it, obj: Obj, call) -> Any:
        """Calling a library object (or an object of a script class): its value."""
        return opaque(call.pos)

    def attribute(self, it, obj: Obj, name: str, node: ast.AST) -> Any:
        """An attribute a library object has without the script assigning it, or None."""
        return None

    def set_attribute(self, it, obj: Obj, name: str, value: Any, pos: tuple) -> bool:
        """`obj.name = value`; True when the library consumed it (the attribute is not stored)."""
        return False

    def follows(self, callee: Any) -> bool:
        """Whether the library knows all a call of callee does to its arguments."""
        return False

    def on_unfollowed(self, it, values: list) -> None:
        """Arguments handed to code nobody follows."""

    def bindable(self, value: Any) -> bool:
        """Whether a binding of value to a name is worth recording (modules, not tensors)."""
        return isinstance(value, Obj) and value.kind != "opaque"

    def unpack(self, it, value: Any, count: int, node: ast.AST) -> list | None:
        """`a, b, c = value` for a library value, or None."""
        return None

    def subscript(self, it, base: Any, index: Any, node: ast.AST) -> Any:
        """`base[index]` for a library value, or None."""
        return None

    def iterate(self, it, iterable: Any, node: ast.AST) -> Any:
        """The value a loop target gets from a library iterable, or None."""
        return None

    def enter_loop(self, it, iterable: Any) -> Any:
        """A for-loop starts; what it returns comes back to exit_loop."""
        return None

    def exit_loop(self, it, state: Any) -> None:
        """The loop's body ran once."""

    def star_name(self, it, name: str, modules: list) -> Any:
        """A name the file never binds, after `from m import *` of `modules`: its value, or None (unknown)."""
        return None

    def on_instance(self, it, obj: Obj) -> None:
        """An object of a script class was made (its __init__ has not run yet)."""
