"""Skip, fast, any Python file that does not import lightly.

A pre-commit hook hands every *.py to dino-guard: the common case must cost
one byte search, not a parse.
"""

from __future__ import annotations

import ast
import re

_IMPORT = re.compile(rb"^[ \t]*(?:from[ \t]+lightly(?:_train)?\b|import[ \t][^\n#]*\blightly(?:_train)?\b)", re.M)
_ROOTS = ("lightly", "lightly_train")


def may_import_lightly(raw: bytes) -> bool:
    """Cheap, may say yes wrongly (a string that looks like an import), never no wrongly
    for a plain `import lightly...` or `from lightly... import` line."""
    return b"lightly" in raw and _IMPORT.search(raw) is not None


def imports_lightly(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] in _ROOTS for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] in _ROOTS:
            return True
    return False
