"""A small abstract interpreter for DINO training scripts: statements.

It walks the module in order, once, binding names to abstract values
(values.py). Function and class bodies run when the script calls them, with
the arguments bound; those never called run once at the end with unknown
arguments. Loops run once, both branches of an unknown `if` run and the
names they bind are merged (a name bound to different things becomes
unknown). A step budget keeps huge files (torch's own) bounded.
"""

from __future__ import annotations

import ast
from typing import Any, Optional

from dino_guard.sources.expressions import ExpressionsMixin
from dino_guard.sources.trace import Trace
from dino_guard.sources.values import Cls, DictVal, Func, Obj, Params, Range, Ref, Seq, is_const, opaque

MAX_STEPS = 200_000
MAX_DEPTH = 12  # nested script calls
MAX_CALLS_PER_FUNC = 6
MAX_LOOP_ITEMS = 8
_CLASSIFIERS = frozenset({"fc", "head", "heads", "classifier", "last_linear"})  # `for m in [teacher_backbone, teacher_head]` runs per item up to this
_MISSING = object()
_EVALUATION_METHODS = frozenset({"validation_step", "test_step", "predict_step", "on_validation_epoch_end",
                                 "on_test_epoch_end", "validation_epoch_end", "test_epoch_end"})


class OutOfBudget(Exception):
    """The script is too large or too deeply nested to follow."""


class Frame:
    def __init__(self, globals_: dict, locals_: Optional[dict] = None, self_obj: Optional[Obj] = None, owner: Optional[Cls] = None):
        self.globals = globals_
        self.locals = globals_ if locals_ is None else locals_
        self.self_obj = self_obj
        self.owner = owner
        self.returns: list = []

    def lookup(self, name: str) -> Any:
        if name in self.locals:
            return self.locals[name]
        return self.globals.get(name, _MISSING)

    def child(self) -> "Frame":
        """A scope for a comprehension: sees this frame, binds its own targets."""
        frame = Frame(self.globals, dict(self.locals), self.self_obj, self.owner)
        return frame


