"""The README is part of the product: its generated blocks stay in sync and
its two commands stay what CI and users run."""

from __future__ import annotations

import importlib.util

from dino_guard.rules.registry import all_rules
from tests.conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def _update_readme():
    spec = importlib.util.spec_from_file_location("update_readme", REPO / "scripts" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_rule_code_is_in_the_readme_table():
    for entry in all_rules():
        assert f"| {entry.code} | {entry.name} |" in README, f"{entry.code} missing: run scripts/update_readme.py"


def test_generated_blocks_are_current():
    assert _update_readme().render(README) == README, "run .venv/bin/python scripts/update_readme.py"


def test_every_rule_is_documented_with_the_five_sections():
    from dino_guard.rules.registry import DOC_SECTIONS

    for entry in all_rules():
        for section in DOC_SECTIONS:
            assert f"{section}:" in entry.doc, f"{entry.code} lacks '{section}:' in its documentation"
        assert entry.summary and not entry.summary.startswith(DOC_SECTIONS)


def test_the_two_commands_are_the_scripts_ci_runs():
    assert "bash scripts/demo.sh" in README and "bash scripts/test.sh" in README
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()
