"""Every case of the hostile-input battery (cases.py), run as a subprocess.

A case holds when `dino-guard` exits with a documented status, prints no
traceback and finishes within the timeout. The cases run concurrently, once
per session (a fixture), and each test reads its case's result. The
estimate --method traced cases import torch (seconds each) and are slow.
"""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.hostile.cases import CASES, Case, skip_reason

TIMEOUT_S = 60  # a case that hangs (a FIFO, /dev/zero, a linear search) fails here, not in CI's global timeout
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_case(case: Case, folder) -> tuple:
    """(exit status, stdout + stderr) of the case's command run in `folder`; status None on a timeout."""
    args = case.make(folder)
    env = {**os.environ, "PYTHONPATH": REPO, "NO_COLOR": "1", **(case.env or {})}
    try:
        done = subprocess.run([sys.executable, "-m", "dino_guard", *args], cwd=folder, capture_output=True,
                              timeout=TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        return None, f"did not finish within {TIMEOUT_S} s"
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", errors="backslashreplace")


@pytest.fixture(scope="session")
def quick_results(request, tmp_path_factory) -> dict:
    """name -> (status, output) of every selected case that needs no torch, run four at a time."""
    selected = {item.callspec.params["case"].name for item in request.session.items
                if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)}
    cases = [c for c in CASES if c.name in selected and c.needs != "torch" and not skip_reason(c)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {c.name: pool.submit(run_case, c, tmp_path_factory.mktemp(c.name[:40])) for c in cases}
    return {name: future.result() for name, future in futures.items()}


def _param(case: Case):
    marks = [pytest.mark.slow] if case.needs == "torch" else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_hostile_input(case: Case, request, tmp_path):
    reason = skip_reason(case)
    if reason:
        pytest.skip(reason)
    if case.needs == "torch":
        status, output = run_case(case, tmp_path)
    else:
        status, output = request.getfixturevalue("quick_results")[case.name]
    assert status is not None, output
    assert "Traceback" not in output, output[-2000:]
    assert status in case.exits, f"exit {status}, expected one of {sorted(case.exits)}:\n{output[-2000:]}"
    if case.must_say:
        assert case.must_say.lower() in output.lower(), output[-2000:]
    if case.must_not_say:
        assert case.must_not_say not in output, output[-2000:]
