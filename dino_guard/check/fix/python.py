"""Fixes in training scripts: keyword arguments of the call a finding points at, edited in libcst's syntax tree.

A setup field is a keyword argument of one lightly (or timm) call
(`loss.output_dim` -> `DINOLoss(output_dim=...)`, sources/script_help.py);
the finding's line:column lies inside that call. The keyword's value is
replaced, or the keyword is appended; nothing else of the script changes.
A fix with a field that is no keyword of such a call (a batch size, a
momentum schedule), or a call that passes positional or `**` arguments the
keyword could collide with, is not fixable here.
"""

from __future__ import annotations

from typing import Any

from dino_guard.check.fix.errors import NotFixable
from dino_guard.sources.script_help import CALLS

# Beyond lightly's constructors: the backbone's own keyword arguments go to timm.create_model.
_CALLEES = {**CALLS, "model.backbone": "create_model"}


def apply(text: str, fix: dict, position: tuple[int, int]) -> str:
    import libcst as cst

    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        raise NotFixable(f"the script does not parse: {exc}") from None
    for dotted, value in fix.items():
        section, _, keyword = dotted.rpartition(".")
        if section not in _CALLEES:
            raise NotFixable(f"{dotted} is no keyword argument of a call")
        module = _edit_call(module, _CALLEES[section], position, keyword, value)
    return module.code


def _edit_call(module, callee: str, position: tuple[int, int], keyword: str, value: Any):
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(module)
    positions = wrapper.resolve(PositionProvider)
    line, column = position[0], position[1] - 1  # findings count columns from 1, libcst from 0
    calls = [node for node, where in positions.items()
             if isinstance(node, cst.Call) and _name(node.func) == callee and _contains(where, line, column)]
    if not calls:
        raise NotFixable(f"no {callee}(...) call at {line}:{position[1]}")
    target = min(calls, key=lambda node: _size(positions[node]))  # the innermost
    edited = _with_keyword(target, keyword, value)
    return wrapper.module.deep_replace(target, edited)


def _with_keyword(call, keyword: str, value: Any):
    import libcst as cst

    args = list(call.args)
    existing = [i for i, arg in enumerate(args) if arg.keyword is not None and arg.keyword.value == keyword]
    if existing:
        i = existing[0]
        if value is None:
            del args[i]
            if args and i == len(args):  # the last one went: no dangling comma
                args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        else:
            args[i] = args[i].with_changes(value=cst.parse_expression(repr(value)))
        return call.with_changes(args=args)
    if value is None:
        return call
    if any(arg.star for arg in args) or (_has_positional(call) and _name(call.func) != "create_model"):
        raise NotFixable(f"{_name(call.func)}(...) passes positional or ** arguments: {keyword}= could collide")
    new = cst.Arg(keyword=cst.Name(keyword), value=cst.parse_expression(repr(value)),
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))
    if args and args[-1].comma is cst.MaybeSentinel.DEFAULT:
        args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return call.with_changes(args=[*args, new])


def _has_positional(call) -> bool:
    return any(arg.keyword is None and not arg.star for arg in call.args)


def _name(func) -> str | None:
    import libcst as cst

    if isinstance(func, cst.Name):
        return func.value
    if isinstance(func, cst.Attribute):
        return func.attr.value
    return None


def _contains(where, line: int, column: int) -> bool:
    return (where.start.line, where.start.column) <= (line, column) <= (where.end.line, where.end.column)


def _size(where) -> tuple[int, int]:
    return (where.end.line - where.start.line, where.end.column - where.start.column)
