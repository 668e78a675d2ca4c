"""Calls into the program's own functions and classes: bind the arguments, run the body, merge the returns."""

from __future__ import annotations

import ast
from typing import Any

from dino_guard.sources.interp.frames import Frame
from dino_guard.sources.interp.values import Cls, Func, Obj, Seq, is_const, opaque

MAX_DEPTH = 12  # nested calls
MAX_CALLS_PER_FUNC = 6


class ScriptCallsMixin:
    def call_func(self, func: Func, args: list, kwargs: dict, self_obj: Obj | None = None,
                  unknown_args: bool = False, origins: tuple | None = None) -> Any:
        if self.depth >= MAX_DEPTH or func.calls >= MAX_CALLS_PER_FUNC:
            return opaque(self.pos(func.node))
        func.calls += 1
        frame = Frame(self.globals, {}, self_obj, func.owner)
        self._bind_params(func.node.args, args, kwargs, frame, self_obj, unknown_args)
        self._bind_origins(func.node.args, len(args), kwargs, frame, self_obj, origins)
        self.depth += 1
        self.contexts.extend(func.decorators)  # @decorator(...): the body runs inside it
        self.scopes.append(func.owner or self.scope())
        self.func_names.append(func.node.name)
        self.call_sites.append(self.call_site)
        try:
            self.exec_block(func.node.body, frame)
        finally:
            self.depth -= 1
            del self.contexts[len(self.contexts) - len(func.decorators):]
            self.scopes.pop()
            self.func_names.pop()
            self.call_sites.pop()
        if _is_generator(func.node):
            return opaque(self.pos(func.node))
        return _merge_returns(frame.returns, self.pos(func.node))

    def _bind_params(self, spec: ast.arguments, args: list, kwargs: dict, frame: Frame,
                     self_obj: Obj | None, unknown_args: bool) -> None:
        positional = spec.posonlyargs + spec.args
        if self_obj is not None and positional:
            frame.locals[positional[0].arg] = self_obj
            positional = positional[1:]
        defaults = [None] * (len(positional) - len(spec.defaults)) + list(spec.defaults)
        # not strict: a default on `self` (def f(self=None)) leaves one default more than the parameters bound here
        for index, (param, default) in enumerate(zip(positional, defaults, strict=False)):
            if index < len(args):
                frame.locals[param.arg] = args[index]
            else:
                frame.locals[param.arg] = self._keyword_or_default(param, default, kwargs, unknown_args)
        for param, default in zip(spec.kwonlyargs, spec.kw_defaults, strict=True):
            frame.locals[param.arg] = self._keyword_or_default(param, default, kwargs, unknown_args)
        if spec.vararg:
            frame.locals[spec.vararg.arg] = Seq()
        if spec.kwarg:
            frame.locals[spec.kwarg.arg] = opaque(self.pos(spec.kwarg))

    def _bind_origins(self, spec: ast.arguments, n_args: int, kwargs: dict, frame: Frame, self_obj: Obj | None,
                      origins: tuple | None) -> None:
        """Each parameter's origin: the literal (or the name's origin) the caller passed, or its literal default."""
        positional = (spec.posonlyargs + spec.args)[1 if self_obj is not None else 0:]
        passed, named = origins if origins is not None else ([], {})
        defaults = [None] * (len(positional) - len(spec.defaults)) + list(spec.defaults)
        params = (list(zip(positional, defaults, strict=False))
                  + list(zip(spec.kwonlyargs, spec.kw_defaults, strict=False)))
        for index, (param, default) in enumerate(params):
            if index < n_args and index < len(positional):
                span = passed[index] if index < len(passed) else None
            elif param.arg in kwargs:
                span = named.get(param.arg)
            else:
                span = self.literal_span(default)
            self.note_written(param.arg, span, frame.locals)

    def _keyword_or_default(self, param: ast.arg, default: ast.AST | None, kwargs: dict, unknown_args: bool) -> Any:
        if param.arg in kwargs:
            return kwargs[param.arg]
        if default is not None and not unknown_args:
            return self.eval(default, Frame(self.globals))
        return opaque(self.pos(param))

    def instantiate(self, cls: Cls, args: list, kwargs: dict, pos: tuple, unknown_args: bool = False,
                    origins: tuple | None = None) -> Obj:
        obj = Obj("instance", pos, cls=cls)
        self.library.on_instance(self, obj)
        cls.instances += 1
        self.instances.append(obj)
        init = find_method(cls, "__init__")
        if init is not None:
            self.call_func(init, args, kwargs, self_obj=obj, unknown_args=unknown_args, origins=origins)
        return obj


def _merge_returns(values: list, pos: tuple) -> Any:
    if not values:
        return None
    first = values[0]
    if all(v is first or (is_const(v) and is_const(first) and v == first) for v in values):
        return first
    return opaque(pos)


def _is_generator(func: ast.AST) -> bool:
    cached = getattr(func, "_dg_generator", None)
    if cached is None:
        cached = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in own_nodes(func))
        func._dg_generator = cached  # the tree lives as long as this analysis
    return cached


def own_nodes(func: ast.AST):
    """Nodes of a function's (or a loop's) body, not descending into nested functions or classes."""
    stack = list(func.body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(child)


def all_bases(cls: Cls, seen: set | None = None) -> list:
    seen = seen if seen is not None else set()
    if id(cls) in seen:
        return []
    seen.add(id(cls))
    out = []
    for base in cls.bases:
        out.append(base)
        if isinstance(base, Cls):
            out.extend(all_bases(base, seen))
    return out


def find_method(cls: Cls, name: str) -> Func | None:
    for owner in [cls] + [b for b in all_bases(cls) if isinstance(b, Cls)]:
        if name in owner.methods:
            return owner.methods[name]
    return None


def descendants(obj: Obj) -> list:
    """obj and every object reachable through its attributes and parts."""
    out, stack, seen = [], [obj], set()
    while stack:
        item = stack.pop()
        if id(item) in seen or not isinstance(item, Obj):
            continue
        seen.add(id(item))
        out.append(item)
        stack.extend(item.children())
    return out
