"""`check --fix` on training scripts, per crop rule: the fix lands in the right call and the rule goes quiet.

A finding about a value held in a name is fixed at the literal the name was
written as, exactly as its JSON `edit` says, and only when that literal sets
nothing else.

DG302's fix (`dynamic_img_size=True`) goes into the timm call that builds the
ViT, not into the DINOTransform whose crops expose it; the finding points at
that call and its `edit` is exactly what --fix writes. DG301 and DG303 edit
the DINOTransform the finding is at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dino_guard.check.engine import Options
from dino_guard.check.fix.apply import applies, editor, fix_text
from dino_guard.check.fix.errors import NotFixable
from dino_guard.check.inputs import findings_of, load_text
from dino_guard.sources.call_edit import apply_edit
from tests.helpers import REPO, expectations

FIXTURES = REPO / "tests/sources/fixtures"
OPTIONS = Options(count_images=False)

# fixture -> the line --fix writes (the fixture's other lines stay byte for byte)
FIXED = {
    "bad_fixed_size_vit.py":
        'vit = timm.create_model("vit_small_patch16_224", pretrained=False, dynamic_img_size=True)  # expect: DG302',
    "bad_fixed_size_vit_from_import.py": "    dynamic_img_size=True,",
    "bad_fixed_size_vit_dynamic_false.py": "                        dynamic_img_size=True)  # expect: DG302",
    "bad_dinov2_fixed_size_vit_wrapped.py":
        '            vit=timm.create_model("vit_small_patch14_dinov2", dynamic_img_size=True),  # expect: DG302',
    "bad_crop_not_divisible.py": "transform = DINOTransform(local_crop_size=112)  # expect: DG301",
    "bad_torchvision_vit_local_crops.py":
        "transform = DINOTransform(global_crop_size=224, local_crop_size=96, n_local_views=0)  # expect: DG303",
    # a value held in a name: the literal it was written as, which sets nothing else (both heads take input_dim)
    "bad_crop_size_from_a_constant.py": "LOCAL_CROP_SIZE = 112  # expect: DG301",
    "bad_head_input_resnet18.py": "input_dim = 512  # expect: DG201",
    # the teacher's head on the teacher's own timm call: its positional input_dim, the student's left alone
    "bad_teacher_head_input_own_backbone.py":
        "teacher_head = DINOProjectionHead(384, 2048, 256, OUTPUT_DIM)  # expect: DG201",
    # a keyword added to a lightly call with one argument per line gets a line of its own; the teacher's head,
    # one line, takes the keyword at its end
    "bad_head_default_input_one_argument_per_line.py": (
        "            input_dim=384,",
        "        self.teacher_head = DINOProjectionHead(hidden_dim=512, bottleneck_dim=64, output_dim=2048, "
        "input_dim=384)  # expect: DG201"),
    # DINOv2ProjectionHead is a head call too: each of the four (teacher's and student's DINO and iBOT heads)
    "bad_dinov2_head_default_input_dim.py": (
        "        self.teacher_head = Heads(DINOv2ProjectionHead(input_dim=384), DINOv2ProjectionHead(input_dim=384))"
        "  # expect: DG201",
        "        self.student_head = Heads(DINOv2ProjectionHead(input_dim=384), DINOv2ProjectionHead(input_dim=384))"
        "  # expect: DG201"),
    "bad_head_default_input_vit.py": (
        "        self.student_head = DINOProjectionHead(hidden_dim=512, bottleneck_dim=64, output_dim=2048, "
        "freeze_last_layer=1, input_dim=384)  # expect: DG201",
        "        self.teacher_head = DINOProjectionHead(hidden_dim=512, bottleneck_dim=64, output_dim=2048, "
        "input_dim=384)  # expect: DG201"),
    # DG725: the teacher's head gets the student's output_dim; the student's head and the loss stay as written
    "bad_teacher_head_output_dim_default.py":
        "teacher_head = DINOProjectionHead(384, 2048, 256, output_dim=4096)  # expect: DG725",
    "bad_dinov2_teacher_head_output_dim_default.py":
        "        self.teacher_head = Heads(DINOv2ProjectionHead(input_dim=384, output_dim=8192), "
        "DINOv2ProjectionHead(input_dim=384))  # expect: DG725",
}
SCRIPTS = sorted(FIXTURES.glob("*.py")) + sorted((REPO / "examples/scripts").glob("*.py"))


def _findings(path: Path, text: str, code: str) -> list:
    return [f for f in findings_of(path, load_text(path, text), OPTIONS) if f.code == code]


def _code(path: Path) -> str:
    (code,) = {code for _, code in expectations(path)}  # one mistake, maybe at several calls
    return code


def _lines(name: str) -> list[str]:
    lines = FIXED[name]
    return [lines] if isinstance(lines, str) else list(lines)


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fix_writes_the_one_line_and_the_rule_goes_quiet(name: str):
    path = FIXTURES / name
    text, code = path.read_text(encoding="utf-8"), _code(path)
    fixed = fix_text(path, text, OPTIONS, unsafe=False)
    added = [line[1:] for line in fixed.diff().splitlines()[2:] if line.startswith("+")]
    assert added == _lines(name), fixed.diff()
    # one fix per finding (a call each; a shared constant is one finding), and the rule goes quiet
    assert fixed.applied == len(_findings(path, text, code)) and not _findings(path, fixed.after, code), fixed.diff()


def test_teacher_head_with_the_default_input_dim_is_reported_too():
    """Only the student's head was judged: after --fix the teacher's default 2048 still failed the first step."""
    for name in ("bad_head_default_input_vit.py", "bad_head_default_input_one_argument_per_line.py"):
        path = FIXTURES / name
        text = path.read_text(encoding="utf-8")
        findings = _findings(path, text, "DG201")
        assert {(f.line, f.code) for f in findings} == expectations(path)  # the student's call and the teacher's
        assert all(f.fix == {"model.head.input_dim": 384} for f in findings)
        fixed = fix_text(path, text, OPTIONS, unsafe=False)
        assert fixed.applied == 2 and "teacher_head = DINOProjectionHead(" in fixed.after
        assert not _findings(path, fixed.after, "DG201"), fixed.diff()  # a fixed point: re-checking finds nothing
        assert fix_text(path, fixed.after, OPTIONS, unsafe=False).after == fixed.after


@pytest.mark.parametrize("name", [n for n in sorted(FIXED) if _code(FIXTURES / n) == "DG302"])
def test_dg302_points_at_the_timm_call_and_its_edit_is_what_fix_writes(name: str):
    path = FIXTURES / name
    text = path.read_text(encoding="utf-8")
    (finding,) = _findings(path, text, "DG302")
    assert (finding.line, "DG302") in expectations(path)
    assert "local_crop_size is set here" in [note for _, _, note in finding.related]  # DINOv2's: global too
    assert apply_edit(text, finding.edit) == fix_text(path, text, OPTIONS, unsafe=False).after


def test_dg302_with_keyword_arguments_from_a_dict_is_left_and_counted_as_remaining():
    path = FIXTURES / "bad_fixed_size_vit_kwargs.py"
    text = path.read_text(encoding="utf-8")
    (finding,) = _findings(path, text, "DG302")
    assert finding.edit is None  # `**VIT_KWARGS` may hold dynamic_img_size: writing it again could be a TypeError
    fixed = fix_text(path, text, OPTIONS, unsafe=True)
    assert not fixed.changed and _findings(path, fixed.after, "DG302")


def test_a_line_added_by_one_fix_does_not_send_the_next_fix_to_the_call_above_its_own():
    """DG302's keyword on a line of its own shifted DG301's position onto the evaluation transform above it."""
    path = FIXTURES / "line_added_above_another_fix.py"
    text = path.read_text(encoding="utf-8")
    fixed = fix_text(path, text, OPTIONS, unsafe=False)
    changed = [line for line in fixed.diff().splitlines()[2:] if line[:1] in "+-"]
    assert changed == ["+    dynamic_img_size=True,", "-" + _line(text, "transform = "),
                       "+" + _line(text, "transform = ").replace("local_crop_size=100", "local_crop_size=112")]


def _line(text: str, start: str) -> str:
    (line,) = [line for line in text.splitlines() if line.startswith(start)]
    return line


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_fix_writes_exactly_the_json_edit_in_every_fixture(path: Path):
    """A value passed through a name had its JSON edit (100 -> 112 at the literal) while --fix wrote nothing."""
    text = path.read_text(encoding="utf-8")
    for finding in findings_of(path, load_text(path, text), OPTIONS):
        moved_to_its_literal = "the value is used here" in [note for _, _, note in finding.related]
        if finding.edit is not None:
            assert editor(".py")(text, finding) == apply_edit(text, finding.edit), finding
        elif moved_to_its_literal and applies(finding, unsafe=True):
            with pytest.raises(NotFixable):  # no edit reported: --fix must not write one either
                editor(".py")(text, finding)


def test_a_constant_that_sets_another_value_too_is_reported_but_not_fixed():
    """Editing CROP = 100 would also change the evaluation Resize(CROP): the fix is refused, and the help says so."""
    path = FIXTURES / "bad_crop_size_constant_used_twice.py"
    text = path.read_text(encoding="utf-8")
    (finding,) = _findings(path, text, "DG301")
    assert (finding.line, "DG301") in expectations(path) and finding.edit is None
    assert "written at line 15, which may set more than local_crop_size: check --fix leaves it" in finding.help
    fixed = fix_text(path, text, OPTIONS, unsafe=True)
    assert not fixed.changed and _findings(path, fixed.after, "DG301")


def test_a_constant_read_by_both_heads_names_each_line_in_its_help():
    path = FIXTURES / "bad_head_input_resnet18.py"
    (finding,) = _findings(path, path.read_text(encoding="utf-8"), "DG201")
    assert finding.help == "change line 38 to `input_dim = 512` (used at lines 19 and 21: each takes the new value)"


def test_teacher_head_left_at_the_default_output_dim_is_reported_at_the_teacher_and_fixed():
    """Student head and DINOLoss at 4096, teacher head at its default 65536: `check` said "All checks passed"."""
    path = FIXTURES / "bad_teacher_head_output_dim_default.py"
    text = path.read_text(encoding="utf-8")
    (finding,) = _findings(path, text, "DG725")
    assert (finding.line, finding.code) in expectations(path) and finding.fix == {"model.head.output_dim": 4096}
    assert finding.help.startswith("write DINOProjectionHead(..., output_dim=4096) at line 22")
    fixed = fix_text(path, text, OPTIONS, unsafe=False)
    assert fixed.applied == 1 and not _findings(path, fixed.after, "DG725")
    assert fix_text(path, fixed.after, OPTIONS, unsafe=False).after == fixed.after  # a fixed point


def test_a_loss_that_matches_the_teacher_is_moved_once_to_the_students_width_never_back():
    """DG401 makes the loss the student head's width; DG725 makes the teacher's head the same: one pass, no flip."""
    path = FIXTURES / "bad_teacher_head_output_dim_default.py"
    text = path.read_text(encoding="utf-8").replace("DINOLoss(output_dim=4096", "DINOLoss(output_dim=65536")
    assert {f.code for f in findings_of(path, load_text(path, text), OPTIONS) if f.fix} >= {"DG401", "DG725"}
    fixed = fix_text(path, text, OPTIONS, unsafe=False)
    assert "DINOLoss(output_dim=4096" in fixed.after and "DINOProjectionHead(384, 2048, 256, output_dim=4096)" \
        in fixed.after and "output_dim=65536" not in fixed.after
    assert fixed.applied == 2 and not (_findings(path, fixed.after, "DG401") or _findings(path, fixed.after, "DG725"))


def test_a_teacher_width_written_as_a_constant_is_edited_at_the_constant(tmp_path: Path):
    text = (FIXTURES / "bad_teacher_head_output_dim_default.py").read_text(encoding="utf-8")
    text = text.replace("BATCH_SIZE = 128\n", "BATCH_SIZE = 128\nTEACHER_DIM = 65536\n").replace(
        "DINOProjectionHead(384, 2048, 256)  # expect", "DINOProjectionHead(384, 2048, 256, TEACHER_DIM)  # expect")
    assert "TEACHER_DIM)" in text
    path = tmp_path / "train.py"
    (finding,) = _findings(path, text, "DG725")
    assert finding.line == 17 and finding.edit == {"line": 17, "column": 15, "end_line": 17, "end_column": 20,
                                                   "replacement": "4096"}
    fixed = fix_text(path, text, OPTIONS, unsafe=False)
    assert fixed.after == apply_edit(text, finding.edit) and "TEACHER_DIM = 4096\n" in fixed.after
