"""Which lightly a checked project pins, and which described release that resolves to."""

from __future__ import annotations

import pytest

from dino_guard.sources.releases import pins as pins
from dino_guard.sources.releases.pins import Pin


@pytest.mark.parametrize("files, spec", [
    ({"requirements.txt": "torch\nlightly==1.4.7  # old\n"}, "==1.4.7"),
    ({"requirements-train.txt": "LIGHTLY[timm] >= 1.4, < 1.5\n"}, ">=1.4,<1.5"),
    ({"pyproject.toml": '[project]\ndependencies = ["lightly~=1.5.0"]\n'}, "~=1.5.0"),
    ({"pyproject.toml": '[project]\n[project.optional-dependencies]\ntrain = ["lightly>=1.5"]\n'}, ">=1.5"),
    ({"pyproject.toml": '[tool.poetry.dependencies]\nlightly = "^1.4.2"\n'}, ">=1.4.2,<2"),
    ({"pyproject.toml": '[tool.poetry.dependencies]\nlightly = {version = "~1.3"}\n'}, ">=1.3,<1.4"),
    ({"poetry.lock": '[[package]]\nname = "lightly"\nversion = "1.2.40"\n', "requirements.txt": "lightly\n"}, "==1.2.40"),
    ({"uv.lock": 'version = 1\n[[package]]\nname = "lightly"\nversion = "1.5.3"\n'}, "==1.5.3"),
])
def test_pins_are_read_from_every_kind_of_project_file(tmp_path, files, spec):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "src").mkdir()
    pin = pins.find(tmp_path / "src" / "train.py")
    assert pin is not None and pin.spec == spec


def test_the_nearest_folder_wins_and_the_search_stops_at_the_project_root(tmp_path):
    (tmp_path / "requirements.txt").write_text("lightly==1.2.47\n")
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / "sub").mkdir()
    assert pins.find(project / "sub" / "train.py") is None
    (project / "sub" / "requirements.txt").write_text("lightly==1.4.26\n")
    assert pins.find(project / "sub" / "train.py").spec == "==1.4.26"


@pytest.mark.parametrize("version, spec, ok", [
    ("1.4.7", "==1.4.7", True), ("1.4.7", ">=1.4,<1.5", True), ("1.5.0", ">=1.4,<1.5", False),
    ("1.5.26", "~=1.5.0", True), ("1.6.0", "~=1.5.0", False), ("1.4.3", "==1.4.*", True), ("1.5.0", "!=1.5.0", False),
])
def test_specifiers(version, spec, ok):
    assert pins.satisfies(version, spec) is ok


def test_judge_picks_the_version_pip_installs(tmp_path):
    source = tmp_path / "requirements.txt"
    assert pins.judge(None).releases == ("1.6.0",) and pins.judge(None).certain
    assert pins.judge(Pin(">=1.4,<1.5", source)).releases == ("1.4.26",)  # the newest 1.4 is described
    exact = pins.judge(Pin("==1.5.0", source))
    assert exact.certain and exact.describe() == "lightly 1.5.0 (`lightly==1.5.0` in requirements.txt)"
    between = pins.judge(Pin("==1.4.7", source))
    assert between.releases == ("1.4.0", "1.4.25") and not between.certain
    assert not pins.judge(Pin("==9.9", source)).certain
