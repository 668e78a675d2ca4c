"""DDP through the real torchrun on the CPU (gloo): 2 processes == 1 process, same effective batch.

The 2-process run also accumulates 2 micro-batches (no_sync on the first),
so DDP, accumulation and the all-reduced DINO center are checked together.
"""

import sys

import pytest
import torch

from tests.trainer.conftest import TINY, merge, metrics, write_yaml


@pytest.mark.slow
def test_torchrun_two_processes_match_one_process(tmp_path):
    import os
    import subprocess

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    one = write_yaml(tmp_path / "one.dino.yaml", merge(TINY, {"train": {"batch_size": 8, "devices": 1}}))
    two = write_yaml(tmp_path / "two.dino.yaml",
                     merge(TINY, {"train": {"batch_size": 2, "accumulate_grad_batches": 2, "devices": 2}}))
    args = ["--max-steps", "4", "--device", "cpu"]
    p1 = subprocess.run([sys.executable, "-m", "dino_guard", "train", str(one), "--output-dir", "one", *args],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p1.returncode == 0, p1.stdout + p1.stderr
    p2 = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                         "-m", "dino_guard", "train", str(two), "--output-dir", "two", *args],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p2.returncode == 0, p2.stdout + p2.stderr
    assert "x 2 process(es)" in p2.stdout

    m1, m2 = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert len(m1) == len(m2) == 4
    for a, b in zip(m1, m2):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5) and a["lr"] == b["lr"]
    s1 = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=True)
    s2 = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)
    for part in ("student", "teacher"):
        for name, value in s1[part].items():
            torch.testing.assert_close(s2[part][name], value, rtol=0, atol=1e-5, msg=f"{part}.{name}")
    torch.testing.assert_close(s2["loss"]["center"], s1["loss"]["center"], rtol=0, atol=1e-6)
