"""`check --fix` over every broken example and rule fixture, in YAML, TOML, JSON and Python.

The YAML setups are also written as TOML and JSON here, so each format's
editor meets every fix. On each file, with unsafe fixes on:
- a fix never introduces an error or warning that was not there before (an info is advice,
  never applied: DG410's swap to start 0.996 may earn DG411's note on a small batch);
- fixing is idempotent (fixing the fixed text changes nothing);
- on setup files every applicable fix is gone afterwards;
- every line the fixes change names one of the fields they set (all other bytes stay).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomlkit

from dino_guard.check.engine import Options
from dino_guard.check.fix.apply import applies, fix_text
from dino_guard.check.inputs import findings_of, load_text
from dino_guard.findings import Severity
from dino_guard.setupfile.loader import parse_text
from tests.helpers import EXAMPLES, REPO
from tests.rules.helpers import SETUP_FILES

OPTIONS = Options(count_images=False)
SCRIPTS = (sorted((EXAMPLES / "scripts").glob("*.py")) + sorted((REPO / "tests/sources/fixtures").glob("*.py")))


def _has_none(value) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_has_none(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_none(v) for v in value)
    return False


def _as(fmt: str, path: Path) -> str | None:
    """The YAML setup's data written in another format, or None when it has no such spelling."""
    text = path.read_text(encoding="utf-8")
    if fmt == "yaml":
        return text
    document = parse_text(text, ".yaml")  # bounded: yaml.safe_load would expand DG007's alias bomb
    data = document.data
    if document.problems or not isinstance(data, dict) or not data:
        return None
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    return None if _has_none(data) else tomlkit.dumps(data)  # TOML has no null


CASES = [(path, fmt) for path in SETUP_FILES for fmt in ("yaml", "toml", "json")] + [(p, "py") for p in SCRIPTS]


def _findings(path: Path, text: str) -> list:
    return findings_of(path, load_text(path, text), OPTIONS)


def _keys(findings: list) -> set[tuple[str, str]]:
    return {(f.code, f.field) for f in findings if f.severity != Severity.INFO}


def _leaves(data, prefix: str = "") -> dict:
    if not isinstance(data, dict):
        return {prefix: data}
    out = {}
    for key, value in data.items():
        out.update(_leaves(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _changed_fields(path: Path, before: str, after: str) -> set[str]:
    old, new = (_leaves(parse_text(t, path.suffix).data or {}) for t in (before, after))
    return {k for k in old.keys() | new.keys() if old.get(k, ...) != new.get(k, ...)}


def _written(field: str, fields: frozenset) -> bool:
    return any(field == f or field.startswith(f + ".") for f in fields)


def _only_fixed_lines_change(fixed) -> None:
    """Every changed line names a field the fixes wrote, or is one element of a list they rewrote."""
    words = {part for dotted in fixed.fields for part in dotted.split(".")}
    lines = fixed.diff().splitlines()[2:]
    comma_only = {line[1:] for line in lines if line[:1] == "-" and "+" + line[1:] + "," in lines}
    for line in lines:
        body = line[1:]
        if line[:1] not in "+-" or not body.strip(" {}[],") or body.removesuffix(",") in comma_only:
            continue  # context, or a JSON line that gained the comma before an inserted entry
        if line[:1] == "-" and fixed.path.suffix == ".py":
            continue  # a call that gains a keyword argument: its new line names it
        bare_element = not any(c in body for c in ":=#")
        named = body.lower() if fixed.path.suffix == ".py" else body  # a script's constant: LOCAL_CROP_SIZE = 112
        assert bare_element or any(word in named for word in words), f"{body!r} changed\n{fixed.diff()}"


@pytest.mark.parametrize("source, fmt", CASES, ids=lambda v: v.name if isinstance(v, Path) else v)
def test_fixing_adds_no_finding_and_is_idempotent(source: Path, fmt: str, tmp_path: Path):
    text = source.read_text(encoding="utf-8") if fmt == "py" else _as(fmt, source)
    if text is None:
        pytest.skip(f"{source.name} has no {fmt} spelling")
    path = tmp_path / (source.name if fmt == "py" else source.name.replace(".yaml", f".{fmt}"))
    before = _findings(path, text)
    fixed = fix_text(path, text, OPTIONS, unsafe=True)
    after = _findings(path, fixed.after)

    assert _keys(after) <= _keys(before), f"new findings: {_keys(after) - _keys(before)}\n{fixed.diff()}"
    assert fix_text(path, fixed.after, OPTIONS, unsafe=True).after == fixed.after, "a second --fix changed the file"
    if fmt != "py":
        assert not [f for f in after if applies(f, unsafe=True)], fixed.diff()
    assert fixed.applied == 0 or fixed.changed
    _only_fixed_lines_change(fixed)
    if fmt != "py":
        changed = _changed_fields(path, text, fixed.after)
        assert all(_written(field, fixed.fields) for field in changed), (changed, fixed.fields)


def test_the_fixture_sweep_covers_every_format_and_fixes_something_in_each():
    """Guards the test above against silently skipping a format."""
    fixed_in = set()
    for source, fmt in CASES:
        text = source.read_text(encoding="utf-8") if fmt == "py" else _as(fmt, source)
        if text is None or fmt in fixed_in:
            continue
        path = Path("/nonexistent") / (source.name if fmt == "py" else source.name.replace(".yaml", f".{fmt}"))
        if fix_text(path, text, OPTIONS, unsafe=False).changed:
            fixed_in.add(fmt)
    assert fixed_in == {"yaml", "toml", "json", "py"}
