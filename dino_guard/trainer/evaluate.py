"""kNN measured along the run, the best state kept, and the do-no-harm stop (DG513).

The kNN top-1 of the teacher backbone is measured before step one (the start:
random init, or the weights of `model.init`), then every `eval.every_steps`
optimizer steps and every `eval.knn_every_epochs` epochs. Each measurement goes
on its step's row of metrics.jsonl (loss.png plots the points). The best one's
full training state is kept as checkpoints/best.pt (the start's included, so
best.pt is never worse than the start). For a warm start, kNN more than
`monitor.knn_drop_margin` points below the start, and more than its sampling
error allows, for `monitor.knn_drop_patience` evaluations in a row stops the
run with DG513: the run is destroying the features it was given (dinov2#204:
80% -> 25% -> 10% within 20,000 images).

The sampling error: the queries are the same images at every evaluation, so a
drop is judged as a paired comparison against the start's per-query hits
(McNemar): only the discordant queries, right at the start and wrong now (b)
or wrong then and right now (c), carry it. On 240 queries near 60% one
accuracy alone is +/-3.2 points, larger than the default margin of 2, so
the margin alone stopped unharmed runs by chance.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dino_guard.plan import knn_every_steps, warm_start
from dino_guard.trainer.knn import top1 as accuracy
from dino_guard.trainer.monitor import Event

BEST = "best.pt"
# A drop counts only beyond Z paired standard errors: about a 1-in-40 chance (one-sided) that an unharmed
# evaluation lands there, and `patience` such evaluations in a row are rarer still; a real collapse (60% -> 30%
# on 240 queries: 30 points against an error of about 3.4) is many errors deep, so it is stopped just as soon.
Z = 2.0


def paired_error(start: torch.Tensor, now: torch.Tensor) -> float:
    """Standard error in points of (accuracy at the start - accuracy now) on the same queries, from their hits.

    b = right at the start and wrong now, c = wrong then and right now, n queries:
    SE = 100 * sqrt(b + c - (b - c)**2 / n) / n (the paired difference of proportions).
    """
    n = len(start)
    b = int((start & ~now).sum())
    c = int((~start & now).sum())
    return 100.0 * math.sqrt(max(b + c - (b - c) ** 2 / n, 0.0)) / n


@dataclass
class Evaluations:
    """What the kNN measurements of a run have found so far (saved in each checkpoint)."""

    every_steps: int
    every_epochs: int
    guard: bool  # the do-no-harm check is on (a warm start)
    margin: float
    patience: int
    start: float | None = None
    start_hits: torch.Tensor | None = None  # per query: right at the start (bool); None: unknown, margin alone
    best: float | None = None
    best_step: int | None = None
    below: int = 0  # consecutive evaluations counted as harm

    @classmethod
    def from_setup(cls, setup, last: int | None) -> Evaluations:
        m = setup.monitor
        return cls(knn_every_steps(setup, last), setup.eval.knn_every_epochs,
                   warm_start(setup) and m.enabled, m.knn_drop_margin, m.knn_drop_patience)

    def state_dict(self) -> dict:
        return {"start": self.start, "start_hits": self.start_hits, "best": self.best, "best_step": self.best_step,
                "below": self.below}

    def load_state_dict(self, state: dict) -> None:
        """`start_hits` is missing from checkpoints written before the paired check: then the margin alone."""
        self.start, self.best, self.best_step, self.below = (state["start"], state["best"], state["best_step"],
                                                             state["below"])
        self.start_hits = state.get("start_hits")

    @property
    def paired(self) -> bool:
        """False for a warm start whose start hits are unknown (an older checkpoint, a baseline given as a number)."""
        return self.start_hits is not None

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

    def error(self, hits: torch.Tensor | None) -> float | None:
        """The paired sampling error of the drop from the start, in points; None when the pairs are unknown
        (an unreadable query changes the number of queries: then which query is which is not known)."""
        if not self.paired or hits is None or len(hits) != len(self.start_hits):
            return None
        return paired_error(self.start_hits, hits)

    def against_start(self, top1: float, hits: torch.Tensor | None) -> str:
        """For the log line of a guarded evaluation: how far from the start, and how noisy that is."""
        if not self.guard or self.start is None:
            return ""
        error = self.error(hits)
        return f" ({top1 - self.start:+.1f} points from the start" + (
            f", sampling error {error:.1f})" if error is not None else ")")

    def harm(self, step: int, top1: float, kept: str = "", hits: torch.Tensor | None = None) -> Event | None:
        """DG513 once kNN has stayed below the start by more than the margin and Z paired standard errors
        for `patience` evaluations (`hits`: this evaluation's per-query hits; without them, or without the
        start's, or on another number of queries, the margin alone)."""
        if not self.guard or self.start is None:
            return None
        drop, error = self.start - top1, self.error(hits)
        harmed = drop > self.margin and (error is None or drop > Z * error)
        self.below = self.below + 1 if harmed else 0
        if self.below < self.patience:
            return None
        if error is None:
            noise = f"more than monitor.knn_drop_margin {self.margin:g}; its sampling error unknown"
        else:
            noise = (f"more than monitor.knn_drop_margin {self.margin:g} and {Z:g} times its sampling error "
                     f"{error:.1f} on {len(hits)} queries")
        return Event("DG513", "optimizer.warm_start_lr_factor",
                     f"step {step}: kNN top-1 {top1:.1f}% is {drop:.1f} points below the start's {self.start:.1f}% "
                     f"({noise}) for {self.below} evaluations in a row: the run is "
                     f"destroying the features it started from; stopped; the best state measured is step "
                     f"{self.best_step}'s (kNN {self.best:.1f}%){kept}",
                     "lower the lr (optimizer.warm_start_lr_factor, optimizer.lr), train the heads longer first "
                     "(train.freeze_backbone_steps) or slow the teacher (teacher_momentum.warm_start); "
                     "`dino-guard export RUN_DIR` exports best.pt", stop=True)


def measure_start(run) -> None:
    """The kNN before step one: the baseline, and the first best (`keep_start` writes best.pt)."""
    bank, queries = run.knn_sets
    hits = run.knn_hits()
    if hits is None:
        return
    run.knn_init = accuracy(hits)
    ev = run.evals
    ev.start, ev.start_hits = run.knn_init, hits
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
    hits = run.knn_hits()
    top1 = None if hits is None else accuracy(hits)
    run.history[-1]["knn_top1"] = top1
    if top1 is None:
        return None
    run.log(f"step {run.step} (epoch {run.step // run.steps_per_epoch}): kNN top-1 {top1:.1f}%"
            + run.evals.against_start(top1, hits))
    if run.evals.record(run.step, top1):
        save(run, best_path(run))
    return run.evals.harm(run.step, top1, f", kept in {best_path(run)}", hits)


def best_path(run):
    return run.out / "checkpoints" / BEST
