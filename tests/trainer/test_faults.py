"""kill -9 at random points and inside the checkpoint write, and a full disk: nothing is lost.

The batteries live in fault_battery.py and run in a process of their own
(it forks one child per run); bench/reliability/RESULTS.md records a larger run.
"""

import json
import subprocess
import sys

import pytest

from tests.trainer.helpers import TINY  # noqa: F401  (skips without torch, lightly, timm)


def _battery(tmp_path, *args) -> dict:
    proc = subprocess.run([sys.executable, "-m", "tests.trainer.fault_battery", str(tmp_path / "runs"), *args],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.slow
def test_twenty_kills_at_random_points_and_inside_the_checkpoint_write_lose_nothing(tmp_path):
    report = _battery(tmp_path, "--kills", "14", "--in-write", "6", "--disk-full", "0", "--damaged", "0", "--torn", "0",
                      "--concurrent", "0", "--seed", "1")
    for name in ("kill -9 at a random time", "kill -9 inside the checkpoint write"):
        assert report[name]["hold"] == report[name]["cases"], json.dumps(report[name]["failures"], indent=1)
    assert report["kill -9 at a random time"]["cases"] + report["kill -9 inside the checkpoint write"]["cases"] == 20


@pytest.mark.slow
def test_a_full_disk_stops_with_a_loadable_checkpoint_and_resumes_exactly(tmp_path):
    report = _battery(tmp_path, "--kills", "0", "--in-write", "0", "--disk-full", "2", "--damaged", "0", "--torn", "0",
                      "--concurrent", "0")
    full = report["disk full (tmpfs)"]
    if full["skipped"]:
        pytest.skip(full["skipped"][0])
    assert full["cases"] == 2 and full["hold"] == 2, json.dumps(full["failures"], indent=1)


@pytest.mark.slow
def test_torn_metrics_and_a_concurrent_second_run_end_like_an_uninterrupted_run(tmp_path):
    """Damaged checkpoints are covered kind by kind in test_checkpoint_verify.py (fast, in-process)."""
    report = _battery(tmp_path, "--kills", "0", "--in-write", "0", "--disk-full", "0", "--damaged", "0", "--torn", "1",
                      "--concurrent", "1")
    for name in ("torn or foreign metrics.jsonl", "a second run into a running run's folder"):
        assert report[name]["cases"] > 0 and report[name]["hold"] == report[name]["cases"], \
            json.dumps(report[name]["failures"], indent=1)
