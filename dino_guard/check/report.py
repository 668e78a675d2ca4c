"""Findings -> text, JSON, GitHub annotations or SARIF."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable

import click

from dino_guard import __version__
from dino_guard.findings import Finding, Severity
from dino_guard.rules.registry import all_rules
from dino_guard.terminal import printable

_COLOURS = {Severity.ERROR: "red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def format_text(findings: list[Finding], files_checked: int) -> str:
    return "\n".join([*finding_lines(findings), summary(findings, files_checked)])


def finding_lines(findings: list[Finding]) -> list[str]:
    """`path:line:col: DGnnn message` and an indented help line per finding (also the runtime guard's output).

    A finding about a live object (the runtime guard's; line 0) is placed by its module path alone.
    """
    lines = []
    for f in findings:
        place = f"{printable(f.path)}:{f.line}:{f.column}:" if f.line else f"{printable(f.path)}:"
        where = click.style(place, bold=True)
        code = click.style(f.code, fg=_COLOURS[f.severity], bold=True)
        lines.append(f"{where} {code} {printable(f.message)}")
        lines.append(f"    help: {printable(f.help)}")
    return lines


def summary(findings: Iterable[Finding], files_checked: int) -> str:
    counts = Counter(f.severity for f in findings)
    parts = [_plural(counts[s], s.value) if s != Severity.INFO else f"{counts[s]} info"
             for s in Severity if counts[s]]
    files = _plural(files_checked, "file")
    if not parts:
        return f"All checks passed ({files})."
    return f"Found {', '.join(parts)} in {files}."


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def format_json(findings: list[Finding], files_checked: int) -> str:
    return json.dumps([f.to_dict() for f in findings], indent=2)


def github_data(text: str) -> str:
    """A workflow command's message: % CR LF escaped (actions/toolkit escapeData), controls made visible."""
    return printable(text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A"))


def github_property(text: str) -> str:
    """A workflow command's property value (file=, title=): also ':' and ',' (actions/toolkit escapeProperty)."""
    return github_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(findings: list[Finding], files_checked: int) -> str:
    """GitHub Actions workflow commands: annotations on the pull request diff.

    Every part is escaped: a file name holding a newline and `::stop-commands::`
    must not inject commands into the CI log.
    """
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}
    return "\n".join(
        f"::{level[f.severity]} file={github_property(f.path)},line={f.line},col={f.column},"
        f"title={github_property(f'{f.code} {f.name}')}::" + github_data(f"{f.message} (help: {f.help})")
        for f in findings
    )


def sarif_uri(path: str) -> str:
    """A SARIF artifact URI: percent-encoded (a space, `#` or `%` in a file name is no URI syntax);
    absolute paths as file:// URIs, relative ones as relative references."""
    from urllib.parse import quote

    encoded = quote(path.replace(os.sep, "/").encode("utf-8", "surrogateescape"), safe="/")
    return "file://" + encoded if os.path.isabs(path) else encoded


def format_sarif(findings: list[Finding], files_checked: int) -> str:
    """SARIF 2.1.0, for GitHub code scanning and other viewers."""
    level = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "note"}
    rules = [{"id": r.code, "name": r.name, "shortDescription": {"text": r.summary},
              "fullDescription": {"text": r.doc}, "defaultConfiguration": {"level": level[r.severity]}}
             for r in all_rules()]
    results = [{
        "ruleId": f.code,
        "level": level[f.severity],
        "message": {"text": f"{f.message}. Help: {f.help}"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": sarif_uri(f.path)}, "region": _region(f)}}],
        "relatedLocations": [{"id": i, "message": {"text": note},
                              "physicalLocation": {"artifactLocation": {"uri": sarif_uri(f.path)},
                                                   "region": {"startLine": line, "startColumn": column}}}
                             for i, (line, column, note) in enumerate(f.related)],
        "properties": {"field": f.field},
    } for f in findings]
    run = {"tool": {"driver": {"name": "dino-guard", "version": __version__, "rules": rules}}, "results": results}
    return json.dumps({"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [run]},
                      indent=2)


def _region(f: Finding) -> dict:
    region = {"startLine": f.line, "startColumn": f.column}
    if f.end_line is not None:
        region.update(endLine=f.end_line, endColumn=f.end_column)
    return region


FORMATTERS: dict[str, Callable[[list[Finding], int], str]] = {
    "text": format_text,
    "json": format_json,
    "github": format_github,
    "sarif": format_sarif,
}
