"""The hook through real pre-commit: `pre-commit try-repo` installs this
repository as a hook repo in a throwaway git repository, then runs it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, GOOD_SETUP, REPO

pytestmark = pytest.mark.slow


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def user_repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("user_repo")
    git(repo, "init", "-q")
    (repo / "good.dino.yaml").write_text(GOOD_SETUP)
    shutil.copy(EXAMPLES / "broken" / "head_input_dim_2048_on_vit_small.dino.yaml", repo / "broken.dino.yaml")
    (repo / "unrelated.py").write_text("print('no lightly here')\n")
    git(repo, "add", ".")
    return repo


def try_repo(user_repo: Path, *files: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PRE_COMMIT_HOME": str(user_repo.parent / "pre-commit-home"), "PIP_QUIET": "1"}
    command = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "dino-guard", "--files", *files]
    return subprocess.run(command, cwd=user_repo, capture_output=True, text=True, env=env, timeout=600)


def test_hook_passes_a_good_setup_and_unrelated_python(user_repo):
    result = try_repo(user_repo, "good.dino.yaml", "unrelated.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


def test_hook_fails_a_broken_setup_with_the_finding(user_repo):
    result = try_repo(user_repo, "broken.dino.yaml")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "broken.dino.yaml:5:10: DG201" in result.stdout
