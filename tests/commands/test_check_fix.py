"""`dino-guard check --fix / --diff / --unsafe-fixes` from the command line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, REPO

HEAD = EXAMPLES / "broken" / "head_input_dim_2048_on_vit_small.dino.yaml"
HOT_TEACHER = REPO / "tests/rules/fixtures/DG402_bad.dino.yaml"  # an unsafe fix (a temperature)
SMALL_BATCH_MOMENTUM = REPO / "tests/rules/fixtures/DG411_bad.dino.yaml"  # an info: never applied
FIXED_SIZE_VIT = REPO / "tests/sources/fixtures/bad_fixed_size_vit.py"  # DG302: the fix goes to timm.create_model


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / source.name
    shutil.copy(source, target)
    return target


def test_diff_prints_the_change_writes_nothing_and_exits_1(cli, tmp_path):
    path = _copy(HEAD, tmp_path)
    before = path.read_bytes()
    result = cli("check", "--diff", path)
    assert result.exit_code == 1
    assert "-  head: {input_dim: 2048, output_dim: 65536}  # expect: DG201" in result.output
    assert "+  head: {input_dim: 384, output_dim: 65536}  # expect: DG201" in result.output
    assert path.read_bytes() == before


def test_diff_on_a_clean_setup_exits_0(cli, good_setup):
    assert cli("check", "--diff", good_setup).exit_code == 0


def test_fix_writes_the_file_and_counts(cli, tmp_path):
    path = _copy(HEAD, tmp_path)
    result = cli("check", "--fix", path)
    assert result.exit_code == 0, result.output
    assert "Fixed 1 finding (0 remaining)" in result.output
    assert path.read_text() == HEAD.read_text().replace("input_dim: 2048", "input_dim: 384")
    assert "Fixed 0 findings (0 remaining)" in cli("check", "--fix", path).output


def test_fix_through_a_symlink_edits_the_target_and_keeps_the_link(cli, tmp_path):
    target = _copy(HEAD, tmp_path)
    (tmp_path / "linked").mkdir()
    link = tmp_path / "linked" / "setup.dino.yaml"
    link.symlink_to(target)
    result = cli("check", "--fix", link)
    assert result.exit_code == 0 and "Fixed 1 finding (0 remaining)" in result.output, result.output
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert target.read_text() == HEAD.read_text().replace("input_dim: 2048", "input_dim: 384")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, "linked"])  # no temporary left
def test_unsafe_fix_only_with_unsafe_fixes(cli, tmp_path):
    path = _copy(HOT_TEACHER, tmp_path)
    before = path.read_text()
    result = cli("check", "--fix", path)
    assert path.read_text() == before and "Fixed 0 findings (1 remaining)" in result.output
    result = cli("check", "--fix", "--unsafe-fixes", path)
    assert path.read_text() != before and "Fixed 1 finding (0 remaining)" in result.output


def test_an_info_is_never_applied(cli, tmp_path):
    path = _copy(SMALL_BATCH_MOMENTUM, tmp_path)
    before = path.read_text()
    assert cli("check", "--diff", "--unsafe-fixes", path).exit_code == 0
    cli("check", "--fix", "--unsafe-fixes", path)
    assert path.read_text() == before


def test_fix_on_a_script_edits_the_call(cli, tmp_path):
    path = _copy(EXAMPLES / "scripts" / "broken_train_dino.py", tmp_path)
    result = cli("check", "--fix", path)
    assert "Fixed 3 findings" in result.output
    text = path.read_text()
    assert "DINOProjectionHead(output_dim=2048, freeze_last_layer=1, input_dim=384)" in text
    assert "teacher_head = DINOProjectionHead(output_dim=2048, input_dim=384)" in text  # the teacher's runs too
    assert "criterion = DINOLoss(output_dim=2048)" in text


def test_fix_on_a_script_adds_dynamic_img_size_to_the_timm_call(cli, tmp_path):
    """DG302 on a script was counted as remaining: its fix went to the DINOTransform call it was found at."""
    path = _copy(FIXED_SIZE_VIT, tmp_path)
    result = cli("check", "--fix", path)
    assert result.exit_code == 0 and "Fixed 1 finding (0 remaining)" in result.output, result.output
    assert path.read_text() == FIXED_SIZE_VIT.read_text().replace("pretrained=False)",
                                                                  "pretrained=False, dynamic_img_size=True)")


def test_json_edit_of_a_script_finding_is_the_one_fix_writes(cli, tmp_path):
    import json

    path = _copy(FIXED_SIZE_VIT, tmp_path)
    (found,) = [f for f in json.loads(cli("check", "--format", "json", path).output) if f["code"] == "DG302"]
    line = path.read_text().splitlines()[found["edit"]["line"] - 1]
    column = found["edit"]["column"] - 1
    cli("check", "--fix", path)
    assert path.read_text().splitlines()[found["edit"]["line"] - 1] == \
        line[:column] + found["edit"]["replacement"] + line[column:]


def test_fix_writes_the_json_edit_of_a_value_passed_through_a_name(cli, tmp_path):
    """`input_dim = 2048` passed into the model: JSON said 2048 -> 512 at the literal, --fix wrote nothing."""
    import json

    path = _copy(REPO / "tests/sources/fixtures/bad_head_input_resnet18.py", tmp_path)
    (found,) = [f for f in json.loads(cli("check", "--format", "json", path).output) if f["code"] == "DG201"]
    edit, lines = found["edit"], path.read_text().splitlines()
    expected = lines[edit["line"] - 1][:edit["column"] - 1] + edit["replacement"] + \
        lines[edit["line"] - 1][edit["end_column"] - 1:]
    assert expected == "input_dim = 512  # expect: DG201"
    result = cli("check", "--fix", path)
    assert "Fixed 1 finding" in result.output and path.read_text().splitlines()[edit["line"] - 1] == expected


def test_fix_with_json_output_keeps_stdout_one_document(cli, tmp_path):
    import json

    path = _copy(HEAD, tmp_path)
    result = cli("check", "--fix", "--format", "json", path)
    assert [f["severity"] for f in json.loads(result.stdout)] == ["info", "info"]  # the infos json always lists


def test_unreadable_file_is_one_line_and_exit_2(cli, tmp_path):
    result = cli("check", "--fix", tmp_path / "missing.dino.yaml")
    assert result.exit_code == 2 and "no such file" in result.output
    assert cli("check", "--diff", tmp_path / "missing.dino.yaml").exit_code == 2


def test_a_file_in_a_folder_that_cannot_be_written_is_one_line_and_exit_2(cli, tmp_path, monkeypatch):
    from dino_guard.check.fix import apply

    path = _copy(HEAD, tmp_path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(apply.tempfile, "mkstemp", refuse)
    result = cli("check", "--fix", path)
    assert result.exit_code == 2 and "cannot be written (Permission denied)" in result.output
    assert path.read_text() == HEAD.read_text()


def test_rule_shows_its_fix_safety(cli):
    assert "Fix: safe" in cli("rule", "DG201").output
    assert "Fix: unsafe" in cli("rule", "DG402").output
    assert "Fix: none" in cli("rule", "DG411").output


@pytest.mark.parametrize("path", [HEAD, FIXED_SIZE_VIT], ids=["setup", "script-with-an-edit"])
def test_a_plain_check_imports_no_fixing_library(path):
    code = ("import sys; from dino_guard.cli import main\n"
            "try: main(['check', '--format', 'json', sys.argv[1]])\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('tomlkit', 'libcst', 'dino_guard.check.fix.apply') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stderr
