"""Whether the literal a finding's value came from may be edited: it must feed that one field and nothing else.

`LOCAL = 100` ... `DINOTransform(local_crop_size=LOCAL)`: DG301 is reported at
the `100` (script_help.at_origin) and its fix is 112 there. Editing the
literal changes every use of LOCAL, so the edit is offered (the JSON `edit`,
which `check --fix` writes) only when it certainly changes nothing but the
field the finding is about:

- the literal is the whole right side of `NAME = literal`, and NAME is bound
  nowhere else in the file;
- every read of NAME, and of each parameter of the script's own functions and
  classes it is passed to, is a call argument that the evaluator saw carry this
  literal (Trace.origins): no arithmetic, no attribute, no read it did not follow;
- each of those calls either passes the value on to a named parameter of a
  function or class of the script, or is a use: the read the finding was
  found at (`AdamW(params, lr=LR)`), or the finding's lightly call taking it
  as the finding's keyword (by name, or by position in lightly's signature).

Several uses of that kind (the student's and the teacher's head, one
`input_dim`) are one edit, and the help names each line. Anything else (the
constant also sizes a Resize or feeds another keyword, a parameter's default,
a literal passed in a call) is refused: the finding stays at the literal with
its help, and `check --fix` counts it as remaining. Being wrong here would
change a value the finding is not about; refusing only leaves an edit to the user.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from dino_guard.sources import lightly_api
from dino_guard.sources.call_edit import callee_name, char_position, source_lines


@dataclass(frozen=True)
class Slot:
    """Where a name is read as a call argument: the call, and the position or keyword it is passed as."""

    call: ast.Call
    index: int | None
    keyword: str | None


def sole_uses(tree: ast.Module, text: str, origins: dict, span: tuple, use: tuple[int, int],
              callee: str | None, keyword: str) -> list[int] | None:
    """The lines of the uses the literal at span reaches, when it reaches nothing else; None when editing it
    could change another value (or it is no `NAME = literal`).

    A use is the read at `use` (where the finding was found), or any read passed to a `callee(keyword=...)`
    call (the teacher's head beside the student's)."""
    lines = source_lines(text)
    target = _assigned_name(tree, lines, span)
    if target is None:
        return None
    carried = {position for position, origin in origins.items() if origin == span}
    reads, slots, definitions = _index(tree)
    signature = [name for name, _ in lightly_api.SIGNATURES.get(callee or "", ())]
    place = signature.index(keyword) if keyword in signature else None  # where a positional argument passes it
    names, pending, uses = {target.id}, [target.id], []
    while pending:
        for node in reads.get(pending.pop(), []):
            if node is target:
                continue
            slot = slots.get(id(node))
            if not isinstance(node.ctx, ast.Load) or slot is None or char_position(lines, node) not in carried:
                return None  # rebound, or read as anything but an argument that carries this literal
            if char_position(lines, node) == tuple(use) or _takes(slot, callee, keyword, place):
                uses.append(node.lineno)
                continue
            parameter = _parameter(definitions.get(callee_name(slot.call), []), slot)
            if parameter is None or not reads.get(parameter):
                return None  # not passed on to a parameter of the script that reads it (a library method?)
            if parameter not in names:
                names.add(parameter)
                pending.append(parameter)
    if _bound_otherwise(tree, names):
        return None
    return sorted(set(uses)) or None


def _takes(slot: Slot, callee: str | None, keyword: str, place: int | None) -> bool:
    """A `callee(...)` call that receives the value as `keyword`: by name, or at its place in the signature."""
    if callee is None or callee_name(slot.call) != callee:
        return False
    return slot.keyword == keyword or (slot.index is not None and slot.index == place)


def _assigned_name(tree: ast.Module, lines: list[str], span: tuple) -> ast.Name | None:
    """NAME in `NAME = literal` (or `NAME: int = literal`) when the literal is the one at span."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and char_position(lines, value) == tuple(span[:2]):
            return target
    return None


def _index(tree: ast.Module) -> tuple[dict, dict, dict]:
    """Every Name node by its name; each name read as a call argument, its Slot; functions and classes by name."""
    reads: dict[str, list[ast.Name]] = {}
    slots: dict[int, Slot] = {}
    definitions: dict[str, list[tuple[ast.AST, bool]]] = {}  # name -> [(def, is a method)]
    methods = {id(item) for node in ast.walk(tree) if isinstance(node, ast.ClassDef) for item in node.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            reads.setdefault(node.id, []).append(node)
        elif isinstance(node, ast.Call):
            for i, arg in enumerate(node.args):
                if isinstance(arg, ast.Starred):
                    break  # the arguments after it land on unknown positions
                if isinstance(arg, ast.Name):
                    slots[id(arg)] = Slot(node, i, None)
            for kw in node.keywords:
                if kw.arg is not None and isinstance(kw.value, ast.Name):
                    slots[id(kw.value)] = Slot(node, None, kw.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            definitions.setdefault(node.name, []).append((node, id(node) in methods))
    return reads, slots, definitions


def _parameter(found: list, slot: Slot) -> str | None:
    """The parameter of the script's one function (a class: its __init__) that the argument binds to."""
    if len(found) != 1:
        return None  # not the script's, or several of that name: which one runs is not certain
    node, method = found[0]
    if isinstance(node, ast.ClassDef):
        inits = [item for item in node.body if isinstance(item, ast.FunctionDef) and item.name == "__init__"]
        if len(inits) != 1:
            return None
        node, method = inits[0], True
    if node.decorator_list:
        return None  # a staticmethod, a classmethod or a wrapper: the binding is not plain
    spec = node.args
    positional = [a.arg for a in spec.posonlyargs + spec.args][1 if method else 0:]
    if slot.keyword is not None:
        return slot.keyword if slot.keyword in positional + [a.arg for a in spec.kwonlyargs] else None
    return positional[slot.index] if slot.index < len(positional) else None  # past them: into *args


def _bound_otherwise(tree: ast.Module, names: set) -> bool:
    """A name made global, imported, deleted or bound by a def or class: its reads may see another value."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Global | ast.Nonlocal) and names & set(node.names):
            return True
        if isinstance(node, ast.alias) and (node.asname or node.name.split(".")[0]) in names:
            return True
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name in names:
            return True
    return False
