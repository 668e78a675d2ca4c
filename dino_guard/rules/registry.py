"""The one registry of finding codes.

Every code dino-guard can print is registered here exactly once, with a
kebab-case name, a severity and its documentation (the docstring of the rule
function, or of the documented entry for codes raised by the loader, the
Python source reader or the trainer's monitor). Codes are permanent: a rule
that is removed moves to RETIRED and its code is never reused.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Optional

from dino_guard.findings import Finding, Severity

DOC_SECTIONS = ("What it checks", "Why it matters", "Example", "Use instead", "References")
_CODE = re.compile(r"^DG\d{3}$")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Issue:
    """What a rule function yields: the engine adds code, name and position."""

    field: str
    message: str
    help: str


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    doc: str
    check: Optional[Callable[..., Iterable[Issue]]] = None  # None: raised elsewhere (loader, trainer)
    needs: tuple = ()  # dotted setup fields the check reads; skipped when a partial source lacks one
    origin: str = "setup"  # setup | loader | script | trainer

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0].strip() if self.doc.strip() else ""


RULES: dict[str, Rule] = {}
# Codes that once existed. Never reuse one: users have them in --ignore lists.
RETIRED: dict[str, str] = {}


class RegistryError(Exception):
    pass


def _register(entry: Rule) -> None:
    if not _CODE.match(entry.code):
        raise RegistryError(f"{entry.code}: codes look like DG123")
    if not _NAME.match(entry.name):
        raise RegistryError(f"{entry.code}: name {entry.name!r} is not kebab-case")
    if entry.code in RULES or entry.code in RETIRED:
        raise RegistryError(f"{entry.code} is registered twice")
    if any(r.name == entry.name for r in RULES.values()):
        raise RegistryError(f"rule name {entry.name!r} is registered twice")
    RULES[entry.code] = entry


def rule(code: str, name: str, severity: Severity, needs: Iterable[str] = ()):
    """Decorator: register a setup rule; its docstring is its documentation."""

    def decorate(func: Callable[..., Iterator[Issue]]):
        _register(Rule(code, name, severity, inspect.getdoc(func) or "", func, tuple(needs), "setup"))
        return func

    return decorate


def documented(code: str, name: str, severity: Severity, doc: str, origin: str) -> None:
    """Register a code that is raised outside the rule engine."""
    _register(Rule(code, name, severity, inspect.cleandoc(doc), None, (), origin))


def make_finding(code: str, path: str, position: tuple, field: str, message: str, help: str) -> Finding:
    entry = get(code)
    return Finding(path=path, line=position[0], column=position[1], code=code, name=entry.name,
                   severity=entry.severity, message=message, help=help, field=field)


def get(code: str) -> Rule:
    _ensure_loaded()
    return RULES[code]


def all_rules() -> list[Rule]:
    _ensure_loaded()
    return [RULES[c] for c in sorted(RULES)]


def _ensure_loaded() -> None:
    # Importing the package registers every rule module (see rules/__init__.py).
    import dino_guard.rules  # noqa: F401
