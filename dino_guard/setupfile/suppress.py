"""Inline suppression comments: which findings a file itself silences.

YAML and TOML setups:
  `# dino-guard: ignore[DG203] reason` on a finding's line silences that code
  there; on a section's key line (`head:` or `[model.head]`) it silences the
  code in the whole section. `# dino-guard: ignore-file[DG203]` silences the
  code in the whole file.
Python scripts: `# noqa: DG203` on the line, as flake8 and ruff read it
(other tools' codes in the same comment are left alone); the
`# dino-guard: ...` forms work too. A bare `# noqa` silences nothing here:
it is usually written for a linter's line-length or import rule, and
silencing a DINO error by accident costs a GPU run.
JSON cannot hold comments: use --ignore or [tool.dino-guard] there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from dino_guard.codes import CODES, make_finding
from dino_guard.findings import Finding

_DIRECTIVE = re.compile(r"#\s*dino-guard:\s*(?P<kind>ignore-file|ignore)\[(?P<codes>[^\]]*)\]")
_NOQA = re.compile(r"#\s*noqa\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)", re.I)
_TOML_HEADER = re.compile(r"\s*\[\[?\s*(?P<name>[^\]#]+?)\s*\]")
WHOLE_FILE = 10**9


@dataclass
class Directive:
    """One suppression comment: the codes it names and the lines it covers."""

    line: int
    column: int
    text: str
    codes: tuple
    first: int
    last: int
    used: set = field(default_factory=set)

    def silences(self, finding: Finding) -> bool:
        if finding.code in self.codes and self.first <= finding.line <= self.last:
            self.used.add(finding.code)
            return True
        return False


def directives(path: Path, text: str) -> list[Directive]:
    """Every suppression comment in a setup file or script."""
    lines = text.splitlines()
    found = []
    for number, line in enumerate(lines, start=1):
        match = _DIRECTIVE.search(line)
        if match:
            first, last = (1, WHOLE_FILE) if match["kind"] == "ignore-file" else _scope(path, lines, number)
            found.append(_directive(number, line, match, first, last))
        elif path.suffix == ".py" and (match := _NOQA.search(line)):
            found.append(_directive(number, line, match, number, number))
    return found


def _directive(number: int, line: str, match: re.Match, first: int, last: int) -> Directive:
    codes = tuple(c.strip().upper() for c in re.split(r"[\s,]+", match["codes"]) if c.strip())
    codes = tuple(c for c in codes if c.startswith("DG"))  # a noqa may list other tools' codes
    return Directive(number, match.start() + 1, match.group(0), codes, first, last)


def _scope(path: Path, lines: list[str], number: int) -> tuple[int, int]:
    """The lines a line-level comment covers: its line, or the section it opens."""
    line = lines[number - 1]
    if path.suffix == ".toml":
        header = _TOML_HEADER.match(line)
        if not header:
            return number, number
        inside = header["name"] + "."  # [model] covers [model.head] and [model.backbone] too
        end = next((n for n in range(number + 1, len(lines) + 1) if (h := _TOML_HEADER.match(lines[n - 1]))
                    and not h["name"].startswith(inside)), len(lines) + 1)
        return number, end - 1
    if path.suffix == ".py":
        return number, number
    indent = len(line) - len(line.lstrip())
    last = number
    for n in range(number + 1, len(lines) + 1):
        body = lines[n - 1]
        if not body.strip() or body.lstrip().startswith("#"):
            continue
        if len(body) - len(body.lstrip()) <= indent:
            break
        last = n
    return number, last


def apply(findings: list[Finding], found: list[Directive]) -> list[Finding]:
    """The findings no directive silences (every directive records what it silenced)."""
    return [f for f in findings if not any([d.silences(f) for d in found])]


def unused(path: str, found: list[Directive], wants) -> list[Finding]:
    """DG008 for each code of a directive that silenced nothing (only codes this run checks)."""
    findings = []
    for directive in found:
        idle = [c for c in directive.codes if c not in directive.used and wants(c)]
        if not idle:
            continue
        unknown = [c for c in idle if c not in CODES]
        where = "in this file" if directive.last == WHOLE_FILE else (
            "on this line" if directive.first == directive.last else f"in lines {directive.first}-{directive.last}")
        reason = f" ({', '.join(unknown)} is not a dino-guard code)" if unknown else ""
        findings.append(make_finding(
            "DG008", path, (directive.line, directive.column), "",
            f"`{directive.text}` suppresses nothing: no {', '.join(idle)} finding {where}{reason}",
            f"remove {', '.join(idle)} from the comment (or the whole comment if it names nothing else)"))
    return findings
