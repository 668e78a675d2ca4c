"""kNN measured along the run, the best state kept, and the do-no-harm stop (DG513).

The kNN top-1 of the teacher backbone is measured before step one (the start:
random init, or the weights of `model.init`), then every `eval.every_steps`
optimizer steps and every `eval.knn_every_epochs` epochs. Each measurement goes
on its step's row of metrics.jsonl (loss.png plots the points). The best one's
full training state is kept as checkpoints/best.pt (the start's included, so
best.pt is never worse than the start). For a warm start, kNN more than
`monitor.knn_drop_margin` points below the start for `monitor.knn_drop_patience`
evaluations in a row stops the run with DG513: the run is destroying the
features it was given (dinov2#204: 80% -> 25% -> 10% within 20,000 images).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dino_guard.plan import knn_every_steps, warm_start
from dino_guard.trainer.monitor import Event

BEST = "best.pt"


@dataclass
class Evaluations:
    """What the kNN measurements of a run have found so far (saved in each checkpoint)."""

    every_steps: int
    every_epochs: int
    guard: bool  # the do-no-harm check is on (a warm start)
    margin: float
    patience: int
    start: float | None = None
    best: float | None = None
    best_step: int | None = None
    below: int = 0  # consecutive evaluations below start - margin

    @classmethod
    def from_setup(cls, setup, last: int | None) -> Evaluations:
        m = setup.monitor
        return cls(knn_every_steps(setup, last), setup.eval.knn_every_epochs,
                   warm_start(setup) and m.enabled, m.knn_drop_margin, m.knn_drop_patience)

    def state_dict(self) -> dict:
        return {"start": self.start, "best": self.best, "best_step": self.best_step, "below": self.below}

    def load_state_dict(self, state: dict) -> None:
        self.start, self.best, self.best_step, self.below = (state["start"], state["best"], state["best_step"],
                                                             state["below"])

    def due(self, step: int, steps_per_epoch: int) -> bool:
        by_steps = bool(self.every_steps and step % self.every_steps == 0)
        by_epochs = bool(self.every_epochs and step % steps_per_epoch == 0
                         and (step // steps_per_epoch) % self.every_epochs == 0)
        return by_steps or by_epochs

    def record(self, step: int, top1: float) -> bool:
        """Note one measurement; True when it is the best so far (best.pt should be written)."""
        if self.best is None or top1 > self.best:
            self.best, self.best_step = top1, step
            return True
        return False

    def harm(self, step: int, top1: float, kept: str = "") -> Event | None:
        """DG513 once kNN has stayed more than the margin below the start for `patience` evaluations."""
        if not self.guard or self.start is None:
            return None
        drop = self.start - top1
        self.below = self.below + 1 if drop > self.margin else 0
        if self.below < self.patience:
            return None
        return Event("DG513", "optimizer.warm_start_lr_factor",
                     f"step {step}: kNN top-1 {top1:.1f}% is {drop:.1f} points below the start's {self.start:.1f}% "
                     f"(monitor.knn_drop_margin {self.margin:g}) for {self.below} evaluations in a row: the run is "
                     f"destroying the features it started from; stopped; the best state measured is step "
                     f"{self.best_step}'s (kNN {self.best:.1f}%){kept}",
                     "lower the lr (optimizer.warm_start_lr_factor, optimizer.lr), train the heads longer first "
                     "(train.freeze_backbone_steps) or slow the teacher (teacher_momentum.warm_start); "
                     "`dino-guard export RUN_DIR` exports best.pt", stop=True)


def measure_start(run) -> None:
    """The kNN before step one: the baseline, and the first best (`keep_start` writes best.pt)."""
    bank, queries = run.knn_sets
    run.knn_init = run.knn()
    if run.knn_init is None:
        return
    ev = run.evals
    ev.start = run.knn_init
    what = f"the weights of model.init ({run.setup.model.init})" if warm_start(run.setup) else "random init"
    run.log(f"kNN top-1 of the backbone at {what}: {run.knn_init:.1f}% "
            f"({len(queries)} held-out images, {len(bank)} in the bank)")
    ev.record(0, run.knn_init)


def keep_start(run, save: Callable) -> None:
    """best.pt of the start, written after last.pt (a kill between them leaves last.pt, never best.pt alone)."""
    if run.evals.best_step == 0:
        save(run, best_path(run))


def after_step(run, save: Callable) -> Event | None:
    """Measure kNN at this step (it is due); keep the best state; the do-no-harm check."""
    top1 = run.knn()
    run.history[-1]["knn_top1"] = top1
    if top1 is None:
        return None
    run.log(f"step {run.step} (epoch {run.step // run.steps_per_epoch}): kNN top-1 {top1:.1f}%")
    if run.evals.record(run.step, top1):
        save(run, best_path(run))
    return run.evals.harm(run.step, top1, f", kept in {best_path(run)}")


def best_path(run):
    return run.out / "checkpoints" / BEST
