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
    ({"poetry.lock": '[[package]]\nname = "lightly"\nversion = "1.2.40"\n', "requirements.txt": "lightly\n"},
     "==1.2.40"),
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


@pytest.mark.parametrize("files, spec", [
    ({"pyproject.toml": '[dependency-groups]\ntrain = ["lightly==1.5.2", {include-group = "dev"}]\ndev = []\n'},
     "==1.5.2"),
    ({"pyproject.toml": '[tool.poetry.dependencies]\nlightly = [{version = "^1.4", python = "<3.9"},'
                        ' {version = "^1.5", python = ">=3.9"}]\n'}, ">=1.4,<2|>=1.5,<2"),
    ({"pyproject.toml": '[tool.poetry.dev-dependencies]\nlightly = "1.4.7"\n'}, "==1.4.7"),
    ({"pyproject.toml": '[tool.poetry.dependencies]\nlightly = {git = "https://github.com/lightly-ai/lightly",'
                        ' tag = "v1.5.0"}\n'}, "==1.5.0"),
    ({"requirements.txt": "lightly @ git+https://github.com/lightly-ai/lightly.git@v1.5.0\n"}, "==1.5.0"),
    ({"requirements.txt": "lightly==1.4.7 \\\n    --hash=sha256:0123abcd\n"}, "==1.4.7"),
    ({"requirements.txt": "lightly==1.4.7 --hash=sha256:0123abcd --hash=sha256:ffff\n"}, "==1.4.7"),
    ({"requirements.txt": "lightly-train==0.5\n"}, None),
])
def test_pins_from_groups_constraint_lists_direct_urls_and_hashed_lines(tmp_path, files, spec):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    pin = pins.find(tmp_path / "train.py")
    assert (pin.spec if pin else None) == spec


def test_a_direct_url_in_the_nearer_folder_wins_and_without_a_version_is_uncertain(tmp_path):
    (tmp_path / ".git").mkdir()
    (tmp_path / "requirements.txt").write_text("lightly==1.2.47\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "requirements.txt").write_text("lightly @ git+https://github.com/lightly-ai/lightly@main\n")
    pin = pins.find(tmp_path / "sub" / "train.py")
    assert pin.unknown and pin.source.parent.name == "sub" and not pins.judge(pin).certain


@pytest.mark.parametrize("name, text, says", [
    ("pyproject.toml", '[tool.poetry.dependencies]\nlightly = "^"\n', "is not a version"),
    ("pyproject.toml", "[project]\ndependencies = 5\n", "must be a list"),
    ("pyproject.toml", "[project]\ndependencies = [5]\n", "must be a list"),
    ("pyproject.toml", "project = 3\n", "must be a table"),
    ("uv.lock", "x = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("uv.lock", '[[package]]\nname = "lightly"\nversion = "1.' + "5" * 5000 + '"\n', "is not a version"),
    ("requirements.txt", "lightly==1." + "5" * 5000 + "\n", "not a version specifier"),
    ("requirements.txt", "lightly>=1.4,banana\n", "not a version specifier"),
])
def test_odd_pin_files_are_one_pin_error_never_a_traceback(tmp_path, name, text, says):
    (tmp_path / name).write_text(text)
    with pytest.raises(pins.PinError, match=says):
        pins.find(tmp_path / "train.py")


def test_an_odd_pin_is_a_dg730_warning_and_no_dg707_error(tmp_path):
    from dino_guard.sources.releases.verdict import api_findings

    (tmp_path / "pyproject.toml").write_text('[tool.poetry.dependencies]\nlightly = "^"\n')
    found = api_findings(str(tmp_path / "train.py"), {"lightly.data.collate.DINOCollateFunction": (3, 1)})
    assert [f.code for f in found] == ["DG730"] and "pyproject.toml" in found[0].message


def test_pin_files_over_the_size_limit_are_refused_while_reading(tmp_path, monkeypatch):
    monkeypatch.setattr(pins, "LIMIT", 100)
    (tmp_path / "requirements.txt").write_text("# padding\n" * 20 + "lightly==1.4.7\n")
    with pytest.raises(pins.PinError, match="too large"):
        pins.find(tmp_path / "train.py")
