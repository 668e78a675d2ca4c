"""Statements of the evaluator: bindings, imports, definitions, branches, loops, `with`.

Loops run once (or once per item of a short literal sequence); both branches of
an `if` whose test is unknown run and the names they bind are merged: a name
bound to different things becomes unknown, so alternatives never read as one
value. A name a loop body increments is unknown inside the loop.
"""

from __future__ import annotations

import ast
from typing import Any

from dino_guard.sources.interp.frames import Frame
from dino_guard.sources.interp.scripts import own_nodes
from dino_guard.sources.interp.trace import Binding
from dino_guard.sources.interp.values import Cls, DictVal, Func, Obj, Range, Ref, Seq, is_const, opaque

MAX_LOOP_ITEMS = 8  # `for m in [encoder, head]` runs per item up to this
_UNBOUND = object()  # a name or attribute one branch does not bind


def _merge(values: list):
    """One value when every branch agrees; else a fresh unknown, and each candidate learns its alternatives."""
    first = values[0]
    same = all(v is first or (is_const(v) and is_const(first) and type(v) is type(first) and v == first)
               for v in values)
    if same:
        return first
    for value in values:
        if isinstance(value, Obj):
            value.alternatives = values  # one of several things the name may hold
    return opaque()


class StatementsMixin:
    def exec_block(self, body: list, frame: Frame) -> None:
        for stmt in body:
            self.tick()
            handler = getattr(self, "stmt_" + type(stmt).__name__, None)
            if handler is not None:
                handler(stmt, frame)
            else:
                self._exec_nested(stmt, frame)

    def _exec_nested(self, stmt: ast.stmt, frame: Frame) -> None:
        """Statements without a handler (match, async for, ...): run what they contain."""
        for name in ("body", "orelse", "finalbody"):
            block = getattr(stmt, name, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                self.exec_block(block, frame)
        for case in getattr(stmt, "cases", []) or []:
            self.exec_block(case.body, frame)

    def stmt_Import(self, node: ast.Import, frame: Frame) -> None:
        for alias in node.names:
            if alias.asname:
                frame.locals[alias.asname] = Ref(alias.name)
            else:
                root = alias.name.split(".")[0]
                frame.locals[root] = Ref(root)
            self.library.on_import(self, alias.name, self.pos(alias))

    def stmt_ImportFrom(self, node: ast.ImportFrom, frame: Frame) -> None:
        for alias in node.names:
            if alias.name == "*":
                if node.module and not node.level:
                    self.star_modules.append(node.module)  # names the file never binds may come from it
                continue
            if node.level or not node.module:
                frame.locals[alias.asname or alias.name] = opaque(self.pos(alias))
                continue
            qual = f"{node.module}.{alias.name}"
            frame.locals[alias.asname or alias.name] = Ref(qual)
            self.library.on_import(self, qual, self.pos(alias))

    def stmt_Assign(self, node: ast.Assign, frame: Frame) -> None:
        value = self.eval(node.value, frame)
        span = self.origin_of(node.value, frame)
        for target in node.targets:
            self.assign(target, value, frame)
            if isinstance(target, ast.Name):
                self.note_written(target.id, span, frame.locals)

    def stmt_AnnAssign(self, node: ast.AnnAssign, frame: Frame) -> None:
        if node.value is not None:
            self.assign(node.target, self.eval(node.value, frame), frame)
            if isinstance(node.target, ast.Name):
                self.note_written(node.target.id, self.origin_of(node.value, frame), frame.locals)

    def stmt_AugAssign(self, node: ast.AugAssign, frame: Frame) -> None:
        value = (self.eval(ast.BinOp(node.target, node.op, node.value), frame)
                 if isinstance(node.target, ast.Name) else None)
        self.assign(node.target, value if value is not None else opaque(self.pos(node)), frame)

    def stmt_Expr(self, node: ast.Expr, frame: Frame) -> None:
        self.eval(node.value, frame)

    def stmt_Return(self, node: ast.Return, frame: Frame) -> None:
        frame.returns.append(self.eval(node.value, frame) if node.value is not None else None)

    def stmt_FunctionDef(self, node: ast.FunctionDef, frame: Frame) -> None:
        func = Func(node, owner=frame.owner if frame.locals is not frame.globals else None,
                    decorators=[self.eval(d, frame) for d in node.decorator_list])
        frame.locals[node.name] = func
        self.funcs.append(func)

    stmt_AsyncFunctionDef = stmt_FunctionDef

    def stmt_ClassDef(self, node: ast.ClassDef, frame: Frame) -> None:
        cls = Cls(node, bases=[self.eval(b, frame) for b in node.bases])
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                decorators = [self.eval(d, frame) for d in item.decorator_list]
                cls.methods[item.name] = Func(item, owner=cls, decorators=decorators)
        frame.locals[node.name] = cls

    def stmt_If(self, node: ast.If, frame: Frame) -> None:
        test = self.eval(node.test, frame)
        if is_const(test) and not isinstance(test, tuple):
            self.exec_block(node.body if test else node.orelse, frame)
            return
        self.branches(frame, [node.body, node.orelse])

    def stmt_Try(self, node: ast.Try, frame: Frame) -> None:
        self.branches(frame, [node.body + node.orelse] + [h.body for h in node.handlers])
        self.exec_block(node.finalbody, frame)

    stmt_TryStar = stmt_Try

    def branches(self, frame: Frame, blocks: list) -> None:
        """Run each block from the same start and merge what they bind, names and attributes alike."""
        before = dict(frame.locals)
        outcomes, writes = [], []
        for block in blocks:
            frame.locals.clear()
            frame.locals.update(before)
            self.attribute_logs.append({})
            try:
                self.exec_block(block, frame)
            finally:
                writes.append(self._undo_attributes(self.attribute_logs.pop()))
            outcomes.append(dict(frame.locals))
        frame.locals.clear()
        # a branch that does not bind a name either leaves it as it was or exits (raise, return)
        frame.locals.update({name: _merge([o[name] for o in outcomes if name in o]) for name in set().union(*outcomes)})
        for key in set().union(*writes):
            obj, attr = key
            old = obj.attrs.get(attr, _UNBOUND)
            values = [w[key] if key in w else old for w in writes]
            obj.attrs[attr] = _merge([v for v in values if v is not _UNBOUND])

    def _undo_attributes(self, log: dict) -> dict:
        """Put back the attributes a branch assigned; what it assigned, by (object, name)."""
        assigned = {}
        for (obj, attr), old in log.items():
            assigned[(obj, attr)] = obj.attrs.get(attr, _UNBOUND)
            if old is _UNBOUND:
                obj.attrs.pop(attr, None)
            else:
                obj.attrs[attr] = old
        return assigned

    def _loop_carried(self, node: ast.AST, frame: Frame) -> None:
        """`step += 1` in a loop body: the name holds a different value on every pass, so it is unknown inside."""
        names = getattr(node, "_dg_carried", None)
        if names is None:
            names = {n.target.id for n in own_nodes(node)
                     if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)}
            node._dg_carried = names  # the tree lives as long as this analysis
        for name in names:
            if is_const(frame.lookup(name)):
                frame.locals[name] = opaque(self.pos(node))

    def stmt_While(self, node: ast.While, frame: Frame) -> None:
        self._loop_carried(node, frame)
        self.eval(node.test, frame)
        self.exec_block(node.body, frame)
        self.exec_block(node.orelse, frame)

    def stmt_For(self, node: ast.For, frame: Frame) -> None:
        iterable = self.eval(node.iter, frame)
        self._loop_carried(node, frame)
        items = self._loop_items(iterable)
        if items is not None:
            for item in items:
                self.assign(node.target, item, frame)
                self.exec_block(node.body, frame)
            return
        pushed = isinstance(iterable, Range)
        if pushed:
            self.ranges.append((iterable.stop, self.pos(node.iter)))
        self.assign(node.target, self.iterate(iterable, node), frame)
        state = self.library.enter_loop(self, iterable)
        try:
            self.exec_block(node.body, frame)
        finally:
            if pushed:
                self.ranges.pop()
            self.library.exit_loop(self, state)
        self.exec_block(node.orelse, frame)

    stmt_AsyncFor = stmt_For

    def _loop_items(self, iterable: Any) -> list | None:
        if isinstance(iterable, Seq) and iterable.items is not None and len(iterable.items) <= MAX_LOOP_ITEMS:
            return list(iterable.items)
        if isinstance(iterable, tuple) and len(iterable) <= MAX_LOOP_ITEMS:
            return list(iterable)
        return None

    def iterate(self, iterable: Any, node: ast.AST) -> Any:
        """The value a for-loop target gets from one pass over `iterable`."""
        given = self.library.iterate(self, iterable, node)
        if given is not None:
            return given
        if isinstance(iterable, Obj) and iterable.kind == "enumerate":
            return Seq([0, self.iterate(iterable.attrs.get("of"), node)])
        if isinstance(iterable, Range):
            where = self.pos(getattr(node, "iter", node))
            return Obj("range_index", self.pos(node), facts={"range": (where, where)})  # which loop it counts
        return opaque(self.pos(node))

    def stmt_With(self, node: ast.With, frame: Frame) -> None:
        entered = []
        for item in node.items:
            entered.append(self.eval(item.context_expr, frame))
            if item.optional_vars is not None:
                self.assign(item.optional_vars, opaque(self.pos(item.optional_vars)), frame)
        self.contexts.extend(entered)  # the library reads what the body runs inside
        try:
            self.exec_block(node.body, frame)
        finally:
            del self.contexts[len(self.contexts) - len(entered):]

    stmt_AsyncWith = stmt_With

    # --- binding ---------------------------------------------------------------------------

    def assign(self, target: ast.AST, value: Any, frame: Frame) -> None:
        if isinstance(target, ast.Name):
            frame.locals[target.id] = value
            self.note_written(target.id, None, frame.locals)  # stmt_Assign notes a literal's origin after this
            self._note_binding(target, value, frame.locals)
        elif isinstance(target, ast.Attribute):
            self._assign_attribute(target, value, frame)
        elif isinstance(target, (ast.Tuple, ast.List)):
            self._unpack(target, value, frame)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, Seq(), frame)
        elif isinstance(target, ast.Subscript):
            self._assign_item(target, value, frame)

    def _assign_item(self, target: ast.Subscript, value: Any, frame: Frame) -> None:
        """config["lr"] = 0.1 updates a known key; any other item assignment makes the contents unknown."""
        base = self.eval(target.value, frame)
        key = self.eval(target.slice, frame) if not isinstance(target.slice, ast.Slice) else None
        if isinstance(base, DictVal) and is_const(key) and key is not None:
            base.items[key] = value
            if self.attribute_logs:  # set in one branch of an if/try only: what a `**` of it passes is not certain
                base.complete = False
        elif isinstance(target.value, ast.Name):
            self._forget_contents(target.value, base, frame)

    def _assign_attribute(self, target: ast.Attribute, value: Any, frame: Frame) -> None:
        base = self.eval(target.value, frame)
        if not isinstance(base, Obj) or self.library.set_attribute(self, base, target.attr, value, self.pos(target)):
            return
        if self.attribute_logs:  # inside a branch: remember what to put back before the next one runs
            self.attribute_logs[-1].setdefault((base, target.attr), base.attrs.get(target.attr, _UNBOUND))
        base.attrs[target.attr] = value
        self._note_binding(target, value, base)

    def _note_binding(self, target: ast.AST, value: Any, scope: Any) -> None:
        if self.library.bindable(value):
            # holding the scope keeps its id unique while the trace lives
            self.trace.bindings.append(Binding(ast.unparse(target), value, self.pos(target), scope))

    def _unpack(self, target: ast.AST, value: Any, frame: Frame) -> None:
        elts = target.elts
        values = self.library.unpack(self, value, len(elts), target)
        if values is not None:
            pass
        elif isinstance(value, Seq) and value.items is not None and len(value.items) == len(elts):
            values = list(value.items)
        elif isinstance(value, tuple) and len(value) == len(elts):
            values = list(value)
        else:
            values = [opaque(self.pos(e)) for e in elts]
        for elt, item in zip(elts, values, strict=False):
            self.assign(elt, item, frame)
