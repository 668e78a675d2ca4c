"""The hook through real pre-commit: `pre-commit try-repo` installs this
repository as a hook repo in a throwaway git repository, then runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES, GOOD_SETUP, REPO

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
    selection = list(files) if files == ("--all-files",) else ["--files", *files]
    command = [sys.executable, "-m", "pre_commit", "try-repo", str(REPO), "dino-guard", *selection]
    return subprocess.run(command, cwd=user_repo, capture_output=True, text=True, env=env, timeout=600)


def test_hook_passes_a_good_setup_and_unrelated_python(user_repo):
    result = try_repo(user_repo, "good.dino.yaml", "unrelated.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Passed" in result.stdout


def test_hook_fails_a_broken_setup_with_the_finding(user_repo):
    result = try_repo(user_repo, "broken.dino.yaml")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "broken.dino.yaml:5:10: DG201" in result.stdout


HOOK_FILES = re.compile(r"(\.dino\.(ya?ml|json|toml)|\.py)$")
FINDING = re.compile(r"^(?P<path>\S+?):\d+:\d+: (?P<code>DG\d{3}) ", re.M)
UNREADABLE = re.compile(r"^dino-guard: error: (?P<path>\S+?):", re.M)
PARITY_FOLDERS = ("examples", "tests/rules/fixtures", "tests/sources/fixtures", "tests/setupfile/suppression_fixtures")


@pytest.fixture(scope="module")
def parity_repo(tmp_path_factory) -> Path:
    """Every example and fixture (with the files next to them, e.g. a requirements.txt pin) in one git repository."""
    repo = tmp_path_factory.mktemp("parity_repo")
    git(repo, "init", "-q")
    for folder in PARITY_FOLDERS:
        shutil.copytree(REPO / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "pyproject.toml").write_text("[tool.dino-guard]\ncheck-tests = true\n")  # fixtures live under tests/
    git(repo, "add", ".")
    return repo


def _hook_status(output: str, files: list[str]) -> dict[str, int]:
    """Per file, the exit status `dino-guard check FILE` must have, read from the hook's output."""
    from dino_guard.codes import CODES
    from dino_guard.findings import Severity

    errors = {m["path"] for m in FINDING.finditer(output) if CODES[m["code"]].severity == Severity.ERROR}
    unreadable = {m["path"] for m in UNREADABLE.finditer(output)}
    return {f: 2 if f in unreadable else 1 if f in errors else 0 for f in files}


def test_the_hook_and_the_local_command_agree_on_every_example_and_fixture(parity_repo, monkeypatch):
    """One verdict everywhere: the hook's environment has no lightly (nor torch), the local one has both."""
    from click.testing import CliRunner

    from dino_guard.cli import main

    files = sorted(str(p.relative_to(parity_repo)) for p in parity_repo.rglob("*")
                   if p.is_file() and HOOK_FILES.search(p.name) and ".git" not in p.parts)
    assert len(files) > 100
    result = try_repo(parity_repo, "--all-files")
    hook = _hook_status(result.stdout + result.stderr, files)
    monkeypatch.chdir(parity_repo)
    runner = CliRunner()
    local = {f: runner.invoke(main, ["check", f]).exit_code for f in files}
    assert {f: s for f, s in local.items() if s != hook[f]} == {}, result.stdout[-3000:]
    assert result.returncode == (1 if any(local.values()) else 0)


@pytest.fixture(scope="module")
def hook_repo(tmp_path_factory) -> tuple[Path, str]:
    """This working tree (committed or not) as a hook repository at a commit, as try-repo makes one."""
    shadow = tmp_path_factory.mktemp("hook_repo")
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (shadow / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, shadow / name)
    git(shadow, "init", "-q")
    git(shadow, "add", ".")
    git(shadow, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "shadow")
    rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=shadow, check=True, capture_output=True, text=True)
    return shadow, rev.stdout.strip()


def test_hook_with_args_fix_rewrites_the_file_and_fails_then_passes(hook_repo, tmp_path):
    shadow, rev = hook_repo
    repo = tmp_path / "user"
    repo.mkdir()
    git(repo, "init", "-q")
    shutil.copy(EXAMPLES / "broken" / "head_input_dim_2048_on_vit_small.dino.yaml", repo / "broken.dino.yaml")
    (repo / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {shadow}\n  rev: {rev}\n  hooks:\n  - id: dino-guard\n    args: [--fix]\n")
    git(repo, "add", ".")
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "PIP_QUIET": "1"}
    command = [sys.executable, "-m", "pre_commit", "run", "--files", "broken.dino.yaml"]
    first = subprocess.run(command, cwd=repo, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "files were modified by this hook" in first.stdout and "Fixed 1 finding (0 remaining)" in first.stdout
    assert "input_dim: 384" in (repo / "broken.dino.yaml").read_text()
    git(repo, "add", ".")
    second = subprocess.run(command, cwd=repo, capture_output=True, text=True, env=env, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
