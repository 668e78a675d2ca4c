"""One rank of the DDP test (test_lightning.py), started by torch.distributed.run:
lightly's Lightning example on 2 CPU processes (gloo), rank 1's outputs NaN from
its 4th step on. Each rank builds its own model (a weight-norm head cannot be
pickled to a spawned process) and writes what it saw to OUT/rank{r}.json."""

import sys

import lightning.pytorch as pl
import torch

from dino_guard.lightning import DinoGuardCallback
from tests.guard import example as ex

if __name__ == "__main__":
    torch.manual_seed(0)
    callback = DinoGuardCallback(monitor=ex.MONITOR)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=2, strategy="ddp", callbacks=[callback],
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False)
    module = ex.DINOLightning(nan_rank=1, nan_step=3, report_dir=sys.argv[1])
    trainer.fit(module, ex.dataloader(n=128, shuffle=False))
