"""Findings the reader raises itself about the script's lightly names (DG707, DG708)."""

from __future__ import annotations

from dino_guard import lightly_verdict
from dino_guard.findings import Finding
from dino_guard.sources.library.trace import DinoTrace as Trace


def api_findings(path: str, trace: Trace) -> list[Finding]:
    """DG707/DG708 for the script's lightly names, judged by dino_guard.lightly_verdict against the
    shipped per-release data and the project's pinned lightly (never the installed one)."""
    return lightly_verdict.api_findings(path, trace.lightly_refs)
