"""Expressions of the evaluator: constants, names, attributes, calls, operators, comprehensions."""

from __future__ import annotations

import ast
import operator
from typing import Any

from dino_guard.sources.interp.builtins import BUILTINS
from dino_guard.sources.interp.callargs import Builtin, Call, Starred
from dino_guard.sources.interp.frames import MISSING
from dino_guard.sources.interp.scripts import find_method
from dino_guard.sources.interp.values import (
    Bound,
    Children,
    Cls,
    DictVal,
    Func,
    Obj,
    Params,
    Range,
    Ref,
    Scaled,
    Seq,
    is_const,
    opaque,
)

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
            ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Is: operator.is_, ast.IsNot: operator.is_not}
_MAX_CONST = 10**15  # larger arithmetic results are not configuration: drop them


class ExpressionsMixin:
    def eval(self, node: ast.AST, frame) -> Any:
        self.tick()
        handler = getattr(self, "expr_" + type(node).__name__, None)
        if handler is None:
            for child in ast.iter_child_nodes(node):  # still see calls nested in unknown syntax
                if isinstance(child, ast.expr):
                    self.eval(child, frame)
            return opaque(self.pos(node))
        return handler(node, frame)

    def expr_Constant(self, node: ast.Constant, frame) -> Any:
        return node.value if is_const(node.value) else opaque(self.pos(node))

    def expr_Name(self, node: ast.Name, frame) -> Any:
        value = frame.lookup(node.id)
        if value is not MISSING:
            return value
        builtin = self.library.builtins.get(node.id) or BUILTINS.get(node.id)
        if builtin is not None:
            return builtin
        if self.star_modules:
            given = self.library.star_name(self, node.id, self.star_modules)
            if given is not None:
                return given
        return opaque(self.pos(node))

    def expr_Attribute(self, node: ast.Attribute, frame) -> Any:
        base = self.eval(node.value, frame)
        if isinstance(base, Ref):
            qual = f"{base.qual}.{node.attr}"
            self.library.on_import(self, qual, self.pos(node))
            return Ref(qual)
        if isinstance(base, Obj):
            return self.attribute(base, node.attr, node)
        if isinstance(base, Seq) and node.attr in _MUTATORS:
            _forget_length(base)  # views.append(...): the length is no longer what the literal said
        return opaque(self.pos(node))

    def attribute(self, base: Obj, name: str, node: ast.AST) -> Any:
        if name in base.attrs:
            return base.attrs[name]
        if base.kind == "super":
            owner = base.attrs.get("owner")
            for parent in (b for b in (owner.bases if owner else []) if isinstance(b, Cls)):
                method = find_method(parent, name)
                if method is not None:
                    return Bound(base.attrs["self"], name, method)
            return Bound(base.attrs["self"], "__super__" + name)
        if base.cls is not None:
            method = find_method(base.cls, name)
            if method is not None:
                return Bound(base, name, method)
        given = self.library.attribute(self, base, name, node)
        if given is not None:
            return given
        if base.kind == "opaque":
            return base.attrs.setdefault(name, opaque(self.pos(node)))  # same unknown on every read
        return Bound(base, name)

    def expr_Call(self, node: ast.Call, frame) -> Any:
        callee = self.eval(node.func, frame)
        if (isinstance(node.func, ast.Attribute) and node.func.attr in _MUTATORS
                and isinstance(node.func.value, ast.Name)):
            self._forget_contents(node.func.value, frame.lookup(node.func.value.id), frame)  # views.append(v) in a loop
        args, kwargs, star = [], {}, False
        arg_nodes, kw_nodes = [], {}
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                star = True
                args.append(Starred(self.eval(arg.value, frame)))
            else:
                args.append(self.eval(arg, frame))
            arg_nodes.append(arg)
        for kw in node.keywords:
            value = self.eval(kw.value, frame)
            if kw.arg is None and _spelled_out(value):  # **{"dynamic_img_size": True}: the keywords are known
                kwargs.update(value.items)
                kw_nodes.update(dict.fromkeys(value.items, kw.value))
            elif kw.arg is None:
                star = True
            else:
                kwargs[kw.arg] = value
                kw_nodes[kw.arg] = kw.value
        call = Call(node, args, kwargs, star, arg_nodes, kw_nodes, self.pos(node))
        self.note_arguments(call, frame)
        self.call_site = call.pos
        return self.call(callee, call, frame)

    def call(self, callee: Any, call, frame) -> Any:
        plain_args = [a for a in call.args if not isinstance(a, Starred)]
        if not self._followed(callee):
            values = plain_args + list(call.kwargs.values())
            self.library.on_unfollowed(self, values)
            for value in values:
                if isinstance(value, Seq):
                    _forget_length(value)  # a helper may append to the list it gets
            for value, node in zip(call.args, call.arg_nodes, strict=True):
                if isinstance(value, (tuple, Seq, DictVal)):
                    # fill(views): a helper may fill the list
                    self._forget_contents(node, value, frame, only_empty=True)
        if isinstance(callee, Func):
            return self.call_func(callee, plain_args, call.kwargs, unknown_args=call.star,
                                  origins=self.call_origins(call, frame))
        if isinstance(callee, Cls):
            return self.instantiate(callee, plain_args, call.kwargs, call.pos, unknown_args=call.star,
                                    origins=self.call_origins(call, frame))
        if isinstance(callee, Bound) and callee.func is not None:
            return self.call_func(callee.func, plain_args, call.kwargs, self_obj=callee.obj, unknown_args=call.star,
                                  origins=self.call_origins(call, frame))
        if isinstance(callee, Bound):
            return self.library.call_method(self, callee, call)
        if isinstance(callee, Ref):
            return self.library.call_ref(self, callee.qual, call, frame)
        if isinstance(callee, Builtin):
            return callee.fn(self, call, frame)
        if isinstance(callee, Obj):
            return self.library.call_object(self, callee, call)
        return opaque(call.pos)

    def _followed(self, callee: Any) -> bool:
        """Whether every effect of the call on its arguments is known (else they may be changed)."""
        if isinstance(callee, (Func, Cls, Builtin)) or (isinstance(callee, Bound) and callee.func is not None):
            return True
        return self.library.follows(callee)

    def _forget_contents(self, target: ast.AST, value: Any, frame, only_empty: bool = False) -> None:
        """A list or dict (the value of name `target`) changed in place: its contents are no longer
        what its literal said.

        only_empty: a constant tuple handed to a helper may be a real tuple (a crop scale);
        only an empty one is surely a list about to be filled.
        """
        if not isinstance(target, ast.Name) or (only_empty and isinstance(value, tuple) and value):
            return
        if isinstance(value, DictVal):
            value.items.clear()
            value.complete = False
        elif isinstance(value, Seq):
            _forget_length(value)
        elif isinstance(value, tuple):
            self.assign(target, Seq(), frame)  # `[]` is evaluated as the constant (); the list it was is now unknown

    def expr_BinOp(self, node: ast.BinOp, frame) -> Any:
        left, right = self.eval(node.left, frame), self.eval(node.right, frame)
        op = _BINOPS.get(type(node.op))
        if op and _number(left) and _number(right):
            try:
                result = op(left, right)
            except (ArithmeticError, ValueError):
                return opaque(self.pos(node))
            if abs(result) >= _MAX_CONST:
                return opaque(self.pos(node))
            if isinstance(result, float) and (_scaled(left, node.left) or _scaled(right, node.right)):
                return Scaled(result)
            return result
        if isinstance(node.op, ast.Add):
            if isinstance(left, Params) and isinstance(right, Params):
                return Params(left.owners + right.owners)
            if isinstance(left, Seq) and isinstance(right, Seq):
                self.charge(len(left.items or ()) + len(right.items or ()))
                return _concat(left, right)
            if isinstance(left, str) and isinstance(right, str) and len(left) + len(right) < 1000:
                return left + right
        return opaque(self.pos(node))

    def expr_UnaryOp(self, node: ast.UnaryOp, frame) -> Any:
        value = self.eval(node.operand, frame)
        if isinstance(node.op, ast.USub) and _number(value):
            return -value
        if isinstance(node.op, ast.Not) and is_const(value):
            return not value
        return opaque(self.pos(node))

    def expr_Compare(self, node: ast.Compare, frame) -> Any:
        left = self.eval(node.left, frame)
        rights = [self.eval(c, frame) for c in node.comparators]
        if len(rights) == 1 and type(node.ops[0]) in _COMPARE and is_const(left) and is_const(rights[0]):
            try:
                return bool(_COMPARE[type(node.ops[0])](left, rights[0]))
            except TypeError:
                pass
        return opaque(self.pos(node))

    def expr_BoolOp(self, node: ast.BoolOp, frame) -> Any:
        values = [self.eval(v, frame) for v in node.values]
        if all(is_const(v) for v in values):
            result = values[0]
            for v in values[1:]:
                result = (result and v) if isinstance(node.op, ast.And) else (result or v)
            return result
        return opaque(self.pos(node))

    def expr_IfExp(self, node: ast.IfExp, frame) -> Any:
        test = self.eval(node.test, frame)
        if is_const(test) and not isinstance(test, tuple):
            return self.eval(node.body if test else node.orelse, frame)
        body, orelse = self.eval(node.body, frame), self.eval(node.orelse, frame)
        if body is orelse or (is_const(body) and is_const(orelse) and body == orelse and type(body) is type(orelse)):
            return body
        return opaque(self.pos(node))

    def expr_Tuple(self, node, frame) -> Any:
        if any(isinstance(e, ast.Starred) for e in node.elts):
            spread = [self.eval(e.value if isinstance(e, ast.Starred) else e, frame) for e in node.elts]
            if all(isinstance(v, Params) for v in spread):  # [*a.parameters(), *b.parameters()]
                return Params([o for v in spread for o in v.owners])
            return Seq()
        self.charge(len(node.elts))
        items = [self.eval(e, frame) for e in node.elts]
        if all(is_const(i) for i in items):
            return tuple(items)
        return Seq(items, len(items))

    expr_List = expr_Tuple

    def expr_Starred(self, node: ast.Starred, frame) -> Any:
        self.eval(node.value, frame)
        return opaque(self.pos(node))

    def expr_Dict(self, node: ast.Dict, frame) -> Any:
        out = DictVal()
        for key, value in zip(node.keys, node.values, strict=True):
            k = self.eval(key, frame) if key is not None else None
            v = self.eval(value, frame)
            if key is not None and is_const(k):
                out.items[k] = v
            else:  # `**other` or a computed key: keys the dict may hold are not in items
                out.complete = False
        return out

    def expr_Subscript(self, node: ast.Subscript, frame) -> Any:
        base = self.eval(node.value, frame)
        if isinstance(node.slice, ast.Slice):
            return self._slice(base, node.slice, frame, node)
        index = self.eval(node.slice, frame)
        if isinstance(base, DictVal) and is_const(index) and index in base.items:
            return base.items[index]
        given = self.library.subscript(self, base, index, node)
        if given is not None:
            return given
        if isinstance(base, (tuple, Seq)) and isinstance(index, int) and not isinstance(index, bool):
            items = base if isinstance(base, tuple) else base.items
            if items is not None and -len(items) <= index < len(items):
                return items[index]
        return opaque(self.pos(node))

    def _slice(self, base: Any, node: ast.Slice, frame, whole: ast.AST) -> Any:
        lower = self.eval(node.lower, frame) if node.lower else None
        upper = self.eval(node.upper, frame) if node.upper else None
        if node.step is not None or not all(v is None or (isinstance(v, int) and not isinstance(v, bool))
                                            for v in (lower, upper)):
            return Seq() if isinstance(base, Seq) else opaque(self.pos(whole))
        if isinstance(base, Children):
            return Children(base.owner, -upper) if lower is None and upper is not None and upper < 0 else Seq()
        if isinstance(base, Seq):
            if base.items is not None:
                self.charge(len(base.items))
                return Seq(base.items[lower:upper], len(base.items[lower:upper]))
            return Seq(None, _slice_bound(base.max_len, lower, upper))
        if isinstance(base, tuple):
            return base[lower:upper]
        return opaque(self.pos(whole))

    def expr_ListComp(self, node, frame) -> Any:
        inner = frame.child()
        bound = None
        for index, gen in enumerate(node.generators):
            iterable = self.eval(gen.iter, inner)
            if index == 0:
                bound = _length_bound(iterable)
            else:
                bound = None
            self.assign(gen.target, self.iterate_item(iterable, gen), inner)
            for cond in gen.ifs:
                self.eval(cond, inner)
        if isinstance(node, ast.DictComp):
            self.eval(node.key, inner)
            self.eval(node.value, inner)
            return DictVal(complete=False)
        return Seq(None, bound, sample=self.eval(node.elt, inner), pos=self.pos(node))

    expr_GeneratorExp = expr_SetComp = expr_DictComp = expr_ListComp

    def iterate_item(self, iterable: Any, gen: ast.comprehension) -> Any:
        given = self.library.iterate(self, iterable, gen)
        return given if given is not None else opaque(self.pos(gen.target))

    def expr_NamedExpr(self, node: ast.NamedExpr, frame) -> Any:
        value = self.eval(node.value, frame)
        self.assign(node.target, value, frame)
        return value

    def expr_Lambda(self, node, frame) -> Any:
        return opaque(self.pos(node))


