"""DG707/DG708: lightly names a script uses that its lightly release lacks.

The release is the one the script's project pins (releases.pins), or the
newest one described; its names come from the shipped data file
(releases.catalog), never from the installed lightly, so the verdict is the
same in a pre-commit hook's environment as in the training environment.

Never judged: a project that holds its own lightly package (lightly's own
repository, a fork: its names are whatever that tree defines), and names
first used where the script itself guards against their absence (a `try`
that catches ImportError or AttributeError, an `if hasattr(...)`).
"""

from __future__ import annotations

import ast
from pathlib import Path

from dino_guard.codes import make_finding
from dino_guard.findings import Finding
from dino_guard.sources.releases import catalog, pins


def api_findings(path: str, refs: dict[str, tuple], tree: ast.Module | None = None, src: tuple = ()) -> list[Finding]:
    """Findings for the script's `lightly.*` names (qualified name -> (line, column) of first use)."""
    if not refs:
        return []
    guarded = guarded_lines(tree) if tree is not None else []
    refs = {q: pos for q, pos in refs.items() if not any(first <= pos[0] <= last for first, last in guarded)}
    if not refs or pins.first_party(Path(path), src):
        return []
    try:
        judge = pins.judge(pins.find(Path(path)))
    except pins.PinError as exc:
        return [make_finding("DG730", path, (1, 1), "", f"the lightly pin cannot be read: {exc}",
                             "fix the pin (e.g. lightly==1.5.0); until then no lightly name is judged")]
    findings, seen = [], set()
    for qual, pos in sorted(refs.items(), key=lambda item: (item[1], item[0])):
        gaps = {release: catalog.missing(release, qual) for release in judge.releases}
        lacking = [release for release, gap in gaps.items() if gap is not None]
        if not lacking:
            continue
        missing = gaps[lacking[0]]
        if (missing, pos[0]) in seen:
            continue
        seen.add((missing, pos[0]))
        help_text = catalog.replacement(lacking[-1], missing)
        if len(lacking) == len(judge.releases) and (judge.certain or len(judge.releases) == 2):
            findings.append(make_finding("DG707", path, pos, "", f"{missing} does not exist in {judge.describe()}",
                                         help_text))
        else:
            findings.append(make_finding("DG708", path, pos, "", f"{missing} may not exist in the lightly this project "
                                         f"gets: it is absent from lightly {' and '.join(lacking)} ({judge.why})",
                                         help_text))
    return findings


_GUARD_ERRORS = frozenset({"ImportError", "ModuleNotFoundError", "AttributeError"})
_BROAD_ERRORS = frozenset({"Exception", "BaseException"})  # a guard only around imports: else it wraps a whole run


def guarded_lines(tree: ast.Module) -> list[tuple[int, int]]:
    """Line ranges where the script guards against a missing name: try/except ImportError (both the attempt and
    the fallback) and `if hasattr(...)` / `x if hasattr(...) else y`."""
    ranges = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Try | getattr(ast, "TryStar", ast.Try)) and _guards(node):
            ranges.append((node.lineno, node.handlers[-1].end_lineno or node.lineno))
        elif isinstance(node, ast.If | ast.IfExp | ast.While) and _tests_hasattr(node.test):
            ranges.append((node.lineno, node.end_lineno or node.lineno))
    return ranges


def _guards(node: ast.Try) -> bool:
    """The try catches a missing name: ImportError/AttributeError anywhere, a broad except only around imports."""
    only_imports = all(isinstance(s, ast.Import | ast.ImportFrom) for s in node.body)
    return any(_catches(h, _GUARD_ERRORS) or (only_imports and _catches(h, _BROAD_ERRORS, bare=True))
               for h in node.handlers)


def _catches(handler: ast.ExceptHandler, names: frozenset, bare: bool = False) -> bool:
    if handler.type is None:
        return bare
    types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(t, ast.Name) and t.id in names for t in types)


def _tests_hasattr(test: ast.expr) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "hasattr"
               for n in ast.walk(test))
