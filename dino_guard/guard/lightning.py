"""DinoGuardCallback: the runtime guard for Lightning Trainers.

    trainer = pl.Trainer(max_epochs=10, callbacks=[DinoGuardCallback(gpu="A100-80GB")])

It finds the lightly DINOLoss, the DINOProjectionHeads and their backbones
inside the LightningModule by type, runs the pre-flight (preflight.py) with
the trainer's real dataloader, precision, optimizer and accumulation before
the first step, then watches every optimizer step with the trainer's Monitor
(guard.Watch). A stop sets `trainer.should_stop` on every rank at the same
step (the numbers are averaged over the ranks), prints the finding as
`dino-guard check` prints it and keeps it in `callback.finding`.

With `knn_loader` (labelled images) it also measures the kNN top-1 of the
teacher backbone before step one (or takes `knn_baseline`) and every
`knn_every_n_steps` optimizer steps, and stops the run with DG513 when it stays
below that start (guard/knn_check.py): the do-no-harm check of warm starts.

The class derives from the Callback of `lightning` and of `pytorch_lightning`
(whichever are installed), so one callback works with both Trainers.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from dino_guard.findings import Finding
from dino_guard.guard.preflight import Located, RunFacts, find_parts, live_finding, preflight
from dino_guard.guard.watch import Watch, first_error, monitor_config, show
from dino_guard.trainer.monitor import Monitor

INSTALL_HINT = "pip install 'dino-guard[lightning]'"
PRECISIONS = {"bf16": "bf16", "16": "fp16"}  # Trainer precision prefix -> the estimator's name; the rest fp32
OPTIMIZERS = {"AdamW": "adamw", "Adam": "adam", "SGD": "sgd"}


def _callback_bases() -> tuple:
    bases = []
    for package in ("lightning.pytorch", "pytorch_lightning"):
        try:
            bases.append(importlib.import_module(package).Callback)
        except ImportError:
            continue
    if not bases:
        raise ImportError(f"dino_guard.lightning needs lightning or pytorch_lightning: {INSTALL_HINT}")
    return tuple(bases)


def find_criterion(pl_module) -> Located | None:
    from lightly.loss import DINOLoss

    return next((Located(f"model.{path}" if path else "model", m) for path, m in pl_module.named_modules()
                 if isinstance(m, DINOLoss)), None)


def run_facts(trainer, gpu: str | None) -> RunFacts:
    precision = str(trainer.precision)
    optimizer = type(trainer.optimizers[0]).__name__ if trainer.optimizers else "AdamW"
    return RunFacts(gpu=gpu, precision=next((v for k, v in PRECISIONS.items() if precision.startswith(k)), "fp32"),
                    optimizer=OPTIMIZERS.get(optimizer, "adamw"),
                    accumulate_grad_batches=trainer.accumulate_grad_batches, world_size=trainer.world_size)


class DinoGuardCallback(*_callback_bases()):
    """Pre-flight before the first step, the DG5xx monitor on every optimizer step."""

    def __init__(self, gpu: str | None = None, output_dir=None, monitor=None, knn_loader=None,
                 knn_baseline: float | None = None, knn_every_n_steps: int = 50,
                 knn_backbone: str = "teacher_backbone"):
        """knn_loader: labelled (images, labels, ...) batches for the do-no-harm check; knn_baseline: the
        start's kNN top-1 in percent (None: measured before step one); knn_backbone: the attribute of the
        LightningModule that holds the backbone to evaluate."""
        from dino_guard.guard.knn_check import KnnCheck

        self.gpu, self.output_dir = gpu, Path(output_dir) if output_dir is not None else None
        self.monitor_config = monitor_config(monitor)
        self.knn_backbone = knn_backbone
        self.knn = (KnnCheck(knn_loader, knn_every_n_steps, knn_baseline, self.monitor_config)
                    if knn_loader is not None else None)
        self.preflight_findings: list[Finding] = []
        self.finding: Finding | None = None  # the finding that stopped the run
        self.stopped_at: int | None = None  # trainer.global_step when it stopped
        self._watch: Watch | None = None

    # ------------------------------------------------------------ Lightning hooks

    def on_train_start(self, trainer, pl_module) -> None:
        """The pre-flight: here the trainer's dataloader and optimizers exist and no step has run."""
        criterion = find_criterion(pl_module)
        if criterion is None:
            raise TypeError(f"DinoGuardCallback found no lightly DINOLoss in {type(pl_module).__name__}: "
                            "keep the loss as an attribute of the LightningModule (self.criterion = DINOLoss(...))")
        facts = run_facts(trainer, self.gpu)
        self.preflight_findings = preflight(find_parts(criterion, {"model": pl_module}), trainer.train_dataloader, facts)
        show(self.preflight_findings)
        error = first_error(self.preflight_findings)
        if error is not None:
            self._stop(trainer, error)
            return
        if self.knn is not None:
            self.knn.start(self._knn_module(pl_module), pl_module.device)
        monitor = Monitor(self.monitor_config, int(criterion.module.center.shape[-1]), facts.precision)
        self._watch = Watch(criterion, monitor, per_call=False, output_dir=self.output_dir, raise_on_stop=False)
        self._watch.lr_source = lambda: _peak_lr(trainer)
        self._watch.on_row = lambda row: _log(trainer, row)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self._watch is not None and self.finding is None:
            self._watch.end_step()
            self._after_record(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """kNN every knn_every_n_steps optimizer steps; DG513 stops a run that stays below its start."""
        if self.knn is None or self.finding is not None or not self.knn.due(trainer.global_step):
            return
        top1, harm = self.knn.step(trainer.global_step, self._knn_module(pl_module), pl_module.device)
        if top1 is not None:
            _log(trainer, {"step": trainer.global_step, "knn_top1": top1})
        if harm is not None:
            finding = live_finding(harm.code, f"model.{self.knn_backbone}", "knn_baseline", harm.message,
                                   "lower the lr, train the heads first on a frozen backbone, or raise the teacher "
                                   "momentum; keep the checkpoint of the best step")
            show([finding])
            self._stop(trainer, finding)

    def _knn_module(self, pl_module):
        module = getattr(pl_module, self.knn_backbone, None)
        if module is None:
            raise TypeError(f"DinoGuardCallback(knn_loader=...): {type(pl_module).__name__} has no attribute "
                            f"{self.knn_backbone!r}; pass knn_backbone='the attribute holding the teacher backbone'")
        return module

    def on_train_end(self, trainer, pl_module) -> None:
        if self._watch is None:
            return
        if self.finding is None:
            self._watch.flush()
            self._after_record(trainer)
            if self.finding is None:
                self._watch.close_outputs()
        self._watch.remove()

    # ------------------------------------------------------------ helpers

    @property
    def findings(self) -> list[Finding]:
        """Pre-flight findings, then the monitor's, in the order they were made."""
        return [*self.preflight_findings, *(self._watch.findings if self._watch else [])]

    def _after_record(self, trainer) -> None:
        if self._watch.stopped is not None:
            self._stop(trainer, self._watch.stopped)

    def _stop(self, trainer, finding: Finding) -> None:
        self.finding, self.stopped_at = finding, trainer.global_step
        trainer.should_stop = True


def _peak_lr(trainer) -> float | None:
    if not trainer.optimizers:
        return None
    return max(group["lr"] for group in trainer.optimizers[0].param_groups)


def _log(trainer, row: dict) -> None:
    """The monitor's numbers to the trainer's loggers, at the step they belong to."""
    if not trainer.is_global_zero:
        return
    metrics = {f"dino_guard/{k}": v for k, v in row.items() if k != "step"}
    for logger in trainer.loggers:
        logger.log_metrics(metrics, step=row["step"])
