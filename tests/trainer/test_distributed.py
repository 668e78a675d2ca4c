"""DDP through the real torchrun on the CPU (gloo): 2 processes == 1 process, same effective batch.

Both ways of starting them: an external `torchrun ... -m dino_guard train`,
and `dino-guard train` on a `devices: 2` setup, which starts the two
processes itself (torch.distributed.run).

The 2-process run also accumulates 2 micro-batches (no_sync on the first),
so DDP, accumulation and the all-reduced DINO center are checked together.
"""

import sys

import pytest
import torch

from tests.trainer.helpers import TINY, merge, metrics, write_yaml

LAUNCHERS = {"torchrun": [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                         "-m", "dino_guard", "train"],
             "dino-guard": [sys.executable, "-m", "dino_guard", "train"]}


@pytest.mark.slow
@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_two_processes_match_one_process(tmp_path, launcher):
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
    p2 = subprocess.run([*LAUNCHERS[launcher], str(two), "--output-dir", "two", *args],
                        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p2.returncode == 0, p2.stdout + p2.stderr
    assert "x 2 process(es)" in p2.stdout
    assert p2.stdout.count("final loss") == 1  # rank 0 reports, once
    assert p2.stderr.count("dino-guard check") + p2.stderr.count("Found ") <= 1  # the findings once, too

    m1, m2 = metrics(tmp_path / "one"), metrics(tmp_path / "two")
    assert len(m1) == len(m2) == 4
    for a, b in zip(m1, m2, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-5) and a["lr"] == b["lr"]
    s1 = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=True)
    s2 = torch.load(tmp_path / "two" / "checkpoints" / "last.pt", weights_only=True)
    for part in ("student", "teacher"):
        for name, value in s1[part].items():
            torch.testing.assert_close(s2[part][name], value, rtol=0, atol=1e-5, msg=f"{part}.{name}")
    torch.testing.assert_close(s2["loss"]["center"], s1["loss"]["center"], rtol=0, atol=1e-6)


def test_more_devices_than_visible_exit_2_naming_both_numbers(tmp_path):
    import os

    from tests.trainer.helpers import cli

    many = (os.cpu_count() or 1) + 1
    setup = write_yaml(tmp_path / "s.dino.yaml", merge(TINY, {"train": {"devices": many}}))
    p = cli(["train", str(setup), "--device", "cpu", "--max-steps", "1"], tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"train.devices is {many} but only {many - 1} CPU cores are visible" in p.stderr
    assert "Traceback" not in p.stderr


def test_multi_node_needs_the_rendezvous_endpoint():
    from dino_guard.trainer.launch import LaunchError, Nodes, launcher_args
    from tests.trainer.helpers import tiny_setup

    setup = tiny_setup(train={"devices": 2, "num_nodes": 2})
    with pytest.raises(LaunchError, match="--rdzv-endpoint"):
        launcher_args(setup, Nodes(), [])
    with pytest.raises(LaunchError, match="--nnodes 3 but the setup says train.num_nodes: 2"):
        launcher_args(setup, Nodes(nnodes=3, rdzv_endpoint="h:1"), [])
    args = launcher_args(setup, Nodes(2, 1, "node0:29500"), ["s.yaml", "--device", "cuda"])
    assert args == ["--nproc-per-node", "2", "--nnodes", "2", "--node-rank", "1", "--rdzv-endpoint", "node0:29500",
                    "--module", "dino_guard", "train", "s.yaml", "--device", "cuda"]


@pytest.mark.slow
def test_a_workers_exit_status_is_the_launchers(tmp_path):
    """devices: 2 on a one-image folder: the workers refuse the data (exit 2), and so does `dino-guard train`."""
    from PIL import Image

    from tests.trainer.helpers import cli

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "imgs" / "x.png")
    data = {"path": "imgs", "synthetic": None, "num_workers": 0}
    setup = write_yaml(tmp_path / "s.dino.yaml", merge(TINY, {"data": data, "train": {"devices": 2}}))
    p = cli(["train", str(setup), "--device", "cpu", "--output-dir", "out"], tmp_path)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "but the data has only 1 training image(s)" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.slow
def test_dinov2_trains_in_two_processes(tmp_path):
    """devices: 2 with method: dinov2 (DDP through the student's one forward; masks differ per rank)."""
    import os
    import subprocess

    from tests.trainer.helpers import DINOV2

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    two = write_yaml(tmp_path / "two.dino.yaml", merge(merge(TINY, DINOV2), {"train": {"batch_size": 4, "devices": 2}}))
    p = subprocess.run([*LAUNCHERS["dino-guard"], str(two), "--output-dir", "two", "--max-steps", "3",
                        "--device", "cpu"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = metrics(tmp_path / "two")
    assert len(rows) == 3 and all({"dino", "ibot", "koleo"} <= set(r) for r in rows)
