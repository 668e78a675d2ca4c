"""The setup's JSON Schema, in draft-07 form.

pydantic emits JSON Schema 2020-12 (`$defs`, `prefixItems`); the YAML
language servers in editors (yaml-language-server, PyCharm) speak draft-07.
"""

from __future__ import annotations

import json
from typing import Any

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
