"""DinoGuardCallback with real Lightning Trainers (lightning and pytorch_lightning) on
lightly's Lightning DINO example (tests/guard/example.py), on the CPU."""

from __future__ import annotations

import importlib
import json

import pytest
import torch

from dino_guard.lightning import DinoGuardCallback
from tests.guard import example as ex

PACKAGES = ("lightning.pytorch", "pytorch_lightning")


def fit(package: str = "lightning.pytorch", loader=None, epochs: int = 2, gpu=None, trainer_kwargs=None, **module):
    """(callback, trainer) after trainer.fit of the example with one thing changed."""
    pl = importlib.import_module(package)
    torch.manual_seed(0)
    callback = DinoGuardCallback(gpu=gpu, monitor=ex.MONITOR)
    options = dict(max_epochs=epochs, accelerator="cpu", devices=1, callbacks=[callback], logger=False,
                   enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer = pl.Trainer(**{**options, **(trainer_kwargs or {})})
    trainer.fit(ex.lightning_module(package)(**module), loader if loader is not None else ex.dataloader(n=48))
    return callback, trainer


@pytest.mark.parametrize("package", PACKAGES)
def test_clean_run_has_no_finding(package):
    callback, trainer = fit(package)
    assert trainer.global_step == 12 and callback.finding is None and callback.findings == []
    assert callback._watch.step == 12 and len(callback._watch.monitor.losses) == 12  # the last step at on_train_end


@pytest.mark.parametrize("package", PACKAGES)
def test_absurd_lr_stops_with_dg501(package):
    callback, trainer = fit(package, lr=1e6)
    stop = callback.finding
    assert stop.code == "DG501" and stop.path == "model.criterion"
    nan_step = len(callback._watch.monitor.losses) + 1  # the monitor keeps only finite losses
    assert f"step {nan_step}: loss nan" in stop.message and "peak lr used 1e+06" in stop.help
    assert trainer.global_step == nan_step + 1  # read one step late, then should_stop


@pytest.mark.slow
def test_teacher_temp_of_0_5_stops_with_uniform_collapse_dg502():
    callback, trainer = fit(epochs=8, teacher_temp=0.5)
    assert callback.finding is not None and callback.finding.code == "DG502", callback.findings
    assert trainer.global_step < 48


def test_head_for_2048_behind_a_384_wide_backbone_stops_before_any_step_dg201():
    callback, trainer = fit(backbone_name="vit_small_patch16_224", input_dim=384, head_input_dim=2048)
    assert callback.finding.code == "DG201" and callback.finding.path == "model.student_head.layers.0"
    assert trainer.global_step == 0


@pytest.mark.parametrize("package", PACKAGES)
def test_dataset_without_the_transform_stops_before_any_step_dg101(package):
    callback, trainer = fit(package, loader=ex.dataloader(with_transform=False))
    assert callback.finding.code == "DG101" and "PIL.Image.Image" in callback.finding.message
    assert trainer.global_step == 0


def test_huge_batch_on_a_t4_stops_before_any_step_dg601():
    callback, trainer = fit(loader=ex.dataloader(batch_size=200_000, n=10**7), gpu="T4")
    assert callback.finding.code == "DG601" and "batch_size=200000" in callback.finding.message
    assert trainer.global_step == 0


def test_a_module_without_a_dinoloss_is_refused_with_what_to_write():
    import lightning.pytorch as pl

    class NoLoss(ex.DINOLightning):
        def __init__(self):
            super().__init__()
            del self.criterion

    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", callbacks=[DinoGuardCallback()], logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(TypeError, match=r"no lightly DINOLoss in NoLoss.*self.criterion = DINOLoss"):
        trainer.fit(NoLoss(), ex.dataloader(n=16))


def test_accumulation_counts_optimizer_steps_not_micro_batches():
    callback, trainer = fit(epochs=1, trainer_kwargs={"accumulate_grad_batches": 2})
    assert trainer.global_step == 3 and callback._watch.step == 3


def test_monitor_numbers_reach_the_trainers_logger():
    from lightning.pytorch.loggers import Logger

    class Recording(Logger):
        name, version = "recording", 0

        def __init__(self):
            super().__init__()
            self.rows = []

        def log_metrics(self, metrics, step=None):
            self.rows.append((step, dict(metrics)))

        def log_hyperparams(self, *args, **kwargs):
            pass

    logger = Recording()
    fit(epochs=1, trainer_kwargs={"logger": logger})
    guard_rows = [(step, m) for step, m in logger.rows if "dino_guard/loss" in m]
    assert [step for step, _ in guard_rows] == list(range(1, 7))
    assert {"dino_guard/teacher_std", "dino_guard/teacher_entropy"} <= set(guard_rows[0][1])


@pytest.mark.slow
def test_ddp_two_cpu_ranks_a_nan_on_one_rank_stops_both(tmp_path):
    # rank 1's outputs turn NaN at its 4th step; the numbers averaged over the ranks stop both at step 5
    import os
    import socket
    import subprocess
    import sys

    from tests.helpers import REPO

    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
               str(REPO / "tests" / "guard" / "ddp_run.py"), str(tmp_path)]
    # its own session: a hang is killed with both ranks, not only torchrun (it would orphan them)
    run = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)
    try:
        _, stderr = run.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, 9)
        run.communicate()
        raise
    assert run.returncode == 0, stderr[-3000:]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert seen[0] == seen[1] == {"global_step": 5, "code": "DG501"}
    assert stderr.count("DG501") == 1  # rank 0 reports, once
