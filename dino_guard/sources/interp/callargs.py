"""A call as the interpreter sees it: evaluated arguments, their nodes, and how to bind them."""

from __future__ import annotations

import ast
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dino_guard.sources.interp.values import opaque

ABSENT = object()  # an argument not written in the call


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