_MUTATORS = frozenset({"append", "extend", "insert", "pop", "remove", "clear", "__setitem__", "update",
                       "setdefault", "add", "popitem", "sort", "reverse"})


def _forget_length(seq: Seq) -> None:
    seq.items = None
    seq.max_len = None


def _scaled(value: Any, node: ast.AST) -> bool:
    """A value that is, or is read from a name that is, a batch size (or computed from one)."""
    if isinstance(value, Scaled):
        return True
    name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""
    return "batch" in name.lower()


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _concat(left: Seq, right: Seq) -> Seq:
    if left.items is not None and right.items is not None:
        return Seq(left.items + right.items, len(left.items) + len(right.items))
    if left.max_len is not None and right.max_len is not None:
        return Seq(None, left.max_len + right.max_len)
    return Seq()


def _slice_bound(max_len, lower, upper):
    """Upper bound on len(seq[lower:upper]) when len(seq) <= max_len (None: unknown)."""
    if max_len is not None:
        return len(range(max_len)[lower:upper])
    if lower is None and upper is not None and upper >= 0:
        return upper
    return None


def _length_bound(iterable: Any):
    if isinstance(iterable, Seq):
        return iterable.length if iterable.length is not None else iterable.max_len
    if isinstance(iterable, tuple):
        return len(iterable)
    if isinstance(iterable, Range) and isinstance(iterable.stop, int):
        return max(iterable.stop, 0)
    return None


def _spelled_out(value: Any) -> bool:
    """A dict whose every key is a known string: `f(**value)` passes exactly these keywords."""
    return isinstance(value, DictVal) and value.complete and all(isinstance(k, str) for k in value.items)
