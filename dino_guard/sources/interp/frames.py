"""Name scopes of the evaluator: a frame per module, function call or comprehension."""

from __future__ import annotations

from typing import Any

MISSING = object()  # a name no scope binds


class OutOfBudget(Exception):
    """The program is too large or too deeply nested to follow."""


class Frame:
    def __init__(self, globals_: dict, locals_: dict | None = None, self_obj: Any = None, owner: Any = None):
        self.globals = globals_
        self.locals = globals_ if locals_ is None else locals_
        self.self_obj = self_obj  # the object a method runs on
        self.owner = owner  # the class whose method runs
        self.returns: list = []

    def lookup(self, name: str) -> Any:
        if name in self.locals:
            return self.locals[name]
        return self.globals.get(name, MISSING)

    def child(self) -> Frame:
        """A scope for a comprehension: sees this frame, binds its own targets."""
        return Frame(self.globals, dict(self.locals), self.self_obj, self.owner)
