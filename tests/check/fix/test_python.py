"""`check --fix` on training scripts, per crop rule: the fix lands in the right call and the rule goes quiet.

DG302's fix (`dynamic_img_size=True`) goes into the timm call that builds the
ViT, not into the DINOTransform whose crops expose it; the finding points at
that call and its `edit` is exactly what --fix writes. DG301 and DG303 edit
the DINOTransform the finding is at.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dino_guard.check.engine import Options
from dino_guard.check.fix.apply import fix_text
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
}


def _findings(path: Path, text: str, code: str) -> list:
    return [f for f in findings_of(path, load_text(path, text), OPTIONS) if f.code == code]


def _code(path: Path) -> str:
    (_, code), = expectations(path)
    return code


@pytest.mark.parametrize("name", sorted(FIXED))
def test_fix_writes_the_one_line_and_the_rule_goes_quiet(name: str):
    path = FIXTURES / name
    text, code = path.read_text(encoding="utf-8"), _code(path)
    fixed = fix_text(path, text, OPTIONS, unsafe=False)
    added = [line[1:] for line in fixed.diff().splitlines()[2:] if line.startswith("+")]
    assert added == [FIXED[name]], fixed.diff()
    assert fixed.applied == 1 and not _findings(path, fixed.after, code), fixed.diff()


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
