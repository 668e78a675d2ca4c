"""The package's import layers, its torch-free check path and its acyclic modules,
as import-linter contracts (pyproject.toml [tool.importlinter]).

A subprocess test (test_import_boundary.py) proves what one run of `check`
imports; these contracts cover every import in the source, lazy ones included.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


def _lint_imports() -> str:
    beside = Path(sys.executable).parent / "lint-imports"
    return str(beside) if beside.exists() else shutil.which("lint-imports") or ""


@pytest.mark.parametrize("contract", ["layers", "check-is-torch-free", "acyclic", "interp-is-generic",
                                      "trainer-data-path"])
def test_import_contract_is_kept(contract):
    tool = _lint_imports()
    if not tool:
        pytest.skip("import-linter is not installed (dev extra)")
    result = subprocess.run([tool, "--no-cache", "--contract", contract], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
