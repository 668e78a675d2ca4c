"""Which findings `check --fix` applies, in which order, and until when.

A pass applies the chosen findings of a file one after another, each by the
editor of the file's format; a finding whose field another finding of the
same pass already set (or set below, or above) waits for the next pass, and
so do the findings after a script edit that added a line (DG302's keyword on
a line of its own): their line:column no longer point at their call. A
script finding that carries its `edit` (the text span it replaces) is written
only first in a pass, while that span is still where the check found it. After
each pass the text is checked again, so a fix that made another finding
appear or go away is seen, and the passes stop when one changes nothing (ruff
loops the same way). What stays is what no fix could reach.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dino_guard.check.engine import Options
from dino_guard.check.fix.errors import NotFixable
from dino_guard.codes import fix_safety
from dino_guard.findings import Finding, Severity, UnreadableInput

MAX_PASSES = 10  # a fix that needs more has met another fix that undoes it; stop rather than loop


@dataclass(frozen=True)
class Fixed:
    """One file before and after its fixes."""

    path: Path
    before: str
    after: str
    applied: int  # fixes that changed the text
    fields: frozenset = frozenset()  # the dotted fields they wrote

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        name = str(self.path)
        old, new = (name, name) if self.path.is_absolute() else (f"a/{name}", f"b/{name}")
        lines = difflib.unified_diff(self.before.splitlines(keepends=True), self.after.splitlines(keepends=True),
                                     old, new)
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def applies(finding: Finding, unsafe: bool) -> bool:
    """A finding --fix writes: it has a fix, and the fix is safe (or unsafe with --unsafe-fixes); never an info."""
    safety = fix_safety(finding.code)
    return bool(finding.fix) and (safety == "safe" or (unsafe and safety == "unsafe"))


def fix_text(path: Path, text: str, options: Options, unsafe: bool) -> Fixed:
    """The file's text with every applicable fix written in, re-checked after each pass."""
    from dino_guard.check.inputs import findings_of, load_text

    current, applied, fields = text, 0, set()
    for _ in range(MAX_PASSES):
        chosen = [f for f in findings_of(path, load_text(path, current, options.src), options) if applies(f, unsafe)]
        after, written = _one_pass(path.suffix, current, chosen)
        if after == current:
            break
        current, applied, fields = after, applied + len(written), fields.union(*written)
    return Fixed(path, text, current, applied, frozenset(fields))


def fix_file(path: Path, options: Options, unsafe: bool) -> Fixed:
    """fix_text over the file as check reads it (UnreadableInput when it cannot be read)."""
    from dino_guard.check.inputs import load

    text = load(path).text
    if text is None:  # a script the reader skipped (no lightly import): nothing to fix
        return Fixed(path, "", "", 0)
    return fix_text(path, text, options, unsafe)


def write(fixed: Fixed) -> None:
    """Replace the file by its fixed text: a new file renamed into place, with the old one's mode and BOM.

    A symlinked setup is fixed where it lives: the rename goes to the link's target, never over the link."""
    path = Path(os.path.realpath(fixed.path))
    temporary = None
    try:
        bom = path.read_bytes().startswith(b"\xef\xbb\xbf")
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".fix")
        with os.fdopen(handle, "wb") as out:
            out.write((b"\xef\xbb\xbf" if bom else b"") + fixed.after.encode("utf-8"))
        os.chmod(temporary, path.stat().st_mode & 0o7777)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)
        raise UnreadableInput(f"{fixed.path}: cannot be written ({exc.strerror or exc})") from None


def _one_pass(suffix: str, text: str, findings: list[Finding]) -> tuple[str, list[dict]]:
    """The text after one pass, and the fix of each finding that changed it."""
    written: dict[str, object] = {}
    applied = []
    for finding in findings:
        if any(_overlaps(dotted, value, written) for dotted, value in finding.fix.items()):
            continue  # another fix of this pass set this field: the next pass decides
        if finding.edit is not None and applied:
            continue  # its edit's columns are those of the text before this pass's fixes: the next pass re-reads it
        try:
            after = editor(suffix)(text, finding)
        except NotFixable:
            continue
        if after != text:
            lines_moved = suffix == ".py" and after.count("\n") != text.count("\n")
            text = after
            applied.append(finding.fix)
            written.update(finding.fix)
            if lines_moved:  # a script's editor finds its call by line:column: the next findings' are stale now
                break
    return text, applied


def _overlaps(dotted: str, value: object, written: dict) -> bool:
    for other, other_value in written.items():
        if other == dotted:
            if other_value != value:
                return True
        elif other.startswith(dotted + ".") or dotted.startswith(other + "."):
            return True
    return False


def apply_fields(suffix: str, text: str, fields: dict) -> str:
    """A setup file's text with {dotted field: value} written in (None removes): `rescale` writes its changes so."""
    if suffix == ".py":
        raise NotFixable("a script's fields are no keys to set")
    return editor(suffix)(text, Finding("", 1, 1, "", "", Severity.INFO, "", "", fix=fields))


def editor(suffix: str) -> Callable[[str, Finding], str]:
    """The edit function for a file's format (imported only when a fix is written)."""
    if suffix == ".py":
        from dino_guard.check.fix import python

        return python.apply_finding
    if suffix == ".toml":
        from dino_guard.check.fix import toml as module
    elif suffix == ".json":
        from dino_guard.check.fix import json_ as module
    else:
        from dino_guard.check.fix import yaml as module
    return lambda text, finding: module.apply(text, finding.fix)
