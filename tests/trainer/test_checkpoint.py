"""Checkpoints: atomic, weights_only, and a resume that continues exactly."""

import os
import signal
import time

import pytest
import torch

from dino_guard.trainer import checkpoint
from tests.trainer.helpers import TINY, cli, merge, metrics, write_yaml

STEPS = 9


def _setup_file(tmp_path, **train):
    return write_yaml(tmp_path / "tiny.dino.yaml", merge(TINY, {"train": {"checkpoint_every_steps": 2, **train}}))


def _wait_for_step(out, step, proc, limit=120):
    t0 = time.time()
    while time.time() - t0 < limit:
        path = out / "metrics.jsonl"
        if path.exists() and len(path.read_text().splitlines()) >= step:
            return
        assert proc.poll() is None, proc.stdout.read()
        time.sleep(0.05)
    raise AssertionError("run did not reach the step")


@pytest.mark.slow
def test_sigkill_then_resume_equals_uninterrupted(tmp_path):
    setup = _setup_file(tmp_path)
    full = cli(["train", str(setup), "--max-steps", str(STEPS), "--output-dir", "full", "--device", "cpu"], tmp_path)
    assert full.returncode == 0, full.stdout + full.stderr

    proc = cli(["train", str(setup), "--max-steps", str(STEPS), "--output-dir", "killed", "--device", "cpu"], tmp_path,
               popen=True)
    _wait_for_step(tmp_path / "killed", 5, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(metrics(tmp_path / "killed")) < STEPS
    resumed = cli(["train", str(setup), "--max-steps", str(STEPS), "--output-dir", "killed", "--device", "cpu",
                   "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed from" in resumed.stdout

    assert metrics(tmp_path / "killed") == metrics(tmp_path / "full")
    a = checkpoint.load(tmp_path / "full" / "checkpoints" / "last.pt")
    b = checkpoint.load(tmp_path / "killed" / "checkpoints" / "last.pt")
    for part in ("student", "teacher", "loss"):
        for name, value in a[part].items():
            assert torch.equal(value, b[part][name]), f"{part}.{name}"


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly(tmp_path):
    setup = _setup_file(tmp_path, checkpoint_every_steps=0, epochs=50)
    proc = cli(["train", str(setup), "--output-dir", "run", "--device", "cpu"], tmp_path, popen=True)
    _wait_for_step(tmp_path / "run", 3, proc)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 143, out
    assert "Traceback" not in out and "continue with --resume" in out
    state = checkpoint.load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert state["step"] == len(metrics(tmp_path / "run"))


@pytest.mark.slow
def test_sigterm_to_the_process_group_with_dataloader_workers_saves_and_exits_143(tmp_path):
    """`timeout 20 dino-guard train ...` signals the whole process group, the DataLoader's workers too.

    A worker killed by it used to surface as `RuntimeError: DataLoader worker (pid N) is killed by
    signal: Terminated` (a traceback, exit 1) before the trainer's own handler had saved.
    """
    import re
    import subprocess
    import sys

    setup = write_yaml(tmp_path / "tiny.dino.yaml", merge(TINY, {"data": {"num_workers": 2},
                                                                "train": {"checkpoint_every_steps": 0, "epochs": 50}}))
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.Popen([sys.executable, "-m", "dino_guard", "train", setup.name, "--output-dir", "run",
                             "--device", "cpu"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # a group of its own, as timeout
    try:
        _wait_for_step(tmp_path / "run", 1, proc)
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, out + err
    assert "Traceback" not in out + err and "killed by signal" not in out + err, err
    said = re.search(r"SIGTERM: (\S+) holds step (\d+); continue with --resume", out)
    assert said, out
    state = checkpoint.load(tmp_path / said[1])
    assert state["step"] == int(said[2]) >= 1


def test_checkpoint_holds_everything_and_loads_weights_only(tmp_path):
    from tests.trainer.helpers import run, tiny_setup

    run(tiny_setup(train={"checkpoint_every_steps": 2}), tmp_path, max_steps=2)
    state = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)
    assert {"student", "teacher", "optimizer", "scaler", "loss", "monitor", "rng", "step", "setup"} <= set(state)
    assert state["step"] == 2 and "center" in state["loss"]
    assert state["setup"]["model"]["backbone"]["name"] == "test_vit"
    assert not list((tmp_path / "checkpoints").glob(".*tmp"))  # no temporary file left behind


def test_atomic_save_keeps_old_file_when_writing_fails(tmp_path, monkeypatch, state):
    path = tmp_path / "last.pt"
    checkpoint.save_atomic(state(step=1), path)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        checkpoint.save_atomic(state(step=2), path)
    assert checkpoint.load(path)["step"] == 1
    assert os.listdir(tmp_path) == ["last.pt"]
