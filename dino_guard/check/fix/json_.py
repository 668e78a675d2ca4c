"""Fixes in JSON setups: values written as JSON, keys quoted; a multi-line object gets one entry per line."""

from __future__ import annotations

import json

from dino_guard.check.fix.nodes import Dialect, apply_fix

JSON = Dialect(key=json.dumps, value=json.dumps)


def apply(text: str, fix: dict) -> str:
    return apply_fix(text, fix, JSON)
