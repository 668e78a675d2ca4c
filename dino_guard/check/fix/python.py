"""Fixes in training scripts: keyword arguments of the call a finding points at, edited in libcst's syntax tree.

A setup field is a keyword argument of one lightly call
(`loss.output_dim` -> `DINOLoss(output_dim=...)`, sources/script_help.py);
the finding's line:column lies inside that call. The keyword's value is
replaced, or the keyword is appended in the call's own layout (on a line of
its own when the arguments stand one per line: the same editor as DG302's,
sources/call_edit.py); nothing else of the script changes.
An argument given by position is edited in place (lightly's signature says
which position). A fix with a field that is no keyword of such a call (a
batch size, a momentum schedule), or a call that passes `*` or `**`
arguments the keyword could collide with, is not fixable here.

A finding that carries an `edit` (sources/call_edit.py: the backbone's
`dynamic_img_size=True` in the timm call that builds it; sources/origin_edit.py:
the literal a name's value was written as, `LOCAL = 100` -> `LOCAL = 112`)
gets exactly that edit: one source, so --fix writes what `check --format
json` reports and an editor offers. A finding moved to its literal without an
edit (the literal may set more than the finding's argument) is not fixable.
"""

from __future__ import annotations

from typing import Any

from dino_guard.check.fix.errors import NotFixable
from dino_guard.findings import Finding
from dino_guard.sources import lightly_api
from dino_guard.sources.call_edit import apply_edit
from dino_guard.sources.script_help import calls_of


def apply_finding(text: str, finding: Finding) -> str:
    """The script with the finding's fix: exactly its `edit` when the reader made one, else the keyword written
    into the lightly call at the finding's position."""
    if finding.edit is not None:
        return apply_edit(text, finding.edit)
    return apply(text, finding.fix, (finding.line, finding.column))


def apply(text: str, fix: dict, position: tuple[int, int]) -> str:
    for dotted, value in fix.items():
        section, _, keyword = dotted.rpartition(".")
        if section == "model.backbone":
            raise NotFixable(f"{dotted} is written by the finding's edit, and this one has none "
                             "(the timm call passes * or ** arguments, or the script does not show it)")
        if not calls_of(section):
            raise NotFixable(f"{dotted} is no keyword argument of a call")
        text = _lightly_keyword(text, calls_of(section), position, keyword, value)
    return text


def _lightly_keyword(text: str, callees: tuple[str, ...], position: tuple[int, int], keyword: str, value: Any) -> str:
    """keyword=value in the innermost call of one of the callees (DINOProjectionHead or DINOv2ProjectionHead) at
    position."""
    appended = _appended(text, callees, position, keyword, value)
    if appended is not None:
        return appended
    import libcst as cst

    try:
        module = cst.parse_module(text)
    except cst.ParserSyntaxError as exc:
        raise NotFixable(f"the script does not parse: {exc}") from None
    return _edit_call(module, callees, position, keyword, value).code


def _appended(text: str, callees: tuple[str, ...], position: tuple[int, int], keyword: str, value: Any) -> str | None:
    """The text with a keyword the call lacks added in the call's own layout, by the same editor as DG302's
    (sources/call_edit.py): on a line of its own when the arguments stand one per line. None when the call has
    the keyword, passes it by position or takes * or ** arguments: the syntax tree below decides those."""
    import ast

    from dino_guard.sources.call_edit import append_edit, callee_name, innermost_call

    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    call = innermost_call(tree, text, position, named=callees)
    if call is None or value is None or any(k.arg in (keyword, None) for k in call.keywords) \
            or any(isinstance(arg, ast.Starred) for arg in call.args):
        return None
    names = [name for name, _ in lightly_api.SIGNATURES.get(callee_name(call), ())]
    if keyword in names and names.index(keyword) < len(call.args):
        return None  # given by position
    return apply_edit(text, append_edit(text, call, keyword, value))


def _edit_call(module, callees: tuple[str, ...], position: tuple[int, int], keyword: str, value: Any):
    import libcst as cst
    from libcst.metadata import MetadataWrapper, PositionProvider

    wrapper = MetadataWrapper(module)
    positions = wrapper.resolve(PositionProvider)
    line, column = position[0], position[1] - 1  # findings count columns from 1, libcst from 0
    calls = [node for node, where in positions.items()
             if isinstance(node, cst.Call) and _name(node.func) in callees and _contains(where, line, column)]
    if not calls:
        raise NotFixable(f"no {' or '.join(callees)}(...) call at {line}:{position[1]}")
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
    order = lightly_api.SIGNATURES.get(_name(call.func))
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
