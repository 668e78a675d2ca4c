"""The evaluator: walks a module once, in order, binding names to abstract values.

Function and class bodies run when the program calls them, with the
arguments bound; those never called run once at the end with unknown
arguments, then the methods of every object made. A budget bounds the work
on any input: steps (statements and expressions evaluated), cells (list items
built or copied: a list doubled 40 times stops at a million) and wall time.
What calls, attributes and loops of a library mean comes from the library object (hooks.PlainPython is the one that knows nothing).
"""  # noqa: E501

from __future__ import annotations

import ast
import time
from typing import Any

from dino_guard.sources.interp.expressions import ExpressionsMixin
from dino_guard.sources.interp.frames import Frame, OutOfBudget
from dino_guard.sources.interp.hooks import PlainPython
from dino_guard.sources.interp.origins import OriginsMixin
from dino_guard.sources.interp.scripts import ScriptCallsMixin
from dino_guard.sources.interp.statements import StatementsMixin
from dino_guard.sources.interp.trace import Trace
from dino_guard.sources.interp.values import Cls, Func

MAX_STEPS = 200_000
MAX_CELLS = 1_000_000  # list items built or copied, all lists together
MAX_SECONDS = 2.0  # a backstop: steps and cells bound a script long before this


class Interpreter(StatementsMixin, ExpressionsMixin, ScriptCallsMixin, OriginsMixin):
    def __init__(self, tree: ast.Module, lines: list[str], library: Any = None):
        self.tree = tree
        self.lines = lines
        self.library = library if library is not None else PlainPython()
        self.trace: Trace = self.library.new_trace()
        self.globals: dict = {"__name__": "__main__"}  # a training script runs as main
        self.steps = 0
        self.cells = 0
        self.deadline = time.monotonic() + MAX_SECONDS
        self.depth = 0
        self.contexts: list = []  # values of the enclosing `with` items and decorators, outermost first
        self.ranges: list = []  # enclosing `for _ in range(N)` loops: (N, position of the range)
        self.instances: list = []  # objects of the program's classes, for the end pass
        self.funcs: list = []  # every Func defined
        self.scopes: list = []  # the class of each running method (None outside classes)
        self.func_names: list = []  # names of the functions running now, outermost first
        self.call_sites: list = []  # where each of them was called from
        self.call_site: tuple | None = None  # the position of the call being made
        self.attribute_logs: list = []  # per enclosing branch: attributes it assigned, with their old values
        self.star_modules: list = []  # modules of `from m import *` at any level, in order
        self.written_at: dict = {}  # (id of a scope dict, name) -> span of the literal its value was written as

    def run(self) -> Trace:
        frame = Frame(self.globals)
        self.exec_block(self.tree.body, frame)
        self._run_uncalled()
        return self.trace

    def _run_uncalled(self) -> None:
        """Functions and classes nobody called, then the methods of every object made.

        Repeated because a function run here may create objects whose methods must run too.
        """
        for _ in range(3):
            before = self.steps
            self.call_site = None
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
        """The class whose method runs now (what a created object belongs to), or None."""
        return self.scopes[-1] if self.scopes else None

    def tick(self) -> None:
        self.steps += 1
        if self.steps > MAX_STEPS or (self.steps % 1024 == 0 and time.monotonic() > self.deadline):
            raise OutOfBudget()

    def charge(self, cells: int) -> None:
        """Count list items about to be built or copied; refuse before memory is spent."""
        self.cells += cells
        if self.cells > MAX_CELLS:
            raise OutOfBudget()

    def pos(self, node: ast.AST) -> tuple:
        """(line, column) 1-based, the column in characters (ast counts UTF-8 bytes)."""
        line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0)
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        if not text.isascii():
            col = len(text.encode("utf-8")[:col].decode("utf-8", errors="ignore"))
        return (line, col + 1)
