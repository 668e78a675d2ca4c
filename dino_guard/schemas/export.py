"""The setup's JSON Schema, in draft-07 form.

pydantic emits JSON Schema 2020-12 (`$defs`, `prefixItems`); the YAML
language servers in editors (yaml-language-server, PyCharm) speak draft-07.
"""

from __future__ import annotations

import json
from typing import Any

from dino_guard.schemas.describe import describe_type
from dino_guard.schemas.setup import Setup

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
SCHEMA_ID = "https://github.com/dino-guard/dino-guard/blob/main/dino_guard/schemas/dino-guard.schema.json"


def _to_draft07(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_draft07(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _to_draft07(value) for key, value in node.items()}
    if "prefixItems" in node:  # fixed-length tuple: draft-07 writes it as an items array
        node["items"] = node.pop("prefixItems")
        node["additionalItems"] = False
    return node


def setup_schema() -> dict:
    schema = Setup.model_json_schema(ref_template="#/definitions/{model}")
    definitions = schema.pop("$defs", {})
    schema = _to_draft07(schema)
    schema["definitions"] = _to_draft07(definitions)
    return {"$schema": DRAFT_07, "$id": SCHEMA_ID, **schema}


def schema_json() -> str:
    return json.dumps(setup_schema(), indent=2, sort_keys=True)


def _default_text(info) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if hasattr(value, "model_dump"):
        return "section"
    if isinstance(value, tuple):
        value = list(value)
    return "null" if value is None else json.dumps(value)


def markdown_reference() -> str:
    """One table per section: field, type, default, description (for the README)."""
    lines = []
    sections = [("", Setup)]
    while sections:
        prefix, model = sections.pop(0)
        rows = []
        for name, info in model.model_fields.items():
            dotted = f"{prefix}{name}"
            nested = _section_model(info.annotation)
            if nested is not None:
                sections.append((f"{dotted}.", nested))
                continue
            cells = (f"`{dotted}`", describe_type(info.annotation), f"`{_default_text(info)}`", info.description or "")
            rows.append("| " + " | ".join(_cell(text) for text in cells) + " |")
        if rows:
            title = prefix.rstrip(".") or "top level"
            doc = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
            lines += [f"**{title}**" + (f": {doc}" if doc else ""), "", "| field | type | default | meaning |",
                      "|---|---|---|---|", *rows, ""]
    return "\n".join(lines).rstrip() + "\n"


def _cell(text: str) -> str:
    """A table cell: `|` (as in `adamw | adam | sgd`) would end the cell early, so it is escaped (GFM)."""
    return text.replace("|", "\\|")


def _section_model(annotation: Any):
    from typing import Union, get_args, get_origin

    from pydantic import BaseModel

    candidates = get_args(annotation) if get_origin(annotation) is Union else (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
