"""Every script fixture carries its expectations inline: `# expect: DG201` on the
line where the finding must be reported; `good_*` scripts expect nothing and
must give no error. One test runs them all through load_python + the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from dino_guard.check.engine import Options, check_loaded
from dino_guard.check.inputs import findings_of
from dino_guard.findings import Severity
from dino_guard.rules.registry import all_rules
from dino_guard.sources.python import load_python
from tests.helpers import expectations
from tests.sources.helpers import FIXTURES, SCRIPTS


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_reports_exactly_what_it_expects(path: Path):
    expected = expectations(path)
    findings = findings_of(path, load_python(path), Options(count_images=False))  # as `check` reports them
    shown = {(f.line, f.code) for f in findings if f.severity != Severity.INFO or (f.line, f.code) in expected}
    assert shown == expected, "\n".join(f"{f.line}:{f.column} {f.code} {f.message}" for f in findings)
    if path.name.startswith("good"):
        assert not [f for f in findings if f.severity == Severity.ERROR]


def test_enough_fixtures_in_every_style():
    good = [p for p in SCRIPTS if p.name.startswith("good")]
    bad = [p for p in SCRIPTS if p.name.startswith("bad")]
    assert len(good) + len(bad) >= 30 and len(good) >= 8
    for path in bad:
        # one mistake, reported at each call that makes it (the student's head and the teacher's copy)
        assert len({code for _, code in expectations(path)}) == 1, f"{path.name}: a broken fixture holds one mistake"


def test_every_script_code_has_a_fixture():
    expected = {code for path in SCRIPTS for _, code in expectations(path)}
    for entry in all_rules():
        # DG707/DG708/DG730 depend on the project's pin files (tests/sources/releases), DG709 on the budget
        if entry.origin == "script" and entry.code not in ("DG709", "DG707", "DG708", "DG730"):
            assert entry.code in expected, f"{entry.code} has no script fixture"
    assert {"DG707", "DG708"} & expected


def test_a_flattened_resnet_feature_map_names_the_width_the_head_sees():
    """lightly's `.flatten(start_dim=1)` after children()[:-2] used to silence DG715 (issue 25)."""
    loaded = load_python(FIXTURES / "bad_resnet_feature_map_flattened.py")
    (found,) = [f for f in check_loaded(loaded, Options()) if f.code == "DG715"]
    assert "512·H·W values (25088 for 224 px crops" in found.message and found.line == 36
