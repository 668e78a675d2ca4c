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

import torch

from dino_guard.findings import Finding
from dino_guard.guard.preflight import Located, RunFacts, find_parts, live_finding, preflight
from dino_guard.guard.watch import Watch, first_error, guard_monitor, monitor_config, show

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


def find_criterion(pl_module, kind=None) -> Located | None:
    """The first module of type `kind` (default lightly's DINOLoss) in the LightningModule."""
    if kind is None:
        from lightly.loss import DINOLoss as kind
    return next((Located(f"model.{path}" if path else "model", m) for path, m in pl_module.named_modules()
                 if isinstance(m, kind)), None)


def find_terms(pl_module) -> dict:
    """DINOv2's other losses, found by type: {"iBOT": IBOTPatchLoss, "KoLeo": KoLeoLoss} (those present)."""
    from lightly.loss import IBOTPatchLoss, KoLeoLoss

    found = {"iBOT": find_criterion(pl_module, IBOTPatchLoss), "KoLeo": find_criterion(pl_module, KoLeoLoss)}
    return {name: located for name, located in found.items() if located is not None}


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
        self._updates: MicroBatchUpdates | None = None

    # ------------------------------------------------------------ Lightning hooks

    def on_train_start(self, trainer, pl_module) -> None:
        """The pre-flight: here the trainer's dataloader and optimizers exist and no step has run."""
        criterion = find_criterion(pl_module)
        if criterion is None:
            raise TypeError(f"DinoGuardCallback found no lightly DINOLoss in {type(pl_module).__name__}: "
                            "keep the loss as an attribute of the LightningModule (self.criterion = DINOLoss(...))")
        facts = run_facts(trainer, self.gpu)
        terms = find_terms(pl_module)
        parts = find_parts(criterion, {"model": pl_module}, terms)
        self.preflight_findings = preflight(parts, trainer.train_dataloader, facts)
        show(self.preflight_findings)
        error = first_error(self.preflight_findings)
        if error is not None:
            self._stop(trainer, error)
            return
        if self.knn is not None:
            self.knn.start(self._knn_module(pl_module), pl_module.device)
        monitor = guard_monitor(self.monitor_config, criterion.module, terms, facts.precision)
        self._watch = Watch(criterion, monitor, per_call=False, output_dir=self.output_dir, raise_on_stop=False,
                            terms=terms)
        self._updates = MicroBatchUpdates(self._watch, parts, trainer.accumulate_grad_batches)
        self._watch.lr_source = lambda: _peak_lr(trainer)
        self._watch.on_row = lambda row: _log(trainer, row)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if self._watch is not None and self.finding is None:
            self._watch.end_step()
            self._after_record(trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """DG508 (EMA or centre moved per micro-batch) in the first steps; then the warm start's kNN check."""
        if self._updates is not None and self._updates.watching:
            found = self._updates.micro_batch_end(batch_idx)
            if found is not None:
                self._watch.findings.append(found)
                show([found])
        self._knn_check(trainer, pl_module)

    def _knn_check(self, trainer, pl_module) -> None:
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


class MicroBatchUpdates:
    """DG508: the EMA or a loss centre moving more than once per optimizer step.

    With accumulate_grad_batches k > 1, Lightning runs training_step and
    on_train_batch_end once per micro-batch: an update_momentum or a lightly
    loss (its centre moves on every call) there moves k times per optimizer
    step, k times faster than the schedule says. For the first CHECKED_STEPS
    optimizer steps this counts, per micro-batch, whether the teacher's smallest
    parameter and the DINO centre moved; then it reports the most moves of one
    step and stops looking (no cost after). The first step cannot show the EMA:
    student and teacher are equal until the optimizer has stepped once.
    """

    CHECKED_STEPS = 3

    def __init__(self, watch: Watch, parts, accumulate: int):
        self.watch, self.k = watch, accumulate
        teacher = [m.module for m in (parts.teacher_head, parts.teacher_backbone) if m is not None]
        params = [p for m in teacher for p in m.parameters()]
        self.probe = min(params, key=lambda p: p.numel()) if params else None
        self.teacher_path = parts.teacher_head.path if parts.teacher_head else "teacher"
        self.watching = accumulate > 1
        self.watch.count_center = self.watching
        self._last = self._snapshot()
        self._ema_moves, self._most = 0, {"ema": 0, "centre": 0}

    def _snapshot(self):
        return None if self.probe is None else self.probe.detach().clone()

    def micro_batch_end(self, batch_idx: int):
        """Count this micro-batch's moves; at the step's last micro-batch, the finding (or None)."""
        if self.probe is not None:
            now = self.probe.detach()
            self._ema_moves += int(not torch.equal(now, self._last))
            self._last = now.clone()
        if batch_idx % self.k != self.k - 1:
            return None
        self._most["ema"] = max(self._most["ema"], self._ema_moves)
        self._most["centre"] = max(self._most["centre"], self.watch.center_moves)
        self._ema_moves = self.watch.center_moves = 0
        if batch_idx // self.k + 1 < self.CHECKED_STEPS:
            return None
        self.watching = self.watch.count_center = False
        ema, centre = self._most["ema"], self._most["centre"]
        moved = [f"the teacher EMA (update_momentum) {ema} times"] if ema > 1 else []
        moved += [f"the DINO loss centre {centre} times"] if centre > 1 else []
        if not moved:
            return None
        return live_finding("DG508", self.teacher_path if ema > 1 else self.watch.criterion.path,
                            "train.accumulate_grad_batches",
                            f"{' and '.join(moved)} in one optimizer step of accumulate_grad_batches={self.k}: "
                            f"they move once per micro-batch, {self.k}x faster than their schedules",
                            "update the EMA once per optimizer step (in on_before_optimizer_step or when "
                            "(batch_idx + 1) % accumulate_grad_batches == 0), and accumulate the teacher outputs "
                            "to update the centre once per step (dino-guard train does both)")
