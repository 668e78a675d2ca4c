"""Advice is a fixed point: applying a rule's own suggested change (its
structured `fix`) to the setup it complained about makes that rule silent.

(DG102 once suggested `output_dim: 256` for 100 images and, once applied,
warned again with the same suggestion.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.rules.helpers import CASES, findings_of

# Setup rules that give advice but no single value to write, and why.
NO_FIX = {
    "DG202": "an unknown backbone has a value only when exactly one catalogue name is close",
    "DG412": "info: states the learning rate used; nothing to change",
    "DG603": "an unknown GPU name: only the user knows which card it is",
}

def apply_fix(data: dict, fix: dict) -> None:
    for dotted, value in fix.items():
        *parents, leaf = dotted.split(".")
        node = data
        for key in parents:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value


@pytest.mark.parametrize("path, code", CASES, ids=lambda v: v.name if isinstance(v, Path) else v)
def test_applying_the_rules_fix_silences_the_rule(path: Path, code: str, tmp_path: Path):
    found = findings_of(path, code)
    assert found, f"{path.name} expects {code}"
    fixes = [f.fix for f in found if f.fix]
    if not fixes:
        assert code in NO_FIX, f"{code} gives no structured fix on {path.name}: add one, or list it in NO_FIX with why"
        return
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for fix in fixes:
        apply_fix(data, fix)
    fixed = tmp_path / path.name
    fixed.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    again = findings_of(fixed, code)
    assert not again, f"{code} still fires after its own fix {fixes}: {again[0].message} / {again[0].help}"


def _yaml_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


@pytest.mark.parametrize("path, code", CASES, ids=lambda v: v.name if isinstance(v, Path) else v)
def test_the_help_states_the_values_of_the_fix(path: Path, code: str):
    for finding in findings_of(path, code):
        for value in (finding.fix or {}).values():
            leaves = value.values() if isinstance(value, dict) else [value]
            for leaf in leaves:
                if leaf is not None:
                    assert _yaml_text(leaf) in finding.help, (finding.help, finding.fix)


def test_apply_fix_sets_nested_keys_and_removes_with_none():
    data = {"data": {"path": "x", "synthetic": "shapes"}}
    apply_fix(data, {"data.synthetic": None, "model.head.input_dim": 384})
    assert data == {"data": {"path": "x"}, "model": {"head": {"input_dim": 384}}}
