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
    args = ["train", path.name, "--output-dir", "out", "--device", "cpu", "--max-steps", "2", *args]
    return cli(args, tmp_path, **kw)


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
    # not "move it away": --resume without last.pt used to start over silently (now refused)
    assert "rename checkpoints/epoch_NNNN.pt to last.pt" in proc.stderr and "move it away" not in proc.stderr


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


def test_sigterm_to_the_process_group_during_start_up_exits_143_with_one_line(tmp_path):
    """`timeout` firing while the models are built or kNN is measured at init (DataLoader workers): it used to
    end the process silently by the signal's default action, the plan it had printed lost with it."""
    import subprocess
    import sys

    path = write_yaml(tmp_path / "s.dino.yaml", merge(TINY, {"data": {"num_workers": 2}}))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "dino_guard", "train", path.name, "--output-dir", "out",
                             "--device", "cpu"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        t0 = time.time()
        while not (tmp_path / "out" / ".lock").exists():  # the run folder is claimed: start-up is under way
            assert proc.poll() is None and time.time() - t0 < 120, proc.stdout.read()
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, out
    assert "Traceback" not in out and "terminated (SIGTERM) during start-up; no training step was taken" in out, out


# -------------------------------------------------------------------- devices: 2 and multi-node options (issue 24)

TWO = merge(TINY, {"train": {"devices": 2, "batch_size": 4, "epochs": 400, "checkpoint_every_steps": 5}})


@pytest.mark.parametrize("signum, whom, code, loader_workers", [
    (signal.SIGTERM, "launcher", 143, 0), (signal.SIGINT, "group", 130, 0),
    (signal.SIGTERM, "group", 143, 2)])  # `timeout`: each rank's DataLoader workers get it too
def test_a_signal_to_a_two_process_run_exits_like_one_process_after_the_workers_save(tmp_path, signum, whom, code,
                                                                                     loader_workers):
    """SIGTERM to the launcher (a scheduler), SIGINT to the whole process group (Ctrl-C in a terminal),
    SIGTERM to the whole group (coreutils timeout) with DataLoader worker processes under each rank."""
    import subprocess
    import sys

    from dino_guard.trainer import checkpoint

    path = write_yaml(tmp_path / "s.dino.yaml", merge(TWO, {"data": {"num_workers": loader_workers}}))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "dino_guard", "train", path.name, "--output-dir", "out",
                             "--device", "cpu"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        metrics_file, t0 = tmp_path / "out" / "metrics.jsonl", time.time()
        while not (metrics_file.exists() and metrics_file.read_text().count("\n") >= 2):  # steps are being taken
            assert proc.poll() is None and time.time() - t0 < 180, proc.stdout.read()
            time.sleep(0.05)
        if whom == "group":
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        out = proc.communicate(timeout=120)[0]
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, out
    assert "Traceback" not in out, out
    state = checkpoint.load(tmp_path / "out" / "checkpoints" / "last.pt")
    assert f"{signal.Signals(signum).name}: out/checkpoints/last.pt holds step {state['step']}" in out, out


@pytest.mark.parametrize("args, says", [
    (["--nnodes", "2", "--node-rank", "7", "--rdzv-endpoint", "localhost:29500"], "node ranks are 0..1"),
    (["--nnodes", "2", "--rdzv-endpoint", "host:99999"], "--rdzv-endpoint host:99999: The port number")])
def test_impossible_multi_node_options_are_a_usage_error_not_a_hang_or_traceback(tmp_path, args, says):
    path = write_yaml(tmp_path / "s.dino.yaml", merge(TINY, {"train": {"num_nodes": 2}}))
    proc = cli(["train", path.name, "--output-dir", "out", "--device", "cpu", *args], tmp_path, timeout=120)
    _assert_one_line(proc, 2)
    assert says in proc.stderr and proc.stderr.count("dino-guard train: error") == 1
