"""YAML (and JSON) to plain Python data, with the line:column of every key.

PyYAML's safe loader silently keeps the last of two duplicate keys and
expands aliases without limit ("billion laughs"). We compose the node graph
ourselves instead, so that duplicates become findings, alias expansion has a
budget, and every value keeps the position of its key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

MAX_NODES = 100_000  # far above any real setup; stops alias bombs early
MAX_DEPTH = 64

Position = tuple[int, int]  # 1-based line, column
FieldPath = tuple  # ("model", "head", "input_dim") or ("transform", "sigmas", 0)


@dataclass
class Problem:
    """Something wrong with the document itself, at a position."""

    kind: str  # "syntax" | "duplicate-key" | "too-complex" | "bad-key" | "bad-value"
    message: str
    position: Position
    path: FieldPath = ()


@dataclass
class Document:
    data: Any = None
    positions: dict = field(default_factory=dict)  # FieldPath -> Position
    problems: list = field(default_factory=list)


class _Invalid:
    """Stands for a scalar its tag cannot hold (already a Problem): the schema does not report it again."""

    def __repr__(self) -> str:
        return "<invalid>"


INVALID = _Invalid()


class _Budget(Exception):
    pass


def _pos(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


class _Converter:
    def __init__(self, doc: Document):
        self.doc = doc
        self.nodes = 0
        self.constructor = yaml.constructor.SafeConstructor()  # scalars only: tags are resolved when composed

    def convert(self, node: yaml.Node, path: FieldPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _Budget(f"the document expands to more than {MAX_NODES} values (aliases?)")
        if depth > MAX_DEPTH:
            raise _Budget(f"the document is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                self.doc.positions.setdefault(path + (index,), _pos(child))
                items.append(self.convert(child, path + (index,), depth + 1))
            return items
        return self._scalar(node, path)

    def _scalar(self, node: yaml.Node, path: FieldPath) -> Any:
        """The scalar's value; a value its tag cannot hold is a problem, not a crash.

        PyYAML's constructors raise plain ValueError/KeyError for `!!float abc`,
        `!!bool maybe`, `!!int 0x`, an impossible date (2024-11-31) or an integer
        of more digits than Python converts.
        """
        try:
            return self.constructor.construct_object(node)
        except yaml.constructor.ConstructorError:
            raise
        except (ValueError, KeyError, TypeError, OverflowError, IndexError) as exc:
            tag = node.tag.rsplit(":", 1)[-1]
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            self.doc.problems.append(Problem("bad-value", f"'{shown}' is not a valid {tag}: {_reason(exc)}",
                                             _pos(node), path))
            return INVALID

    def _mapping(self, node: yaml.MappingNode, path: FieldPath, depth: int) -> dict:
        result: dict = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge":
                self.doc.problems.append(Problem("bad-key",
                                                 "merge keys (<<) are not supported in setup files; "
                                                 "write the fields out",
                                                 _pos(key_node), path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.doc.problems.append(Problem("bad-key", "a key must be a plain name", _pos(key_node), path))
                continue
            key = key_node.value  # as written: `true:`, `null:` and `1:` are the names the user typed
            if not key:
                self.doc.problems.append(Problem("bad-key", "a key must be a plain name, not empty or null",
                                                 _pos(key_node), path))
                continue
            child = path + (key,)
            if key in result:
                first = self.doc.positions.get(child, (0, 0))
                self.doc.problems.append(Problem(
                    "duplicate-key",
                    f"key '{key}' appears twice (first at line {first[0]}); the second would silently win",
                    _pos(key_node), child))
                continue
            self.doc.positions[child] = _pos(key_node)
            result[key] = self.convert(value_node, child, depth + 1)
        return result


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return "not one of the values this tag accepts"
    text = str(exc)
    return text.split(";")[0] if "integer string conversion" in text else text


# libyaml's parser when PyYAML has it (its wheels do): the same nodes and marks, several times faster than
# the pure-Python one, which was half of a pre-commit run over 20 setups (bench/check/RESULTS.md).
# A document libyaml refuses is read again by the pure-Python parser, whose messages, positions and
# nesting limit (DG007) the findings are written for: errors are rare, and then exact.
_FAST_LOADER = getattr(yaml, "CSafeLoader", None)


def _compose(text: str):
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except Exception:  # noqa: BLE001 -- any refusal (a YAML error, a lone surrogate): the pure-Python parser decides
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def parse_yaml(text: str) -> Document:
    """Parse YAML or JSON text; never raises for bad content."""
    doc = Document()
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as exc:
        doc.problems.append(Problem("syntax", _syntax_message(exc), _syntax_position(exc)))
        return doc
    except yaml.YAMLError as exc:
        doc.problems.append(Problem("syntax", f"invalid YAML: {exc}", (1, 1)))
        return doc
    except RecursionError:
        doc.problems.append(Problem("too-complex", "the document is nested too deeply to read", (1, 1)))
        return doc
    if root is None:
        return doc
    try:
        doc.data = _Converter(doc).convert(root, (), 0)
    except _Budget as exc:
        doc.data = None
        doc.problems.append(Problem("too-complex", str(exc), _pos(root)))
    except yaml.constructor.ConstructorError as exc:
        mark = exc.problem_mark
        doc.problems.append(Problem("syntax", f"invalid YAML value: {exc.problem}",
                                    (mark.line + 1, mark.column + 1) if mark else (1, 1)))
        doc.data = None
    return doc


def _syntax_position(exc: yaml.MarkedYAMLError) -> Position:
    mark = exc.problem_mark or exc.context_mark
    # An unclosed bracket is only noticed at the end of the file: point at where it opened.
    if exc.context_mark is not None and exc.problem and "<stream end>" in exc.problem:
        mark = exc.context_mark
    return (mark.line + 1, mark.column + 1) if mark else (1, 1)


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    parts = []
    if exc.context:
        where = f" (line {exc.context_mark.line + 1})" if exc.context_mark else ""
        parts.append(f"{exc.context}{where}")
    if exc.problem:
        parts.append(exc.problem)
    return "invalid YAML: " + (": ".join(parts) or "cannot parse")