class Interpreter(ExpressionsMixin):
    def __init__(self, tree: ast.Module, lines: list[str]):
        self.tree = tree
        self.lines = lines
        self.trace = Trace()
        self.globals: dict = {"__name__": "__main__"}  # a training script runs as main
        self.steps = 0
        self.depth = 0
        self.no_grad = 0
        self.ranges: list = []  # enclosing `for _ in range(N)` loops: (N, position)
        self.instances: list = []  # objects of script classes, for the end pass
        self.funcs: list = []  # every Func defined, for the end pass
        self.scopes: list = []  # the script class of each running method (None outside classes)
        self.func_names: list = []  # names of the script functions running now, outermost first
        self.call_sites: list = []  # where each of them was called from (None: the end pass)
        self.call_site: Optional[tuple] = None  # the position of the call being made
        self.loader_loops: list = []  # per enclosing loop over a DataLoader: the teacher updates seen in it
        self.train_steps = 0  # backward() and optimizer.step() calls seen: tells a training loop from an evaluation one

    # --- driver ----------------------------------------------------------------------------

    def run(self) -> Trace:
        frame = Frame(self.globals)
        self.exec_block(self.tree.body, frame)
        self._run_uncalled()
        return self.trace

    def _run_uncalled(self) -> None:
        """Functions and classes nobody called, then the methods of every object made.

        Repeated because a function run here may create objects whose methods
        (training_step, configure_optimizers) must run too.
        """
        for _ in range(3):
            before = self.steps
            for value in list(self.globals.values()):
                if isinstance(value, Func) and value.calls == 0:
                    self.call_func(value, [], {}, unknown_args=True)
                elif isinstance(value, Cls) and value.instances == 0:
                    self.instantiate(value, [], {}, (value.node.lineno, value.node.col_offset + 1), unknown_args=True)
            for obj in list(self.instances):
                for func in obj.cls.methods.values():
                    if func.calls == 0:
                        self.call_func(func, [], {}, self_obj=obj, unknown_args=True)
            if self.steps == before:
                break

    def scope(self):
        """The script class whose method runs now (what a created object belongs to), or None."""
        return self.scopes[-1] if self.scopes else None

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise OutOfBudget()

    def pos(self, node: ast.AST) -> tuple:
        """(line, column) 1-based, the column in characters (ast counts UTF-8 bytes)."""
        line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if not text.isascii():
            col = len(text.encode("utf-8")[:col].decode("utf-8", errors="ignore"))
        return (line, col + 1)

    # --- statements ------------------------------------------------------------------------

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
            self.note_ref(alias.name, self.pos(alias))

    def stmt_ImportFrom(self, node: ast.ImportFrom, frame: Frame) -> None:
        for alias in node.names:
            if alias.name == "*":
                continue
            if node.level or not node.module:
                frame.locals[alias.asname or alias.name] = opaque(self.pos(alias))
                continue
            qual = f"{node.module}.{alias.name}"
            frame.locals[alias.asname or alias.name] = Ref(qual)
            self.note_ref(qual, self.pos(alias))

    def note_ref(self, qual: str, pos: tuple) -> None:
        if qual == "lightly" or qual.startswith("lightly."):
            self.trace.lightly_refs.setdefault(qual, pos)
        self.trace.imported.add(qual.split(".")[0])
        if "distributed" in qual or "DataParallel" in qual:
            self.trace.distributed = True  # torchrun/DDP: the number of devices is not in the script

    def stmt_Assign(self, node: ast.Assign, frame: Frame) -> None:
        value = self.eval(node.value, frame)
        for target in node.targets:
            self.assign(target, value, frame)

    def stmt_AnnAssign(self, node: ast.AnnAssign, frame: Frame) -> None:
        if node.value is not None:
            self.assign(node.target, self.eval(node.value, frame), frame)

    def stmt_AugAssign(self, node: ast.AugAssign, frame: Frame) -> None:
        value = self.eval(ast.BinOp(node.target, node.op, node.value), frame) if isinstance(node.target, ast.Name) else None
        self.assign(node.target, value if value is not None else opaque(self.pos(node)), frame)

    def stmt_Expr(self, node: ast.Expr, frame: Frame) -> None:
        self.eval(node.value, frame)

    def stmt_Return(self, node: ast.Return, frame: Frame) -> None:
        frame.returns.append(self.eval(node.value, frame) if node.value is not None else None)

    def stmt_FunctionDef(self, node: ast.FunctionDef, frame: Frame) -> None:
        func = Func(node, owner=frame.owner if frame.locals is not frame.globals else None,
                    no_grad=any(self._is_no_grad(self.eval(d, frame)) for d in node.decorator_list))
        frame.locals[node.name] = func
        self.funcs.append(func)

    stmt_AsyncFunctionDef = stmt_FunctionDef

    def stmt_ClassDef(self, node: ast.ClassDef, frame: Frame) -> None:
        cls = Cls(node, bases=[self.eval(b, frame) for b in node.bases])
        for item in node.body:
            if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                decorated_no_grad = any(self._is_no_grad(self.eval(d, frame)) for d in item.decorator_list)
                cls.methods[item.name] = Func(item, owner=cls, no_grad=decorated_no_grad)
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
        """Run each block from the same start and merge what they bind."""
        before = dict(frame.locals)
        outcomes = []
        for block in blocks:
            frame.locals.clear()
            frame.locals.update(before)
            self.exec_block(block, frame)
            outcomes.append(dict(frame.locals))
        merged = {}
        for name in set().union(*outcomes):
            values = [o[name] for o in outcomes if name in o]
            first = values[0]
            same = all(v is first or (is_const(v) and is_const(first) and type(v) is type(first) and v == first) for v in values)
            merged[name] = first if same else opaque()
        frame.locals.clear()
        frame.locals.update(merged)

    def _loop_carried(self, node: ast.AST, frame: Frame) -> None:
        """`step += 1` in a loop body: the name holds a different value on every pass, so it is unknown inside."""
        names = getattr(node, "_dg_carried", None)
        if names is None:
            names = {n.target.id for n in _own_nodes(node) if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)}
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
        steps_before, no_grad_before = self.train_steps, self.no_grad
        loader = _loader_of(iterable)
        if loader is not None:
            self.loader_loops.append([])
        try:
            self.exec_block(node.body, frame)
        finally:
            if pushed:
                self.ranges.pop()
            updates = self.loader_loops.pop() if loader is not None else []
        if loader is not None and self.train_steps > steps_before:
            self._training_loop(loader)
        elif loader is not None and no_grad_before:
            for update in updates:  # the whole loop runs without gradients: it cannot be the training loop
                update.evaluation = update.evaluation or "a loop under torch.no_grad() that never steps an optimizer"
        self.exec_block(node.orelse, frame)

    def note_teacher_update(self, update) -> None:
        """An update of the teacher or the loss center: judged by the loop it runs in."""
        if self.loader_loops:
            self.loader_loops[-1].append(update)

    def evaluation_method(self) -> Optional[str]:
        """The evaluation hook running now (validation_step, ...), if any."""
        return next((n for n in reversed(self.func_names) if n in _EVALUATION_METHODS), None)

    def evaluation_site(self) -> Optional[tuple]:
        """Inside an evaluation hook, the line of the hook that leads here (a shared helper's call), else None."""
        for index in range(len(self.func_names) - 1, -1, -1):
            if self.func_names[index] in _EVALUATION_METHODS:
                return self.call_sites[index + 1] if index + 1 < len(self.call_sites) else None
        return None

    def _training_loop(self, loader: Obj) -> None:
        """A loop over a DataLoader that steps an optimizer trains; an evaluation loop does not."""
        self.trace.training_loop = True
        self.trace.train_loaders.append(loader)
        if self.ranges and is_const(self.ranges[-1][0]):
            self.trace.epochs.append(self.ranges[-1])

    stmt_AsyncFor = stmt_For

    def _loop_items(self, iterable: Any) -> Optional[list]:
        if isinstance(iterable, Seq) and iterable.items is not None and len(iterable.items) <= MAX_LOOP_ITEMS:
            return list(iterable.items)
        if isinstance(iterable, tuple) and len(iterable) <= MAX_LOOP_ITEMS:
            return list(iterable)
        return None

    def iterate(self, iterable: Any, node: ast.AST) -> Any:
        """The value a for-loop target gets from one pass over `iterable`."""
        if isinstance(iterable, Obj) and iterable.kind == "dataloader":
            return Obj("batch", self.pos(node), attrs={"loader": iterable})
        if isinstance(iterable, Obj) and iterable.kind == "enumerate":
            return Seq([0, self.iterate(iterable.attrs.get("of"), node)])
        if isinstance(iterable, Params):
            return Obj("param", self.pos(node), parts=list(iterable.owners))
        if isinstance(iterable, Range):
            where = self.pos(getattr(node, "iter", node))
            return Obj("epoch", self.pos(node), facts={"range": (where, where)})  # which loop: training or not
        return opaque(self.pos(node))

    def stmt_With(self, node: ast.With, frame: Frame) -> None:
        entered = 0
        for item in node.items:
            ctx = self.eval(item.context_expr, frame)
            if self._is_no_grad(ctx):
                entered += 1
            if item.optional_vars is not None:
                self.assign(item.optional_vars, opaque(self.pos(item.optional_vars)), frame)
        self.no_grad += entered
        try:
            self.exec_block(node.body, frame)
        finally:
            self.no_grad -= entered

    stmt_AsyncWith = stmt_With

    @staticmethod
    def _is_no_grad(value: Any) -> bool:
        return isinstance(value, Obj) and value.kind == "no_grad"

    # --- binding ---------------------------------------------------------------------------

    def assign(self, target: ast.AST, value: Any, frame: Frame) -> None:
        if isinstance(target, ast.Name):
            frame.locals[target.id] = value
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
        elif isinstance(target.value, ast.Name):
            self._forget_contents(target.value, base, frame)

    def _assign_attribute(self, target: ast.Attribute, value: Any, frame: Frame) -> None:
        base = self.eval(target.value, frame)
        if not isinstance(base, Obj):
            return
        if target.attr == "requires_grad" and base.kind == "param" and value is False:
            self.freeze(base.parts)  # for p in teacher.parameters(): p.requires_grad = False
            return
        if base.kind == "dataset" and target.attr == "transform":
            base.facts["transform"] = (value, self.pos(target))
        if base.kind == "backbone" and target.attr in _CLASSIFIERS and not (isinstance(value, Obj) and value.kind == "identity"):
            base.kind = "module"  # resnet.fc = nn.Linear(2048, 256): the output width is no longer the table's
        base.attrs[target.attr] = value
        self._note_binding(target, value, base)

    def _note_binding(self, target: ast.AST, value: Any, scope: Any) -> None:
        if isinstance(value, Obj) and value.kind not in ("opaque", "tensor", "epoch", "batch", "param"):
            self.trace.bindings.append(_binding(target, value, self.pos(target), scope))

    def _unpack(self, target: ast.AST, value: Any, frame: Frame) -> None:
        elts = target.elts
        if isinstance(value, Obj) and value.kind == "batch":
            # (views, labels, filenames) = batch: the first element holds the views
            values = [self.views_of(value)] + [opaque(self.pos(e)) for e in elts[1:]]
        elif isinstance(value, Obj) and value.kind == "param":
            values = [value] * len(elts)  # for name, p in teacher.named_parameters()
        elif isinstance(value, Seq) and value.items is not None and len(value.items) == len(elts):
            values = list(value.items)
        elif isinstance(value, tuple) and len(value) == len(elts):
            values = list(value)
        else:
            values = [opaque(self.pos(e)) for e in elts]
        for elt, item in zip(elts, values):
            self.assign(elt, item, frame)

    def freeze(self, owners: list) -> None:
        for owner in owners:
            for obj in descendants(owner):
                self.trace.frozen.add(id(obj))

    # --- calls into the script's own functions and classes ---------------------------------

    def call_func(self, func: Func, args: list, kwargs: dict, self_obj: Optional[Obj] = None,
                  unknown_args: bool = False) -> Any:
        if self.depth >= MAX_DEPTH or func.calls >= MAX_CALLS_PER_FUNC:
            return opaque(self.pos(func.node))
        func.calls += 1
        frame = Frame(self.globals, {}, self_obj, func.owner)
        self._bind_params(func.node.args, args, kwargs, frame, self_obj, unknown_args)
        self.depth += 1
        no_grad = func.no_grad or func.node.name in _EVALUATION_METHODS  # Lightning runs these under no_grad
        self.no_grad += no_grad
        self.scopes.append(func.owner or self.scope())
        self.func_names.append(func.node.name)
        self.call_sites.append(self.call_site)
        try:
            self.exec_block(func.node.body, frame)
        finally:
            self.depth -= 1
            self.no_grad -= no_grad
            self.scopes.pop()
            self.func_names.pop()
            self.call_sites.pop()
        if _is_generator(func.node):
            return opaque(self.pos(func.node))
        return _merge_returns(frame.returns, self.pos(func.node))

    def _bind_params(self, spec: ast.arguments, args: list, kwargs: dict, frame: Frame,
                     self_obj: Optional[Obj], unknown_args: bool) -> None:
        positional = spec.posonlyargs + spec.args
        if self_obj is not None and positional:
            frame.locals[positional[0].arg] = self_obj
            positional = positional[1:]
        defaults = [None] * (len(positional) - len(spec.defaults)) + list(spec.defaults)
        for index, (param, default) in enumerate(zip(positional, defaults)):
            if index < len(args):
                frame.locals[param.arg] = args[index]
            elif param.arg in kwargs:
                frame.locals[param.arg] = kwargs[param.arg]
            elif default is not None and not unknown_args:
                frame.locals[param.arg] = self.eval(default, Frame(self.globals))
            else:
                frame.locals[param.arg] = opaque(self.pos(param))
        for param, default in zip(spec.kwonlyargs, spec.kw_defaults):
            if param.arg in kwargs:
                frame.locals[param.arg] = kwargs[param.arg]
            elif default is not None and not unknown_args:
                frame.locals[param.arg] = self.eval(default, Frame(self.globals))
            else:
                frame.locals[param.arg] = opaque(self.pos(param))
        if spec.vararg:
            frame.locals[spec.vararg.arg] = Seq()
        if spec.kwarg:
            frame.locals[spec.kwarg.arg] = opaque(self.pos(spec.kwarg))

    def instantiate(self, cls: Cls, args: list, kwargs: dict, pos: tuple, unknown_args: bool = False) -> Obj:
        obj = Obj("instance", pos, cls=cls)
        if any(isinstance(b, Ref) and b.qual.endswith("LightningModule") for b in all_bases(cls)):
            obj.facts["lightning"] = (True, pos)
        cls.instances += 1
        self.instances.append(obj)
        init = find_method(cls, "__init__")
        if init is not None:
            self.call_func(init, args, kwargs, self_obj=obj, unknown_args=unknown_args)
        return obj


