"""Every rule fixture carries its expectations inline: `# expect: DG201` on
the line where the finding must be reported. One test runs them all
(after flake8-bugbear's eval files and sqlfluff's YAML rule cases)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dino_guard.check.engine import Options
from dino_guard.check.inputs import check_path
from dino_guard.findings import Severity
from dino_guard.rules.registry import all_rules
from tests.rules.helpers import SETUP_FILES, expectations


def reported(path: Path, expected_codes: set[str]) -> tuple[set[tuple[int, str]], set[str]]:
    # as `check --warn-unused-ignores` sees it: inline suppressions apply
    findings = check_path(path, Options(count_images=False, warn_unused_ignores=True))
    shown = {(f.line, f.code) for f in findings if f.severity != Severity.INFO or f.code in expected_codes}
    return shown, {f.code for f in findings}


@pytest.mark.parametrize("path", SETUP_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_reports_exactly_what_it_expects(path: Path):
    expected = expectations(path)
    shown, all_codes = reported(path, {code for _, code in expected})
    assert shown == expected
    twin = re.match(r"(DG\d{3})_good", path.name)
    if twin:
        assert twin.group(1) not in all_codes


def test_every_setup_rule_has_a_bad_and_a_good_fixture():
    bad = {code for path in SETUP_FILES for _, code in expectations(path)}
    good = {m.group(1) for p in SETUP_FILES if (m := re.match(r"(DG\d{3})_good", p.name))}
    for entry in all_rules():
        if entry.origin == "setup":
            assert entry.code in bad, f"{entry.code} has no fixture that expects it"
            if entry.severity != Severity.INFO or entry.code != "DG412":  # DG412 always shows; it has no 'good' case
                assert entry.code in good, f"{entry.code} has no {entry.code}_good fixture"
        elif entry.origin == "loader":
            assert entry.code in bad, f"{entry.code} has no fixture that expects it"
