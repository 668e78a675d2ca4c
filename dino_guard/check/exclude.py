"""Which paths `check` leaves out, with ruff's semantics.

A pattern without a slash (`.venv`, `foo_*.py`) matches a file or folder of
that name anywhere; one with a slash (`docs/*.py`, `tests/**`) is relative
to the folder that holds the settings file. A path is excluded when it or
one of its folders below the project root matches. Files named on the command line are checked
even when excluded, unless `--force-exclude` (which the pre-commit hook
passes, since it names every file).
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

DEFAULT_EXCLUDE = (".bzr", ".direnv", ".eggs", ".git", ".hg", ".mypy_cache", ".nox", ".pytest_cache", ".ruff_cache",
                   ".svn", ".tox", ".venv", "__pypackages__", "__pycache__", "_build", "build", "dist",
                   "node_modules", "site-packages", "venv")
TEST_FOLDERS = frozenset({"tests", "test"})


def matches(path: Path, patterns: tuple, root: Path | None, ancestors: bool = True) -> bool:
    """`path` (or, with ancestors, one of its folders below `root`) matches one of `patterns`."""
    absolute = Path(os.path.abspath(path))
    relative = _relative(absolute, root)
    candidates = [(absolute.name, relative)]
    if ancestors and relative is not None:  # folders above the project root are never looked at
        candidates += [(parent.name, parent.as_posix()) for parent in Path(relative).parents if parent.name]
    return any(_match(name, rel, pattern) for name, rel in candidates for pattern in patterns)


def _relative(absolute: Path, root: Path | None) -> str | None:
    if root is None:
        return None
    try:
        return absolute.relative_to(Path(os.path.abspath(root))).as_posix()
    except ValueError:
        return None


def _match(name: str, relative: str | None, pattern: str) -> bool:
    pattern = pattern.removeprefix("./").rstrip("/")
    if "/" not in pattern:
        return fnmatch.fnmatchcase(name, pattern)
    if relative is None:
        return False
    return fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(relative, pattern.replace("**/", ""))


def is_test_file(path: Path, root: Path | None) -> bool:
    """test_*.py, *_test.py, conftest.py, or a script in a tests/ folder (below the project root when known)."""
    name = path.name
    if name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py":
        return True
    relative = _relative(Path(os.path.abspath(path)), root)
    folders = Path(relative).parent.parts if relative is not None else path.parent.parts  # no project: as named
    return any(folder in TEST_FOLDERS for folder in folders)
