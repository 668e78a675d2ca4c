"""Regenerate the docs' generated blocks: the setup reference and the rules table.

They live in docs/reference.md; README.md is rendered too, so a block moved
back into the user guide stays current.

    .venv/bin/python scripts/update_readme.py          # rewrite README.md and docs/reference.md
    .venv/bin/python scripts/update_readme.py --check  # exit 1 if out of date
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference.md"
DOCS = (README, REFERENCE)


def rules_table() -> str:
    from dino_guard.rules.registry import all_rules

    rows = ["| code | name | severity | what it catches |", "|---|---|---|---|"]
    rows += [f"| {r.code} | {r.name} | {r.severity_label} | {r.summary} |" for r in all_rules()]
    return "\n".join(rows) + "\n"


def blocks() -> dict[str, str]:
    from dino_guard.schemas.export import markdown_reference

    return {"reference": markdown_reference(), "rules": rules_table()}


def render(text: str) -> str:
    for name, body in blocks().items():
        pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
        text = pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), text)
    return text


def main() -> int:
    stale = False
    for doc in DOCS:
        current = doc.read_text(encoding="utf-8")
        wanted = render(current)
        stale = stale or wanted != current
        if "--check" not in sys.argv and wanted != current:
            doc.write_text(wanted, encoding="utf-8")
    return 1 if stale and "--check" in sys.argv else 0


if __name__ == "__main__":
    sys.exit(main())
