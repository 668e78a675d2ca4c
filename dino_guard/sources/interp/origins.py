"""Where a constant was written: the literal a name's value came from, across assignments and calls.

`width = 2048` at module level, passed as `Model(width)` and used inside
`__init__` as `Layer(width, ...)`: a finding about that argument belongs at
the `2048` the user has to edit, not at the use. The evaluator keeps, per bound name, the span of the literal its value
was written as (an assignment, a call's argument, a parameter's default),
and records for every call argument that is a name the span its value came
from (Trace.origins: position of the argument -> span). Only whole-argument
names: `lr=BASE * n / 256` starts at the same column as `BASE`, and the
finding about it is about the expression, not about BASE. A name bound to anything but
a literal or another name with a known origin has none.
"""

from __future__ import annotations

import ast

Span = tuple  # (line, column, end_line, end_column): 1-based, the end column exclusive


class OriginsMixin:
    """Mixed into the Interpreter: needs self.pos, self.lines, self.trace and self.written_at."""

    def literal_span(self, node: ast.AST | None) -> Span | None:
        """The span of a number or string literal (`2048`, `-1`, `"vit_small"`), else None."""
        inner = node.operand if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) else node
        if not (isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float, str))
                and not isinstance(inner.value, bool)) or getattr(node, "end_lineno", None) is None:
            return None
        line, column = self.pos(node)
        return (line, column, node.end_lineno, column + (node.end_col_offset - node.col_offset))

    def origin_of(self, node: ast.AST | None, frame) -> Span | None:
        """Where the value of expression `node` was written: a literal itself, or a name's origin."""
        if isinstance(node, ast.Name):
            return self.written_at.get(self._origin_key(node.id, frame))
        return self.literal_span(node)

    def note_written(self, name: str, span: Span | None, scope: dict) -> None:
        """Bind (or forget) the origin of `name` in the scope dict it lives in."""
        if span is None:
            self.written_at.pop((id(scope), name), None)
        else:
            self.written_at[(id(scope), name)] = span

    def note_arguments(self, call, frame) -> None:
        """Record where the value of each argument that is a bare name was written."""
        for node in [*call.arg_nodes, *call.kw_nodes.values()]:
            span = self.origin_of(node, frame) if isinstance(node, ast.Name) else None
            if span is not None:
                self.trace.origins[self.pos(node)] = span

    def call_origins(self, call, frame) -> tuple | None:
        """(positional origins, keyword origins) of a call's arguments; None past a *args."""
        if any(isinstance(n, ast.Starred) for n in call.arg_nodes):
            return None
        return ([self.origin_of(n, frame) for n in call.arg_nodes],
                {name: self.origin_of(n, frame) for name, n in call.kw_nodes.items()})

    @staticmethod
    def _origin_key(name: str, frame) -> tuple:
        return (id(frame.locals if name in frame.locals else frame.globals), name)
