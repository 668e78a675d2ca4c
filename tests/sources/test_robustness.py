"""No Python file crashes the script reader: every .py of the standard library and
of the installed torch goes through load_python (most stop at the lightly pre-filter),
and a sample of them goes through the whole analysis as if they imported lightly."""

from __future__ import annotations

import random
import sysconfig
import time
from pathlib import Path

import pytest

from dino_guard.findings import UnreadableInput
from dino_guard.sources.python import analyse, load_python

FULL_SAMPLE = 1500  # files run through the interpreter regardless of the pre-filter
BUDGET_S = 170  # the issue asks for < 3 minutes on 2 cores


def _python_files() -> list[Path]:
    roots = [Path(sysconfig.get_paths()["stdlib"])]
    try:
        import importlib.util

        spec = importlib.util.find_spec("torch")  # locates torch without importing it
        if spec and spec.submodule_search_locations:
            roots.append(Path(list(spec.submodule_search_locations)[0]))
    except (ImportError, ValueError):
        pass
    files = []
    for root in roots:
        files.extend(p for p in root.rglob("*.py") if "site-packages" not in p.relative_to(root).parts)
    return sorted(files)


@pytest.mark.slow
def test_stdlib_and_torch_never_crash():
    files = _python_files()
    assert len(files) > 1000
    started = time.perf_counter()
    for path in files:
        try:
            load_python(path)
        except UnreadableInput:
            pass  # a broken symlink or unreadable file is reported as such, not a crash
    sample = random.Random(0).sample(files, min(FULL_SAMPLE, len(files)))
    analysed = 0
    for path in sample:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        loaded = analyse(str(path), text, require_lightly=False)
        assert loaded.path == str(path)
        analysed += 1
    assert analysed > FULL_SAMPLE // 2
    assert time.perf_counter() - started < BUDGET_S
