"""Findings the reader raises itself about the script's lightly names (DG707, DG708)."""

from __future__ import annotations

from dino_guard.codes import make_finding
from dino_guard.findings import Finding
from dino_guard.sources import lightly_index
from dino_guard.sources.library.trace import DinoTrace as Trace


def api_findings(path: str, trace: Trace) -> list[Finding]:
    """DG707 (installed lightly lacks the name) or DG708 (no lightly here, known removed)."""
    findings, seen = [], set()
    installed = lightly_index.installed()
    for qual, pos in sorted(trace.lightly_refs.items(), key=lambda item: (item[1], item[0])):
        if installed is not None:
            missing = lightly_index.check(qual)
            if missing is None or (missing, pos[0]) in seen:
                continue
            seen.add((missing, pos[0]))
            findings.append(make_finding("DG707", path, pos, "", f"{missing} does not exist in the installed lightly {installed[0]}",
                                         lightly_index.replacement(missing)))
        else:
            parts = qual.split(".")
            hit = next((p for p in parts[1:] if p in lightly_index.REMOVED), None)
            if hit is None or (hit, pos[0]) in seen:
                continue
            seen.add((hit, pos[0]))
            findings.append(make_finding("DG708", path, pos, "", f"{qual} was removed from lightly (absent from lightly 1.6)",
                                         lightly_index.REMOVED[hit]))
    return findings
