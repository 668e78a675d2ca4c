"""Graded rules: one code, a warning when failure is likely and an error when the numbers make it certain."""

from __future__ import annotations

import pytest

from dino_guard.check.engine import Options
from dino_guard.check.inputs import check_path
from dino_guard.codes import CODES, make_finding
from dino_guard.findings import Severity
from dino_guard.rules.registry import all_rules
from tests.rules.helpers import FIXTURES
from tests.sources.helpers import run, script


def _severity_of(fixture: str, code: str) -> Severity:
    findings = check_path(FIXTURES / fixture, Options())
    return next(f.severity for f in findings if f.code == code)


@pytest.mark.parametrize("fixture, severity", [
    ("DG402_slightly_high_bad.dino.yaml", Severity.WARNING),  # 0.08: above DINO's 0.07, still below the student
    ("DG402_bad.dino.yaml", Severity.ERROR),  # 0.2 >= student_temp 0.1: uniform collapse for certain
    ("DG402_ibot_slightly_high_bad.dino.yaml", Severity.WARNING),  # the iBOT loss's own 0.08, graded alike
    ("DG402_ibot_bad.dino.yaml", Severity.ERROR),  # the iBOT loss's 20.0 >= its student_temp 0.1
])
def test_teacher_temp_is_graded_by_the_numbers(fixture, severity):
    assert _severity_of(fixture, "DG402") == severity


@pytest.mark.parametrize("fixture, severity", [
    ("DG410_bad.dino.yaml", Severity.WARNING),  # 1.0 -> 0.996: a swapped pair, the teacher still moves
    ("DG410_frozen_teacher_bad.dino.yaml", Severity.ERROR),  # 1.0 throughout: the teacher never moves
])
def test_teacher_momentum_is_graded_by_the_numbers(fixture, severity):
    assert _severity_of(fixture, "DG410") == severity


def test_a_graded_code_refuses_a_severity_outside_its_grades():
    with pytest.raises(ValueError, match="warning/error"):
        make_finding("DG402", "x", (1, 1), "", "m", "h", severity=Severity.INFO)
    with pytest.raises(ValueError):
        make_finding("DG201", "x", (1, 1), "", "m", "h", severity=Severity.WARNING)


def test_every_graded_rule_documents_its_thresholds():
    graded = [r for r in all_rules() if CODES[r.code].graded]
    assert graded
    for entry in graded:
        assert "error" in entry.doc.split("Why it matters:")[0], entry.code
        assert entry.severity_label == "warning/error"


@pytest.mark.parametrize("call, severity", [
    ("DINOLoss(output_dim=2048, teacher_temp=0.15, **loss_kwargs())", Severity.WARNING),  # student_temp unknown
    ("DINOLoss(output_dim=2048, teacher_temp=0.15)", Severity.ERROR),  # lightly's default student_temp 0.1
])
def test_a_student_temp_hidden_in_kwargs_makes_dg402_no_error(call, severity):
    """An error only when every value is certain: **kwargs may set student_temp above the teacher's."""
    text = script().replace("criterion = DINOLoss(output_dim=2048)", f"criterion = {call}")
    assert "teacher_temp=0.15" in text
    (found,) = [f for f in run(text)[1] if f.code == "DG402"]
    assert found.severity == severity
