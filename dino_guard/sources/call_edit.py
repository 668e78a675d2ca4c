"""A keyword argument set in one call of a script, as a text edit (stdlib `ast`: a plain check stays light).

DG302's fix on a script is `dynamic_img_size=True` in the timm call that
builds the ViT, not in the DINOTransform whose crops show the mistake. The
finding is moved to that call (`at_fix_call`), and it carries the edit
({line, column, end_line, end_column, replacement}: 1-based, columns in
characters, end exclusive) that `check --fix` writes too (check/fix/python.py
applies `keyword_edit`), so what an editor offers is what --fix does.

An existing keyword has its value replaced (`dynamic_img_size=False` ->
`True`); a missing one is appended in the call's own layout: on a line of its
own when the arguments stand one per line (a trailing comma kept), else after
the last argument. A call that passes `*args` or `**kwargs` gets no edit: the
keyword may be in them, and writing it again would be a TypeError.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from typing import Any

from dino_guard.findings import Finding

# The backbone's setup fields that are keyword arguments of timm.create_model (and of timm's model functions).
BACKBONE_KEYWORDS = ("dynamic_img_size", "pretrained", "drop_path_rate")
_LINE_END = re.compile(r"(?<=\n)|(?<=\r)(?!\n)")  # just past \n, \r\n or a lone \r


def at_fix_call(finding: Finding, positions: dict, tree: ast.Module, text: str) -> Finding:
    """A finding whose fix goes to the backbone's timm call, moved to that call with its edit.

    Where it was found (the crop size) stays as a related location. Findings
    with other fixes, or whose backbone call the script does not show, are
    returned unchanged.
    """
    fix = finding.fix or {}
    if len(fix) != 1 or finding.field.startswith("model.backbone"):
        return finding
    (dotted, value), = fix.items()
    section, _, keyword = dotted.rpartition(".")
    where = positions.get(tuple(dotted.split(".")))
    if section != "model.backbone" or keyword not in BACKBONE_KEYWORDS or where is None:
        return finding
    call = innermost_call(tree, text, where)
    if call is None:
        return finding
    lines = source_lines(text)
    target = _keyword(call, keyword) or call
    line, column = target.lineno, _column(lines, target.lineno, target.col_offset)
    end_line, end_column = target.end_lineno, _column(lines, target.end_lineno, target.end_col_offset)
    leaf = finding.field.rpartition(".")[2] or finding.field
    return dataclasses.replace(
        finding, line=line, column=column, end_line=end_line, end_column=end_column,
        related=(*finding.related, (finding.line, finding.column, f"{leaf} is set here")),
        edit=keyword_edit(tree, text, where, keyword, value))


def keyword_edit(tree: ast.Module, text: str, position: tuple[int, int], keyword: str, value: Any) -> dict | None:
    """The edit that sets keyword=value in the innermost call at position; None without one, or with * or **."""
    call = innermost_call(tree, text, position)
    if call is None:
        return None
    lines = source_lines(text)
    existing = _keyword(call, keyword)
    if existing is not None:
        return _replace(lines, existing.value, repr(value))
    if any(isinstance(arg, ast.Starred) for arg in call.args) or any(k.arg is None for k in call.keywords):
        return None
    return _append(lines, call, f"{keyword}={value!r}")


def apply_edit(text: str, edit: dict) -> str:
    """The text with the edit's span replaced by its replacement."""
    lines = source_lines(text)
    start = _offset(lines, edit["line"], edit["column"])
    end = _offset(lines, edit["end_line"], edit["end_column"])
    return text[:start] + edit["replacement"] + text[end:]


def append_edit(text: str, call: ast.Call, keyword: str, value: Any) -> dict:
    """The edit that adds keyword=value after the call's last argument, in the call's layout (the lightly calls'
    editor, check/fix/python.py, uses it too: a call with one argument per line gets a line of its own)."""
    return _append(source_lines(text), call, f"{keyword}={value!r}")


def innermost_call(tree: ast.Module, text: str, position: tuple[int, int],
                   named: tuple[str, ...] | None = None) -> ast.Call | None:
    """The smallest call (of a function or method of one of the `named`, when given) whose span holds
    (line, column), the column counted in characters, from 1."""
    lines = source_lines(text)
    spans = [(node, (node.lineno, _column(lines, node.lineno, node.col_offset)),
              (node.end_lineno, _column(lines, node.end_lineno, node.end_col_offset)))
             for node in ast.walk(tree) if isinstance(node, ast.Call) and (named is None or callee_name(node) in named)]
    holding = [(node, start, end) for node, start, end in spans if start <= tuple(position) < end]
    if not holding:
        return None
    return min(holding, key=lambda span: (span[2][0] - span[1][0], span[2][1] - span[1][1]))[0]


