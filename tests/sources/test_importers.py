"""The run length of a module that another file of the project trains (main.py -> dino_module.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dino_guard.check.engine import Options
from dino_guard.check.inputs import check_path
from dino_guard.sources import importers

FIXTURE = Path(__file__).parent / "fixtures" / "run_length_elsewhere"


def codes(path: Path) -> list:
    return [(f.line, f.code) for f in check_path(path, Options(count_images=False)) if f.code == "DG712"]


def test_run_length_from_the_file_that_imports_the_module_gives_dg712_in_the_module():
    assert codes(FIXTURE / "dino_module.py") == [(34, "DG712")]


def test_the_module_alone_is_quiet(tmp_path):
    shutil.copy(FIXTURE / "dino_module.py", tmp_path)
    assert codes(tmp_path / "dino_module.py") == []


@pytest.mark.parametrize("change", [
    ("max_epochs=MAX_EPOCHS", "max_epochs=MAX_EPOCHS, max_steps=1000"),  # max_steps may end the run first
    ("MAX_EPOCHS = 100", "MAX_EPOCHS = int(input())"),  # not a constant
])
def test_uncertain_run_lengths_are_silence(tmp_path, change):
    shutil.copy(FIXTURE / "dino_module.py", tmp_path)
    (tmp_path / "main.py").write_text((FIXTURE / "main.py").read_text().replace(*change))
    assert codes(tmp_path / "dino_module.py") == []


def test_importers_that_disagree_are_silence(tmp_path):
    shutil.copy(FIXTURE / "dino_module.py", tmp_path)
    shutil.copy(FIXTURE / "main.py", tmp_path)
    (tmp_path / "short.py").write_text((FIXTURE / "main.py").read_text().replace("MAX_EPOCHS = 100", "MAX_EPOCHS = 5"))
    assert codes(tmp_path / "dino_module.py") == []


def test_the_search_is_bounded(tmp_path, monkeypatch):
    shutil.copy(FIXTURE / "dino_module.py", tmp_path)
    for n in range(5):
        (tmp_path / f"a{n}.py").write_text("x = 1\n")
    shutil.copy(FIXTURE / "main.py", tmp_path)  # sorts after a0..a4
    monkeypatch.setattr(importers, "MAX_FILES", 3)
    assert codes(tmp_path / "dino_module.py") == []


def test_the_message_names_the_file_that_trains_the_module():
    [finding] = [f for f in check_path(FIXTURE / "dino_module.py", Options(count_images=False)) if f.code == "DG712"]
    assert "main.py trains 100" in finding.message


def test_a_script_at_its_project_root_is_not_judged_by_an_enclosing_projects_files(tmp_path):
    """The search for importers stops at the script's own project even when that is the script's folder."""
    outer, inner = tmp_path, tmp_path / "proj"
    inner.mkdir()
    (outer / "pyproject.toml").write_text("")
    (inner / "pyproject.toml").write_text("")
    shutil.copy(FIXTURE / "dino_module.py", inner)
    shutil.copy(FIXTURE / "main.py", outer / "other.py")  # imports dino_module and trains it
    assert importers.epochs_from_importers(inner / "dino_module.py") == (None, "the script")
    assert codes(inner / "dino_module.py") == []
