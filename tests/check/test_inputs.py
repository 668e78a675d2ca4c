"""Which files `check` reads: exclusion with ruff's semantics, test files, a project's own lightly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import REPO

FIXTURES = REPO / "tests" / "sources" / "fixtures"
OLD_API = FIXTURES / "bad_old_collate_module.py"  # DG707 in a user's project
ONE_VIEW = FIXTURES / "bad_one_view_each.py"  # DG705


def project(root: Path, files: dict, config: str = "") -> Path:
    """A git project under root: {relative path: fixture Path or text}."""
    (root / ".git").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "p"\n' + config)
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copy(content, target)
        else:
            target.write_text(content)
    return root


def errors(cli, *args) -> set:
    result = cli("check", *args, "--format", "json")
    assert result.exit_code in (0, 1), result.output
    return {(Path(f["path"]).as_posix(), f["code"]) for f in json.loads(result.stdout) if f["severity"] == "error"}


def test_test_files_are_not_training_scripts_by_default(cli, tmp_path):
    root = project(tmp_path, {"tests/loss/helpers.py": ONE_VIEW, "pkg/test_x.py": ONE_VIEW, "pkg/x_test.py": ONE_VIEW,
                              "conftest.py": ONE_VIEW, "train.py": ONE_VIEW})
    assert errors(cli, root) == {((root / "train.py").as_posix(), "DG705")}


def test_check_tests_setting_opts_test_files_in(cli, tmp_path):
    root = project(tmp_path, {"tests/test_loss.py": ONE_VIEW}, "[tool.dino-guard]\ncheck-tests = true\n")
    assert errors(cli, root) == {((root / "tests/test_loss.py").as_posix(), "DG705")}


def test_a_project_folder_that_lives_under_a_tests_folder_is_still_checked(cli, tmp_path):
    root = project(tmp_path / "tests" / "proj", {"train.py": ONE_VIEW})
    assert errors(cli, root) == {((root / "train.py").as_posix(), "DG705")}


def test_code_inside_pytest_raises_or_assert_raises_is_never_an_error(cli, tmp_path):
    text = ONE_VIEW.read_text()
    call = "loss = criterion([model.forward_teacher(views[0])], [model.forward(views[0])], epoch=epoch)"
    assert call in text
    raising = text.replace("import copy\n", "import copy\nimport pytest\n").replace(
        call, "with pytest.raises(ValueError):\n            " + call)
    self_raising = raising.replace("pytest.raises(ValueError)", "self.assertRaises(ValueError)")
    root = project(tmp_path, {"a.py": raising, "b.py": self_raising, "c.py": ONE_VIEW})
    assert errors(cli, root) == {((root / "c.py").as_posix(), "DG705")}


@pytest.mark.parametrize("config, left", [
    ('exclude = ["scripts"]', {"train.py"}),
    ('extend-exclude = ["scripts/old_*.py"]', {"train.py", "scripts/new.py"}),
    ('extend-exclude = ["old_*.py"]', {"train.py", "scripts/new.py"}),
    ('[tool.dino-guard.per-file-ignores]\n"scripts/*" = ["DG705"]', {"train.py"}),
])
def test_exclude_extend_exclude_and_per_file_ignores_as_ruff(cli, tmp_path, config, left):
    root = project(tmp_path, {"train.py": ONE_VIEW, "scripts/old_one.py": ONE_VIEW, "scripts/new.py": ONE_VIEW},
                   "[tool.dino-guard]\n" + config + "\n")
    assert errors(cli, root) == {((root / name).as_posix(), "DG705") for name in left}


def test_default_exclusions_hold_until_exclude_replaces_them(cli, tmp_path):
    root = project(tmp_path / "a", {"build/train.py": ONE_VIEW})
    assert errors(cli, root) == set()
    replaced = project(tmp_path / "b", {"build/train.py": ONE_VIEW}, '[tool.dino-guard]\nexclude = ["docs"]\n')
    assert errors(cli, replaced) == {((replaced / "build/train.py").as_posix(), "DG705")}


def test_files_named_on_the_command_line_are_excluded_only_with_force_exclude(cli, tmp_path, monkeypatch):
    root = project(tmp_path, {"scripts/train.py": ONE_VIEW}, '[tool.dino-guard]\nextend-exclude = ["scripts"]\n')
    monkeypatch.chdir(root)
    assert errors(cli, "scripts/train.py") == {("scripts/train.py", "DG705")}
    assert errors(cli, "scripts/train.py", "--force-exclude") == set()


def test_the_shipped_hook_passes_force_exclude():
    hook = (REPO / ".pre-commit-hooks.yaml").read_text()
    assert "entry: dino-guard check --force-exclude" in hook


def test_first_party_lightly_in_the_tree_or_a_src_folder_is_never_missing(cli, tmp_path):
    root = project(tmp_path / "fork", {"lightly/__init__.py": "", "examples/train.py": OLD_API})
    assert errors(cli, root) == set()
    other = project(tmp_path / "other", {"vendor/lightly/__init__.py": "", "train.py": OLD_API})
    assert errors(cli, other) == {((other / "train.py").as_posix(), "DG707")}
    vendored = project(tmp_path / "vendored", {"vendor/lightly/__init__.py": "", "train.py": OLD_API},
                       '[tool.dino-guard]\nsrc = ["vendor"]\n')
    assert errors(cli, vendored) == set()


@pytest.mark.parametrize("where", ["vit = timm.create_model", "transform = DINOTransform"])
def test_a_noqa_on_the_timm_call_or_on_the_crops_silences_dg302_moved_to_the_call(where):
    """DG302 on a script is reported at the timm call its fix edits; the crop size it was found at is related."""
    from dino_guard.check.engine import Options
    from dino_guard.check.inputs import findings_of, load_text

    path = FIXTURES / "bad_fixed_size_vit.py"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines = [line.replace("\n", "  # noqa: DG302\n") if line.startswith(where) else line for line in lines]
    options = Options(count_images=False, warn_unused_ignores=True)
    found = findings_of(path, load_text(path, "".join(lines)), options)
    assert not [f for f in found if f.code in ("DG302", "DG008")], [(f.line, f.code) for f in found]
