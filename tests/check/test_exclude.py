"""ruff's exclusion semantics on paths, and which Python files are tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from dino_guard.check.exclude import is_test_file, matches


@pytest.mark.parametrize("relative, patterns, ancestors, hit", [
    ("a/b/old_x.py", ("old_*.py",), True, True),  # no slash: a name anywhere
    ("a/b/x.py", ("b",), True, True),  # a folder above, when asked
    ("a/b/x.py", ("b",), False, False),  # a walk checks each folder itself
    ("docs/x.py", ("docs/*.py",), True, True),  # a slash: relative to the root
    ("src/docs/x.py", ("docs/*.py",), True, False),
    ("a/b/c/x.py", ("a/**/x.py",), True, True),
    ("a/x.py", ("a/**/x.py",), True, True),  # ** also matches no folder
    ("a/x.py", ("./a",), True, True),
])
def test_patterns_match_as_ruff(tmp_path, relative, patterns, ancestors, hit):
    assert matches(tmp_path / relative, patterns, tmp_path, ancestors) is hit


def test_folders_above_the_project_root_never_match(tmp_path):
    root = tmp_path / "build" / "project"
    assert not matches(root / "train.py", ("build",), root)


@pytest.mark.parametrize("path, is_test", [
    ("test_loss.py", True), ("loss_test.py", True), ("conftest.py", True), ("tests/helpers.py", True),
    ("pkg/test/helpers.py", True), ("testing.py", False), ("train.py", False), ("latest/train.py", False),
])
def test_test_files(tmp_path, path, is_test):
    assert is_test_file(tmp_path / path, tmp_path) is is_test


def test_without_a_project_only_the_path_as_named_counts():
    assert not is_test_file(Path("/home/u/tests/proj/train.py").relative_to("/home/u/tests/proj"), None)
    assert is_test_file(Path("tests/train.py"), None)