def _loader_of(iterable: Any) -> Optional[Obj]:
    """The DataLoader a for-loop walks, through enumerate(loader)."""
    while isinstance(iterable, Obj) and iterable.kind == "enumerate":
        iterable = iterable.attrs.get("of")
    return iterable if isinstance(iterable, Obj) and iterable.kind == "dataloader" else None


def _binding(target: ast.AST, value: Obj, pos: tuple, scope: Any):
    from dino_guard.sources.trace import Binding

    return Binding(ast.unparse(target), value, pos, scope)  # holding scope keeps its id unique


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
        cached = any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(func))
        func._dg_generator = cached  # the tree lives as long as this analysis
    return cached


def _own_nodes(func: ast.AST):
    """Nodes of a function's (or a loop's) body, not descending into nested functions or classes."""
    stack = list(func.body)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
                stack.append(child)


def all_bases(cls: Cls, seen: Optional[set] = None) -> list:
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


def find_method(cls: Cls, name: str) -> Optional[Func]:
    for owner in [cls] + [b for b in all_bases(cls) if isinstance(b, Cls)]:
        if name in owner.methods:
            return owner.methods[name]
    return None


def descendants(obj: Obj) -> list:
    """obj and every module reachable through its attributes and parts."""
    out, stack, seen = [], [obj], set()
    while stack:
        item = stack.pop()
        if id(item) in seen or not isinstance(item, Obj):
            continue
        seen.add(id(item))
        out.append(item)
        stack.extend(item.children())
    return out
