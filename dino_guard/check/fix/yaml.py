"""Fixes in YAML setups (block and flow style): values written as YAML flow scalars and collections."""

from __future__ import annotations

from typing import Any

import yaml

from dino_guard.check.fix.nodes import Dialect, apply_fix


def render(value: Any) -> str:
    """A value as one line of YAML flow style: `bf16`, `0.9995`, `[0.05, 0.4]`, `{input_dim: 384}`."""
    dumped = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=float("inf"))
    return dumped.removesuffix("\n").removesuffix("\n...").strip()


YAML = Dialect(key=render, value=render)


def apply(text: str, fix: dict) -> str:
    return apply_fix(text, fix, YAML)
