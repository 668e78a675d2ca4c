"""The rule registry: documentation and check functions for the code table.

A code's identity (name, severity, origin) lives in dino_guard/codes.py. Here
every code gets its documentation exactly once (the docstring of the rule
function, or of the documented entry for codes raised by the loader, the
Python source reader or the trainer's monitor), and setup rules get their
check function. A code missing from the table, or registered with another
name or severity than the table's, is refused.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from dino_guard import codes
from dino_guard.findings import Severity

DOC_SECTIONS = ("What it checks", "Why it matters", "Example", "Use instead", "References")
_CODE = re.compile(r"^DG\d{3}$")
_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Issue:
    """What a rule function yields: the engine adds code, name and position.

    `fix` is the change that makes the rule silent, {dotted field: value}
    (None removes the key). A test applies every rule's fix to its bad fixture
    and checks the rule goes quiet, so the advice is a fixed point.
    `severity` is set only by a graded rule (codes.Code.graded) when the
    numbers make failure certain; None is the table's severity.
    """

    field: str
    message: str
    help: str
    fix: dict | None = field(default=None, compare=False, hash=False)
    severity: Severity | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class ScriptIssue:
    """What a script rule yields: it knows the (line, column) in the script itself.

    `fix`, as an Issue's, is {dotted field: value} for a lightly call's keyword at `position` (check --fix writes
    it there, or at the literal the value was written as); most script findings have none.
    """

    position: tuple
    field: str
    message: str
    help: str
    severity: Severity | None = field(default=None, compare=False, hash=False)
    fix: dict | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    raw_doc: str  # as written; cleaned only when read (`doc`): a check run never reads it
    check: Callable[..., Iterable[Issue]] | None = None  # None: raised elsewhere (loader, trainer)
    needs: tuple = ()  # dotted setup fields the check reads; skipped when a partial source lacks one
    origin: str = "setup"  # setup | loader | script | trainer

    @property
    def severity_label(self) -> str:
        """The table's severity, `warning/error` for a graded rule."""
        return codes.CODES[self.code].severity_label

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.raw_doc)

    @property
    def summary(self) -> str:
        return self.doc.strip().splitlines()[0].strip() if self.doc.strip() else ""


RULES: dict[str, Rule] = {}
RETIRED = codes.RETIRED  # codes that once existed; never reused


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
    table = codes.CODES.get(entry.code)
    if table is None or (table.name, table.severity, table.origin) != (entry.name, entry.severity, entry.origin):
        raise RegistryError(f"{entry.code} {entry.name} ({entry.severity.value}, {entry.origin}) "
                            f"does not match the code table in dino_guard/codes.py: {table}")
    RULES[entry.code] = entry


def rule(code: str, name: str, severity: Severity, needs: Iterable[str] = ()):
    """Decorator: register a setup rule; its docstring is its documentation."""

    def decorate(func: Callable[..., Iterator[Issue]]):
        _register(Rule(code, name, severity, func.__doc__ or "", func, tuple(needs), "setup"))
        return func

    return decorate


def script_rule(code: str, name: str, severity: Severity):
    """Decorator: register a rule over what the script reader saw (sources.evidence.ScriptEvidence)."""

    def decorate(func: Callable[..., Iterator[ScriptIssue]]):
        _register(Rule(code, name, severity, func.__doc__ or "", func, (), "script"))
        return func

    return decorate


def documented(code: str, name: str, severity: Severity, doc: str, origin: str) -> None:
    """Register a code that is raised outside the rule engine."""
    _register(Rule(code, name, severity, doc, None, (), origin))


def get(code: str) -> Rule:
    _ensure_loaded()
    return RULES[code]


def all_rules() -> list[Rule]:
    _ensure_loaded()
    return [RULES[c] for c in sorted(RULES)]


def rules_for(origin: str) -> list[Rule]:
    """The rules with a check over `origin` (setup | script), loading only their modules."""
    if origin not in _CHECKS:  # once per process: a hook checks many files
        from dino_guard.rules import SCRIPT_MODULES, SETUP_MODULES

        _load(SETUP_MODULES if origin == "setup" else SCRIPT_MODULES)
        _CHECKS[origin] = [RULES[c] for c in sorted(RULES) if RULES[c].origin == origin and RULES[c].check is not None]
    return _CHECKS[origin]


_CHECKS: dict[str, list[Rule]] = {}


def _ensure_loaded() -> None:
    """Register every rule module (rules/__init__.py lists them)."""
    from dino_guard.rules import DOCUMENTED_MODULES, SCRIPT_MODULES, SETUP_MODULES

    _load((*SETUP_MODULES, *SCRIPT_MODULES, *DOCUMENTED_MODULES))


def _load(modules: tuple) -> None:
    for name in modules:
        importlib.import_module(f"dino_guard.rules.{name}")  # registers its rules on first import
