"""The check path is a pre-commit hook: it must never import torch, timm,
lightly or torchvision (torch alone takes seconds to import)."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import EXAMPLES, REPO

HEAVY = ("torch", "timm", "lightly", "torchvision", "kornia", "numpy", "matplotlib")

PROBE = """
import atexit, sys
heavy = {heavy!r}
@atexit.register
def report():
    loaded = sorted(m for m in sys.modules if m.split('.')[0] in heavy)
    sys.stderr.write('HEAVY:' + ','.join(loaded) + '\\n')
sys.argv = ['dino-guard'] + {args!r}
from dino_guard.cli import main
main()
"""


def imported_heavy_modules(*args: str) -> list[str]:
    code = PROBE.format(heavy=HEAVY, args=list(args))
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    marker = [line for line in result.stderr.splitlines() if line.startswith("HEAVY:")]
    assert marker, result.stderr
    return [m for m in marker[-1][len("HEAVY:"):].split(",") if m]


def test_check_of_setups_and_scripts_imports_no_heavy_module():
    scripts = sorted(str(p) for p in (EXAMPLES / "scripts").glob("*.py")) if (EXAMPLES / "scripts").is_dir() else []
    args = ["check", "--gpu", "H100-80GB", str(EXAMPLES / "broken"), *map(str, EXAMPLES.glob("*.dino.yaml")), *scripts]
    assert imported_heavy_modules(*args) == []


def test_rules_schema_and_help_import_no_heavy_module():
    for args in (["rules"], ["rule", "DG201"], ["schema"], ["--help"]):
        assert imported_heavy_modules(*args) == [], args
