"""Fixes in TOML setups through tomlkit, which keeps comments, order and formatting of what it does not touch."""

from __future__ import annotations

from typing import Any

from dino_guard.check.fix.errors import NotFixable


def apply(text: str, fix: dict) -> str:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise NotFixable(f"the file does not parse: {exc}") from None
    for dotted, value in fix.items():
        _set(document, dotted.split("."), value)
    return tomlkit.dumps(document)


def _set(document, path: list[str], value: Any) -> None:
    import tomlkit

    node = document
    for key in path[:-1]:
        child = node.get(key)
        if child is None:
            if value is None:
                return
            child = tomlkit.table() if node is document else tomlkit.inline_table()
            node[key] = child
            child = node[key]
        elif not hasattr(child, "get"):
            raise NotFixable(f"{key} holds a value, not a table")
        node = child
    leaf = path[-1]
    if value is None:
        if leaf in node:
            del node[leaf]
        return
    node[leaf] = _item(value, inline=node is not document)


def _item(value: Any, inline: bool):
    """Python data as a TOML item: a dict becomes an inline table below the top level, a table at it."""
    import tomlkit

    if isinstance(value, dict):
        table = tomlkit.inline_table() if inline else tomlkit.table()
        table.update(value)
        return table
    return tomlkit.item(value)
