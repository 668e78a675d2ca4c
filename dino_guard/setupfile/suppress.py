"""Inline suppression comments: which findings a file itself silences.

YAML and TOML setups:
  `# dino-guard: ignore[DG203] reason` on a finding's line silences that code
  there; on a section's key line (`head:` or `[model.head]`) it silences the
  code in the whole section. `# dino-guard: ignore-file[DG203]` silences the
  code in the whole file.
Only real comments count: text inside a string, a docstring or a YAML block
scalar is never a directive (tokenize reads Python's comments; YAML and TOML
are scanned with their quoting rules). Lines are numbered as each reader
numbers them (a form feed is no line break in Python). A TOML table's
directive covers the table and every subtable wherever they appear, quoted
header keys included.
Python scripts: `# noqa: DG203` on the line, as flake8 and ruff read it
(other tools' codes in the same comment are left alone); the
`# dino-guard: ...` forms work too. A bare `# noqa` silences nothing here:
it is usually written for a linter's line-length or import rule, and
silencing a DINO error by accident costs a GPU run.
JSON cannot hold comments: use --ignore or [tool.dino-guard] there.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from dino_guard.codes import CODES, make_finding
from dino_guard.findings import Finding

_DIRECTIVE = re.compile(r"#\s*dino-guard:\s*(?P<kind>ignore-file|ignore)\[(?P<codes>[^\]]*)\]")
_NOQA = re.compile(r"#\s*noqa\s*:\s*(?P<codes>[A-Z]+[0-9]+(?:[\s,]+[A-Z]+[0-9]+)*)", re.I)
# how each reader numbers lines: Python's and TOML's line ends; YAML's also \x85, \u2028, \u2029 (never \f or \v)
_LINE_END = {".py": re.compile(r"\r\n|\r|\n"), ".toml": re.compile(r"\r?\n")}
_YAML_LINE_END = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
WHOLE_FILE = 10**9


@dataclass
class Directive:
    """One suppression comment: the codes it names and the lines it covers (one span, or several for a TOML
    table whose subtables appear in more than one place)."""

    line: int
    column: int
    text: str
    codes: tuple
    first: int
    last: int
    used: set = field(default_factory=set)
    more: tuple = ()  # further (first, last) spans

    def silences(self, finding: Finding) -> bool:
        """On the finding's line, or on a related one (a script finding moved to the call its fix edits
        keeps the line it was found on as related: a comment on either silences it)."""
        spans = ((self.first, self.last), *self.more)
        lines = (finding.line, *(line for line, _, _ in finding.related))
        if finding.code in self.codes and any(first <= line <= last for first, last in spans for line in lines):
            self.used.add(finding.code)
            return True
        return False


def lines_of(path: Path, text: str) -> list[str]:
    """The file's lines as its reader numbers them (a form feed or a \\u2028 inside a string starts none)."""
    pattern = _LINE_END.get(path.suffix, _YAML_LINE_END)
    return pattern.split(text)


def directives(path: Path, text: str) -> list[Directive]:
    """Every suppression comment in a setup file or script: only real comments count, never text in a string."""
    if not _DIRECTIVE.search(text) and not (path.suffix == ".py" and _NOQA.search(text)):
        return []  # no directive anywhere in the text, so none in a comment: the usual file reads no comments
    lines = lines_of(path, text)
    found = []
    for number, column, comment in comments(path, text, lines):
        match = _DIRECTIVE.search(comment)
        if match:
            spans = [(1, WHOLE_FILE)] if match["kind"] == "ignore-file" else _scope(path, lines, number)
            found.append(_directive(number, column + match.start(), match, spans))
        elif path.suffix == ".py" and (match := _NOQA.search(comment)):
            found.append(_directive(number, column + match.start(), match, [(number, number)]))
    return found


def _directive(number: int, column: int, match: re.Match, spans: list) -> Directive:
    codes = tuple(c.strip().upper() for c in re.split(r"[\s,]+", match["codes"]) if c.strip())
    codes = tuple(c for c in codes if c.startswith("DG"))  # a noqa may list other tools' codes
    (first, last), *more = spans
    return Directive(number, column + 1, match.group(0), codes, first, last, more=tuple(more))


# --- real comments -------------------------------------------------------------------------------

def comments(path: Path, text: str, lines: list[str]) -> list[tuple[int, int, str]]:
    """(line, 0-based column, text) of every comment, as the file's own language reads it."""
    if path.suffix == ".py":
        return _python_comments(text)
    if path.suffix == ".toml":
        return _scanned(lines, _toml_comment_start)
    return _scanned(lines, _yaml_comment_start)


def _python_comments(text: str) -> list:
    found = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                found.append((token.start[0], token.start[1], token.string))
    except (tokenize.TokenError, SyntaxError):  # an unfinished file: the comments before the problem still count
        pass
    return found


