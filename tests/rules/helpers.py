"""Rule fixtures and what they expect (`# expect: DGnnn`), shared by the fixture, fix and script-help tests."""

from __future__ import annotations

from pathlib import Path

from dino_guard.check.engine import Options, check_loaded
from dino_guard.findings import Finding
from dino_guard.rules.registry import all_rules
from dino_guard.setupfile.loader import load_setup
from tests.helpers import expectations

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SETUP_FILES = (sorted(FIXTURES.glob("*.dino.yaml")) + sorted(EXAMPLES.glob("broken/*.dino.yaml"))
               + sorted(EXAMPLES.glob("*.dino.yaml")))

SETUP_CODES = {r.code for r in all_rules() if r.origin == "setup"}
CASES = [(path, code) for path in SETUP_FILES for code in sorted({c for _, c in expectations(path)} & SETUP_CODES)]


def findings_of(path: Path, code: str) -> list[Finding]:
    return [f for f in check_loaded(load_setup(path), Options(count_images=False)) if f.code == code]