def source_lines(text: str) -> list[str]:
    """The lines as Python numbers them, ends kept: only \\n, \\r\\n and \\r end one (str.splitlines also
    splits at a form feed, which some scripts hold between sections, and every later line number would be off)."""
    lines = _LINE_END.split(text)
    return lines[:-1] if lines and not lines[-1] else lines


def callee_name(call: ast.Call) -> str | None:
    """The called name: `DINOLoss` in `DINOLoss(...)` and in `lightly.loss.DINOLoss(...)`."""
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def char_position(lines: list[str], node: ast.AST) -> tuple[int, int]:
    """A node's (line, column) as findings count them: from 1, the column in characters."""
    return node.lineno, _column(lines, node.lineno, node.col_offset)


def _keyword(call: ast.Call, keyword: str) -> ast.keyword | None:
    found = [k for k in call.keywords if k.arg == keyword]
    return found[-1] if found else None


def _append(lines: list[str], call: ast.Call, argument: str) -> dict:
    """The edit that adds `argument` after the call's last argument, in the call's layout."""
    closing = (call.end_lineno, call.end_col_offset - 1)  # the `)`, in bytes
    arguments = sorted([*call.args, *call.keywords], key=lambda node: (node.lineno, node.col_offset))
    if not arguments:
        return _insert(lines, closing, argument)
    last = arguments[-1]
    between = _code_between(lines, (last.end_lineno, last.end_col_offset), closing)
    trailing_comma = "," in between
    one_per_line = (_text(lines, last.lineno)[:last.col_offset].strip() == ""
                    and closing[0] > last.end_lineno and _text(lines, closing[0])[:closing[1]].strip() == "")
    if one_per_line:
        indent = _text(lines, last.lineno)[:last.col_offset]
        newline = "\r\n" if lines[last.lineno - 1].endswith("\r\n") else "\n"
        if trailing_comma:  # a line of its own before the `)`, with the comma the others have
            return _insert(lines, (closing[0], 0), f"{indent}{argument},{newline}")
        # the comma after the last argument, its comment kept on its line, the new argument below
        rest = _text(lines, last.end_lineno)[last.end_col_offset:].encode("latin-1").decode("utf-8")
        edit = _insert(lines, (last.end_lineno, last.end_col_offset), f",{rest}{newline}{indent}{argument}")
        return {**edit, "end_column": edit["column"] + len(rest)}
    if trailing_comma:
        comma = _comma_after(lines, (last.end_lineno, last.end_col_offset))
        return _insert(lines, comma, f" {argument},")
    return _insert(lines, (last.end_lineno, last.end_col_offset), f", {argument}")


def _code_between(lines: list[str], start: tuple[int, int], end: tuple[int, int]) -> str:
    """The source between two (line, byte column) places, comments left out (only `,` and blanks remain)."""
    parts = []
    for number in range(start[0], end[0] + 1):
        raw = _text(lines, number)
        raw = raw[:end[1]] if number == end[0] else raw
        raw = raw[start[1]:] if number == start[0] else raw
        parts.append(raw.split("#", 1)[0])
    return "\n".join(parts)


def _comma_after(lines: list[str], start: tuple[int, int]) -> tuple[int, int]:
    """Just past the first comma after start (the trailing comma of an inline argument list)."""
    line, column = start
    while True:
        found = _text(lines, line).split("#", 1)[0].find(",", column)
        if found >= 0:
            return line, found + 1
        line, column = line + 1, 0


def _insert(lines: list[str], at: tuple[int, int], replacement: str) -> dict:
    line, column = at[0], _column([raw.rstrip("\r\n") for raw in lines], at[0], at[1])
    return {"line": line, "column": column, "end_line": line, "end_column": column, "replacement": replacement}


def _replace(lines: list[str], node: ast.AST, replacement: str) -> dict:
    plain = [raw.rstrip("\r\n") for raw in lines]
    return {"line": node.lineno, "column": _column(plain, node.lineno, node.col_offset),
            "end_line": node.end_lineno, "end_column": _column(plain, node.end_lineno, node.end_col_offset),
            "replacement": replacement}


def _text(lines: list[str], number: int) -> str:
    """Line `number` (from 1) as UTF-8 bytes decoded back: ast's columns count bytes."""
    return lines[number - 1].rstrip("\r\n").encode("utf-8").decode("latin-1")


def _column(lines: list[str], number: int, byte_offset: int) -> int:
    """ast's byte offset on a line as a 1-based character column."""
    raw = lines[number - 1] if 0 < number <= len(lines) else ""
    return len(raw.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore")) + 1


def _offset(lines: list[str], number: int, column: int) -> int:
    return sum(len(raw) for raw in lines[:number - 1]) + column - 1
