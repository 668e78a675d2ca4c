"""`dino-guard train` under faults: one line and the documented exit code, never a traceback."""

import os
import signal
import time

import pytest

from dino_guard.trainer.runfolder import claimed
from tests.trainer.helpers import TINY, cli, merge, write_yaml

pytestmark = pytest.mark.slow  # each starts a process that imports torch


def _train(tmp_path, *args, setup=None, **kw):
    path = write_yaml(tmp_path / "s.dino.yaml", setup or TINY)
    return cli(["train", path.name, "--output-dir", "out", "--device", "cpu", "--max-steps", "2", *args], tmp_path, **kw)


def _assert_one_line(proc, code):
    assert proc.returncode == code, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_a_folder_holding_a_run_exits_2_spelling_out_resume_and_overwrite(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "metrics.jsonl").write_text('{"step": 1}\n')
    proc = _train(tmp_path)
    _assert_one_line(proc, 2)
    assert "`dino-guard train s.dino.yaml --output-dir out --resume`" in proc.stderr
    assert "`dino-guard train s.dino.yaml --output-dir out --overwrite`" in proc.stderr


def test_a_second_run_into_a_locked_folder_exits_2_naming_the_first_ones_pid(tmp_path):
    with claimed(tmp_path / "out", False, False, "dino-guard train", lambda s: None):
        proc = _train(tmp_path, "--resume")
    _assert_one_line(proc, 2)
    assert f"in use by another dino-guard train (PID {os.getpid()})" in proc.stderr


def test_a_damaged_checkpoint_exits_2_naming_the_file_and_what_to_do(tmp_path):
    (tmp_path / "out" / "checkpoints").mkdir(parents=True)
    (tmp_path / "out" / "checkpoints" / "last.pt").write_bytes(b"PK\x03\x04 not really a zip")
    proc = _train(tmp_path, "--resume")
    _assert_one_line(proc, 2)
    assert "out/checkpoints/last.pt: not a readable checkpoint" in proc.stderr and "--overwrite" in proc.stderr


def test_lr_1e40_ends_as_dg501_exit_3_saying_exactly_what_was_saved(tmp_path):
    proc = _train(tmp_path, setup=merge(TINY, {"optimizer": {"lr": 1e40}}))
    _assert_one_line(proc, 3)
    assert "DG501" in proc.stderr and "overflows float32" in proc.stderr
    assert "out/checkpoints/last.pt holds the start of the run, before any step" in proc.stderr


def test_ctrl_c_during_start_up_exits_130(tmp_path):
    proc = _train(tmp_path, popen=True)
    t0 = time.time()
    while not (tmp_path / "out" / ".lock").exists():  # the run folder is claimed: start-up is under way
        assert proc.poll() is None and time.time() - t0 < 120, proc.stdout.read()
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130, out
    assert "Traceback" not in out and "interrupted during start-up" in out
