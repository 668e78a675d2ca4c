"""Every fix a rule gives is classed safe or unsafe for `check --fix`, and only fixes are classed."""

from __future__ import annotations

from functools import cache

import pytest

from dino_guard.check.engine import Options, check_loaded
from dino_guard.codes import CODES, FIX_SAFETY, fix_safety
from dino_guard.findings import Severity
from dino_guard.setupfile.loader import load_setup
from dino_guard.sources.python import load_python
from tests.rules.helpers import SETUP_FILES
from tests.sources.helpers import SCRIPTS


def _codes_with_a_fix() -> set[str]:
    return {f.code for path in SETUP_FILES for f in check_loaded(load_setup(path), Options(count_images=False))
            if f.fix} | _script_codes_with_a_fix()


@cache
def _script_codes_with_a_fix() -> frozenset[str]:
    """Script rules that carry a fix of their own (DG725: the teacher head's output_dim)."""
    return frozenset(f.code for path in SCRIPTS for f in check_loaded(load_python(path), Options(count_images=False))
                     if f.fix and CODES[f.code].origin == "script")


def test_every_code_that_gives_a_fix_is_classed():
    unclassed = {code for code in _codes_with_a_fix() if CODES[code].severity != Severity.INFO} - set(FIX_SAFETY)
    assert not unclassed, "add these to codes.FIX_SAFETY (safe: makes the run possible; unsafe: changes the recipe)"


@pytest.mark.parametrize("code", sorted(FIX_SAFETY))
def test_classed_codes_are_setup_rules_or_fixing_script_rules_and_not_infos(code):
    assert CODES[code].origin == "setup" or code in _script_codes_with_a_fix()
    assert CODES[code].severity != Severity.INFO
    assert FIX_SAFETY[code] in ("safe", "unsafe")


def test_infos_and_loader_codes_have_no_fix():
    assert fix_safety("DG411") == fix_safety("DG412") == fix_safety("DG001") == fix_safety("DG701") == "none"


def test_recipe_changes_are_unsafe_and_run_blockers_safe():
    assert {fix_safety(c) for c in ("DG201", "DG401", "DG101", "DG301", "DG302", "DG303")} == {"safe"}
    assert {fix_safety(c) for c in ("DG102", "DG402", "DG410", "DG413", "DG415", "DG104")} == {"unsafe"}


def test_rules_json_lists_the_fix_class(cli):
    import json

    by_code = {r["code"]: r["fix"] for r in json.loads(cli("rules", "--format", "json").output)}
    assert by_code["DG201"] == "safe" and by_code["DG402"] == "unsafe" and by_code["DG412"] == "none"