def _scanned(lines: list[str], start_of) -> list:
    found, state = [], {}
    for number, line in enumerate(lines, start=1):
        column = start_of(line, state)
        if column is not None:
            found.append((number, column, line[column:]))
    return found


def _toml_comment_start(line: str, state: dict) -> int | None:
    """Where a TOML comment starts on the line, outside strings ('...', "...", and multi-line ones across lines)."""
    i, quote = 0, state.get("open")  # quote: the delimiter of a multi-line string still open
    while i < len(line):
        if quote:
            if quote[0] == '"' and line[i] == "\\":
                i += 2
                continue
            if line.startswith(quote, i):
                i, quote = i + len(quote), None
                continue
            i += 1
            continue
        char = line[i]
        if char == "#":
            state["open"] = None
            return i
        if char in "\"'":
            quote = char * 3 if line.startswith(char * 3, i) else char
            i += len(quote)
            continue
        i += 1
    state["open"] = quote if quote and len(quote) == 3 else None
    return None


def _yaml_comment_start(line: str, state: dict) -> int | None:
    """Where a YAML comment starts: a `#` after a space or at the line start, outside quoted scalars and
    outside block scalars (`key: |` and the lines indented below it)."""
    indent = len(line) - len(line.lstrip(" "))
    block = state.get("block")
    if block is not None:
        if not line.strip() or indent > block:
            return None
        state["block"] = None
    i, quote = 0, state.get("quote")
    while i < len(line):
        char = line[i]
        if quote:
            if quote == '"' and char == "\\":
                i += 2
                continue
            if char == quote:
                if quote == "'" and line.startswith("''", i):
                    i += 2
                    continue
                quote = None
        elif char == "#" and (i == 0 or line[i - 1] in " \t"):
            state["quote"] = None
            _opens_block(line[:i], indent, state)  # `key: |  # comment`: the block still follows
            return i
        elif char in "\"'" and (i == 0 or line[i - 1] in " \t[{,:-"):
            quote = char
        i += 1
    state["quote"] = quote
    if not quote:
        _opens_block(line, indent, state)
    return None


def _opens_block(content: str, indent: int, state: dict) -> None:
    if re.search(r"(^|[\s:-])[|>][-+0-9]*\s*$", content):
        state["block"] = indent


# --- what a line-level directive covers ----------------------------------------------------------

def _scope(path: Path, lines: list[str], number: int) -> list[tuple[int, int]]:
    """The lines a line-level comment covers: its line, or the section it opens."""
    line = lines[number - 1]
    if path.suffix == ".toml":
        return _toml_scope(lines, number)
    if path.suffix == ".py":
        return [(number, number)]
    indent = len(line) - len(line.lstrip())
    last = number
    for n in range(number + 1, len(lines) + 1):
        body = lines[n - 1]
        if not body.strip() or body.lstrip().startswith("#"):
            continue
        if len(body) - len(body.lstrip()) <= indent:
            break
        last = n
    return [(number, last)]


def _toml_scope(lines: list[str], number: int) -> list[tuple[int, int]]:
    """On a table header: that table and every subtable, wherever in the file they appear; else the line."""
    key = toml_header(lines[number - 1])
    if key is None:
        return [(number, number)]
    headers = [(n, k) for n, line in enumerate(lines, start=1) if (k := _header_if_code(line)) is not None]
    spans = []
    for index, (start, header) in enumerate(headers):
        if header[: len(key)] == key:
            end = headers[index + 1][0] - 1 if index + 1 < len(headers) else len(lines)
            spans.append((start, end))
    merged: list = []
    for start, end in spans:  # a table followed by its subtables is one span
        if merged and merged[-1][1] + 1 == start:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    merged.sort(key=lambda span: not span[0] <= number <= span[1])  # the directive's own table first
    return merged or [(number, number)]


def _header_if_code(line: str) -> tuple | None:
    return toml_header(line) if line.lstrip().startswith("[") else None


_BARE = re.compile(r"[A-Za-z0-9_-]+")


def toml_header(line: str) -> tuple | None:
    """The key parts of a `[table]` or `[[array]]` header line (quoted keys unquoted), or None."""
    text = line.strip()
    if not text.startswith("["):
        return None
    i = 2 if text.startswith("[[") else 1
    parts = []
    while i < len(text):
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] in "\"'":
            close = _closing_quote(text, i)
            if close is None:
                return None
            raw = text[i + 1:close]
            parts.append(raw.replace('\\"', '"').replace("\\\\", "\\") if text[i] == '"' else raw)
            i = close + 1
        elif bare := _BARE.match(text, i):
            parts.append(bare.group(0))
            i = bare.end()
        else:
            return None
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return tuple(parts) if i < len(text) and text[i] == "]" else None
    return None


def _closing_quote(text: str, start: int) -> int | None:
    quote, i = text[start], start + 1
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return None


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
