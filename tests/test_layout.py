"""The suite's own import rules (issue 18): shared helpers live in helpers modules.

conftest.py holds fixtures only, so no module imports from a conftest; a test
module never imports another test module (each runs alone, and a helper that
two need has one home); bench/ does not import from tests/.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import REPO

DATA_DIRS = {"fixtures", "corpus"}  # training scripts under test: their imports are test data


def modules_imported(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import in `path`, lazy ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, node.module)]
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


def python_files(root: str) -> list[Path]:
    return [p for p in sorted((REPO / root).rglob("*.py")) if not DATA_DIRS & set(p.relative_to(REPO).parts)]


def where(path: Path, line: int, module: str) -> str:
    return f"{path.relative_to(REPO)}:{line}: {module}"


def test_no_module_imports_from_a_conftest():
    bad = [where(p, n, m) for p in python_files("tests") for n, m in modules_imported(p)
           if m.startswith("tests.") and m.split(".")[-1] == "conftest"]
    assert bad == [], "move what is shared into a helpers module (tests/helpers.py, tests/<room>/helpers.py)"


def test_no_test_module_imports_another():
    bad = [where(p, n, m) for p in python_files("tests") for n, m in modules_imported(p)
           if m.startswith("tests.") and m.split(".")[-1].startswith("test_")]
    assert bad == [], "move what is shared into a helpers module (tests/helpers.py, tests/<room>/helpers.py)"


def test_bench_does_not_import_the_tests():
    bad = [where(p, n, m) for p in python_files("bench") for n, m in modules_imported(p)
           if m == "tests" or m.startswith("tests.")]
    assert bad == []


def test_the_rules_catch_what_they_forbid(tmp_path):
    """The three checks see a from-import, a plain import and a lazy one."""
    script = tmp_path / "t.py"
    script.write_text("from tests.trainer.conftest import run\ndef f():\n    import tests.rules.test_fixtures\n")
    assert [m for _, m in modules_imported(script)] == ["tests.trainer.conftest", "tests.trainer.conftest.run",
                                                        "tests.rules.test_fixtures"]
