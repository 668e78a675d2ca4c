"""The record every check, loader and trainer monitor reports: a Finding.

Stdlib only: everything else in the package imports this module.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from dataclasses import field as dataclass_field
from typing import Any


class Severity(str, enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Finding:
    """One problem found in one file, at a line and column (1-based)."""

    path: str
    line: int
    column: int
    code: str
    name: str
    severity: Severity
    message: str
    help: str
    field: str = ""
    # The change that silences the finding, as {dotted setup field: value} (None: remove the key);
    # empty when no single value does. Each reader renders it in its own syntax (a YAML key, a keyword argument).
    fix: dict[str, Any] | None = dataclass_field(default=None, compare=False)
    # Where the finding ends (1-based, end column exclusive), for editors; None when only the start is known.
    end_line: int | None = dataclass_field(default=None, compare=False)
    end_column: int | None = dataclass_field(default=None, compare=False)
    # Other places that explain it, as (line, column, note): a script finding at the literal to edit
    # keeps the line that uses it here.
    related: tuple = dataclass_field(default=(), compare=False)
    # A script's fix as a text edit of the file: {line, column, end_line, end_column, replacement}.
    edit: dict[str, Any] | None = dataclass_field(default=None, compare=False)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["severity"] = self.severity.value
        data["fix"] = dict(self.fix) if self.fix else {}
        data["related"] = [{"path": self.path, "line": line, "column": column, "message": note}
                           for line, column, note in self.related]
        return data

    @property
    def sort_key(self) -> tuple:
        return (self.path, self.line, self.column, self.code)


class UnreadableInput(Exception):
    """Input that cannot be read at all (missing, a directory, not UTF-8,
    too large). The CLI prints the message as one line and exits 2."""
