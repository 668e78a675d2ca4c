"""Edit a YAML or JSON mapping document at the exact spans its parser reports.

A round-trip dump (ruamel.yaml) re-flows what it did not change: it joins a
flow mapping written over two lines into one and drops an explicit `null`
(both happen in examples/). So the document is composed once per edit with
PyYAML (JSON is YAML), each node carries its start and end offset, and only
the characters of the value being changed are replaced; a missing key is
inserted after its section's last entry in the section's own style (block
line, flow `, key: value`, or a new line in a flow mapping written over
several lines), and a removed key takes its line or its `, key: value` along.
Every other byte stays as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from dino_guard.check.fix.errors import NotFixable


@dataclass(frozen=True)
class Dialect:
    """How a key and a value are written: YAML's plain flow style or JSON."""

    key: Callable[[str], str]
    value: Callable[[Any], str]


def apply_fix(text: str, fix: dict, dialect: Dialect) -> str:
    """The text with each {dotted field: value} of fix written in (None removes the key)."""
    for dotted, value in fix.items():
        text = set_field(text, dotted.split("."), value, dialect)
    return text


def set_field(text: str, path: list[str], value: Any, dialect: Dialect) -> str:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise NotFixable(f"the file does not parse: {exc}") from None
    if not isinstance(node, yaml.MappingNode):
        raise NotFixable("the document is not a mapping")
    for depth, key in enumerate(path):
        pair = _pair(node, key)
        rest = path[depth + 1:]
        if pair is None:
            return text if value is None else _insert(text, node, key, _nest(rest, value), dialect)
        key_node, value_node = pair
        if not rest:
            return _remove(text, node, pair) if value is None else _replace(text, key_node, value_node, value, dialect)
        if not isinstance(value_node, yaml.MappingNode):
            if value is None:
                return text  # nothing below a scalar to remove
            return _replace(text, key_node, value_node, _nest(rest, value), dialect)
        node = value_node
    return text


def _nest(path: list[str], value: Any) -> Any:
    for key in reversed(path):
        value = {key: value}
    return value


def _pair(node: yaml.MappingNode, key: str) -> tuple | None:
    found = [(k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key]
    return found[-1] if found else None  # the one the loader keeps (a duplicate is DG005 anyway)


def end_of(node: yaml.Node) -> int:
    """Offset just past a node's last character: a block collection's end mark lies at the next token."""
    if isinstance(node, yaml.ScalarNode) or node.flow_style:
        return node.end_mark.index
    if not node.value:
        return node.start_mark.index
    last = node.value[-1]
    return end_of(last[1] if isinstance(last, tuple) else last)


def _is_empty(node: yaml.Node) -> bool:
    """`key:` with nothing after it: PyYAML marks the missing scalar at the next token."""
    return isinstance(node, yaml.ScalarNode) and node.start_mark.index == node.end_mark.index


def _replace(text: str, key_node: yaml.Node, value_node: yaml.Node, value: Any, dialect: Dialect) -> str:
    if _same_shape_list(value_node, value):  # element by element: a list over several lines keeps its lines
        for item, new in reversed(list(zip(value_node.value, value, strict=True))):
            text = text[:item.start_mark.index] + dialect.value(new) + text[item.end_mark.index:]
        return text
    rendered = dialect.value(value)
    if _is_empty(value_node):
        colon = text.index(":", key_node.end_mark.index) + 1
        return text[:colon] + " " + rendered + text[colon:]
    return text[:value_node.start_mark.index] + rendered + text[end_of(value_node):]


def _same_shape_list(node: yaml.Node, value: Any) -> bool:
    return (isinstance(node, yaml.SequenceNode) and isinstance(value, list) and len(node.value) == len(value)
            and all(isinstance(item, yaml.ScalarNode) for item in node.value))


def _insert(text: str, mapping: yaml.MappingNode, key: str, value: Any, dialect: Dialect) -> str:
    entry = f"{dialect.key(key)}: {dialect.value(value)}"
    if mapping.flow_style:
        return _insert_flow(text, mapping, entry)
    if not mapping.value:
        raise NotFixable("an empty block mapping")
    first_key, last_value = mapping.value[0][0], mapping.value[-1][1]
    at = _line_end(text, end_of(last_value))
    indent, newline = " " * first_key.start_mark.column, _newline(text)
    if at == len(text) and not text.endswith("\n"):
        return text + newline + indent + entry + newline
    return text[:at] + indent + entry + newline + text[at:]


def _insert_flow(text: str, mapping: yaml.MappingNode, entry: str) -> str:
    if not mapping.value:
        brace = mapping.start_mark.index + 1
        return text[:brace] + entry + text[brace:]
    last_key, last_value = mapping.value[-1]
    at = end_of(last_value)
    if mapping.start_mark.line != mapping.end_mark.line:  # written over several lines: one entry per line
        return text[:at] + "," + _newline(text) + " " * last_key.start_mark.column + entry + text[at:]
    return text[:at] + ", " + entry + text[at:]


def _remove(text: str, mapping: yaml.MappingNode, pair: tuple) -> str:
    index = mapping.value.index(pair)
    key_node, value_node = pair
    if mapping.flow_style:
        if index > 0:  # take the comma before it along: `, key: value`
            return text[:end_of(mapping.value[index - 1][1])] + text[end_of(value_node):]
        if len(mapping.value) > 1:  # the first of several: up to the next key
            return text[:key_node.start_mark.index] + text[mapping.value[1][0].start_mark.index:]
        return text[:key_node.start_mark.index] + text[end_of(value_node):]
    start = text.rfind("\n", 0, key_node.start_mark.index) + 1
    return text[:start] + text[_line_end(text, end_of(value_node)):]


def _newline(text: str) -> str:
    """The file's own line ending, for the lines an insertion adds."""
    return "\r\n" if "\r\n" in text else "\n"


def _line_end(text: str, offset: int) -> int:
    """Offset just past the newline ending the line that holds offset (its trailing comment included)."""
    newline = text.find("\n", offset)
    return len(text) if newline < 0 else newline + 1
