"""DG707/DG708: lightly names a script uses that its lightly release lacks.

The release is the one the script's project pins (releases.pins), or the
newest one described; its names come from the shipped data file
(releases.catalog), never from the installed lightly, so the verdict is the
same in a pre-commit hook's environment as in the training environment.
"""

from __future__ import annotations

from pathlib import Path

from dino_guard.codes import make_finding
from dino_guard.findings import Finding
from dino_guard.sources.releases import catalog, pins


def api_findings(path: str, refs: dict[str, tuple]) -> list[Finding]:
    """Findings for the script's `lightly.*` names (qualified name -> (line, column) of first use)."""
    if not refs:
        return []
    judge = pins.judge(pins.find(Path(path)))
    findings, seen = [], set()
    for qual, pos in sorted(refs.items(), key=lambda item: (item[1], item[0])):
        gaps = {release: catalog.missing(release, qual) for release in judge.releases}
        lacking = [release for release, gap in gaps.items() if gap is not None]
        if not lacking:
            continue
        missing = gaps[lacking[0]]
        if (missing, pos[0]) in seen:
            continue
        seen.add((missing, pos[0]))
        help_text = catalog.replacement(lacking[-1], missing)
        if len(lacking) == len(judge.releases) and (judge.certain or len(judge.releases) == 2):
            findings.append(make_finding("DG707", path, pos, "", f"{missing} does not exist in {judge.describe()}", help_text))
        else:
            findings.append(make_finding("DG708", path, pos, "", f"{missing} may not exist in the lightly this project "
                                         f"gets: it is absent from lightly {' and '.join(lacking)} ({judge.why})", help_text))
    return findings
