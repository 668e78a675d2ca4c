"""What the script reader hands the script rules (rules/script_*.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dino_guard.sources.library.trace import DinoTrace as Trace
from dino_guard.sources.partial_setup import Built, DinoPair
from dino_guard.sources.roles import Roles


@dataclass
class ScriptEvidence:
    path: str
    trace: Trace
    roles: Roles
    built: Built  # the partial setup's data, positions, known fields and the run's epochs
    pair: DinoPair  # which script classes build DINO: values of other models in the file are not DINO's
    setup: Any | None = None  # the validated Setup, when the script determines one
    tree: Any | None = None  # the script's ast.Module, for rules about statements the evaluator does not model

    def known(self, dotted: str) -> bool:
        return dotted in self.built.known

    def value(self, dotted: str) -> Any:
        """A partial-setup value the script determines, or None."""
        if dotted not in self.built.known:
            return None
        section: Any = self.built.data
        for part in dotted.split("."):
            section = section.get(part) if isinstance(section, dict) else None
        return section
