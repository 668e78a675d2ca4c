"""Help on scripts is the finding's structured fix written as Python, not setup-file keys."""

from __future__ import annotations

from pathlib import Path

from dino_guard.check.engine import Options
from dino_guard.check.inputs import check_path
from dino_guard.findings import Finding, Severity
from dino_guard.sources.script_help import _FIXED, python_fix, rephrase

FIXTURES = Path(__file__).parent / "fixtures"


def _finding(code: str, help_text: str, fix=None) -> Finding:
    return Finding("train.py", 1, 1, code, "x", Severity.ERROR, "m", help_text, fix=fix)


def test_known_codes_get_their_script_help():
    assert rephrase(_finding("DG201", "set model.head.input_dim: 384", {"model.head.input_dim": 384})).help == (
        "write DINOProjectionHead(input_dim=384, ...)")
    assert "DINOLoss(output_dim=2048, ...)" in rephrase(_finding("DG401", "set loss.output_dim: 2048",
                                                                 {"loss.output_dim": 2048})).help
    assert "transform=DINOTransform()" in rephrase(_finding("DG101", "add `transform: {...}`")).help
    fix = {"train.batch_size": 24, "train.accumulate_grad_batches": 2}
    assert rephrase(_finding("DG601", "use batch_size: 24 ...", fix)).help == (
        "use DataLoader(batch_size=24) and step the optimizer every 2 batches "
        "(Lightning: Trainer(accumulate_grad_batches=2))")


def test_help_on_a_dinov2_head_names_dinov2projectionhead():
    """DG201 on DINOv2ProjectionHead() said `write DINOProjectionHead(input_dim=384, ...)`, and --fix found no call."""
    path = FIXTURES / "bad_dinov2_head_default_input_dim.py"
    findings = [f for f in check_path(path, Options(count_images=False)) if f.code == "DG201"]
    assert len(findings) == 4  # the teacher's DINO and iBOT heads, and the student's
    assert {f.help for f in findings} == {"write DINOv2ProjectionHead(input_dim=384, ...)"}


def test_worker_advice_names_the_dataloader():
    assert rephrase(_finding("DG104", "set `transform: {backend: device}` ...",
                             {"data.num_workers": 24})).help.startswith("raise DataLoader(num_workers=24)")


def test_dg403_swap_is_not_garbled_on_scripts():
    # the regex rewrite printed `swap them=warmup_teacher_temp: 0.04, ...`
    fix = {"loss.warmup_teacher_temp": 0.04, "loss.teacher_temp": 0.07}
    assert python_fix(fix) == "write DINOLoss(warmup_teacher_temp=0.04, teacher_temp=0.07, ...)"


def test_dg410_swap_is_not_garbled_on_scripts():
    # the regex rewrite printed `swap them=start: 0.996, end=1.0`
    help_text = rephrase(_finding("DG410", "swap them: start: 1.0, end: 0.996",
                                  {"teacher_momentum.start": 0.996, "teacher_momentum.end": 1.0})).help
    assert help_text == "update the teacher with momentum = cosine_schedule(step, total_steps, 0.996, 1.0)"


def test_fields_without_a_python_spelling_keep_the_original_help():
    original = "keep one: `path:` for your images"
    assert rephrase(_finding("DG103", original, {"data.synthetic": None})).help == original
    assert rephrase(_finding("DG603", "write a catalog name")).help == "write a catalog name"
    script_help = "pass the views to the student: criterion(a, b)"
    assert rephrase(_finding("DG705", script_help)).help == script_help


def test_every_rules_fix_on_its_bad_fixture_has_a_python_spelling():
    from tests.rules.helpers import CASES, findings_of

    setup_only = {"data.synthetic", "hardware.gpu", "transform.backend"}  # fields a script does not have
    for path, code in CASES:
        for finding in findings_of(path, code):
            if finding.fix and not set(finding.fix) & setup_only:
                assert code in _FIXED or python_fix(finding.fix), (code, finding.fix)


def test_an_accumulation_fix_without_a_batch_size_keeps_the_dataloader_batch():
    """DG420 on a script fixes accumulate_grad_batches alone (once a KeyError in the pre-commit hook)."""
    assert python_fix({"train.accumulate_grad_batches": 16}) == (
        "step the optimizer every 16 batches (Lightning: Trainer(accumulate_grad_batches=16))")
