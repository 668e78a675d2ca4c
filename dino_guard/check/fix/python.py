"""Fixes in training scripts: keyword arguments of the call a finding points at, edited in libcst's syntax tree.

A setup field is a keyword argument of one lightly call
(`loss.output_dim` -> `DINOLoss(output_dim=...)`, sources/script_help.py);
the finding's line:column lies inside that call. The keyword's value is
replaced, or the keyword is appended; nothing else of the script changes.
An argument given by position is edited in place (lightly's signature says
which position). A fix with a field that is no keyword of such a call (a
batch size, a momentum schedule), or a call that passes `*` or `**`
arguments the keyword could collide with, is not fixable here.

The backbone's keywords (`model.backbone.dynamic_img_size` -> the timm call
that builds it, where the script reader moved the finding) are written by
the text edit `check` reports as the finding's `edit` (sources/call_edit.py):
one implementation, so --fix writes what an editor is offered.
"""

from __future__ import annotations

from typing import Any

from dino_guard.check.fix.errors import NotFixable
from dino_guard.sources.script_help import CALLS


def apply(text: str, fix: dict, position: tuple[int, int]) -> str:
    for dotted, value in fix.items():
        section, _, keyword = dotted.rpartition(".")
        if section == "model.backbone":
            text = _backbone_keyword(text, position, keyword, value)
        elif section in CALLS:
            text = _lightly_keyword(text, CALLS[section], position, keyword, value)
        else:
            raise NotFixable(f"{dotted} is no keyword argument of a call")
    return text


def _backbone_keyword(text: str, position: tuple[int, int], keyword: str, value: Any) -> str:
    """keyword=value in the timm call at position (create_model, or one of timm's model functions)."""
    import ast

    from dino_guard.sources.call_edit import BACKBONE_KEYWORDS, apply_edit, keyword_edit

    if keyword not in BACKBONE_KEYWORDS or value is None:
        raise NotFixable(f"model.backbone.{keyword} is no keyword argument dino-guard writes into a timm call")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError) as exc:
        raise NotFixable(f"the script does not parse: {exc}") from None
    edit = keyword_edit(tree, text, position, keyword, value)
    if edit is None:
        raise NotFixable(f"no call at {position[0]}:{position[1]} takes {keyword}= (or it passes * or ** arguments)")
    return apply_edit(text, edit)


def _lightly_keyword(text: str, callee: str, position: tuple[int, int], keyword: str, value: Any) -> str:
    import libcst as cst

    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        raise NotFixable(f"the script does not parse: {exc}") from None
    return _edit_call(module, callee, position, keyword, value).code


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
    positional = _positional_index(call, keyword)
    if existing:
        i = existing[0]
        if value is None:
            del args[i]
            if args and i == len(args):  # the last one went: no dangling comma
                args[-1] = args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
        else:
            args[i] = args[i].with_changes(value=cst.parse_expression(repr(value)))
        return call.with_changes(args=args)
    if any(arg.star for arg in args):
        raise NotFixable(f"{_name(call.func)}(...) passes * or ** arguments: {keyword}= could collide")
    if positional is not None and value is not None:  # given by position: its value is replaced there
        args[positional] = args[positional].with_changes(value=cst.parse_expression(repr(value)))
        return call.with_changes(args=args)
    if value is None:
        return call if positional is None else _refuse(call, keyword)
    new = cst.Arg(keyword=cst.Name(keyword), value=cst.parse_expression(repr(value)),
                  equal=cst.AssignEqual(whitespace_before=cst.SimpleWhitespace(""),
                                        whitespace_after=cst.SimpleWhitespace("")))
    if args and args[-1].comma is cst.MaybeSentinel.DEFAULT:
        args[-1] = args[-1].with_changes(comma=cst.Comma(whitespace_after=cst.SimpleWhitespace(" ")))
    return call.with_changes(args=[*args, new])


def _positional_index(call, keyword: str) -> int | None:
    """The index of the positional argument that passes `keyword`, by lightly's signature; None if none does."""
    from dino_guard.sources import lightly_api

    order = {"DINOProjectionHead": lightly_api.DINO_HEAD, "DINOLoss": lightly_api.DINO_LOSS,
             "DINOTransform": lightly_api.DINO_TRANSFORM}.get(_name(call.func))
    given = sum(1 for arg in call.args if arg.keyword is None and not arg.star)
    names = [name for name, _ in order or ()]
    if keyword in names and names.index(keyword) < given:
        return names.index(keyword)
    return None


def _refuse(call, keyword: str):
    raise NotFixable(f"{_name(call.func)}(...) passes {keyword} by position: removing it would shift the others")


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
