"""Schedules, one value per optimizer step (as facebookresearch/dino's cosine_scheduler).

The curves themselves are the run plan's (dino_guard.plan.cosine, warmup_cosine),
so `check`'s rules and the trainer follow the same schedule.
"""

from __future__ import annotations

from dataclasses import dataclass

from dino_guard.plan import cosine, teacher_momentum, warmup_cosine

__all__ = ["Schedule", "cosine", "warmup_cosine"]


@dataclass(frozen=True)
class Schedule:
    """Everything that changes with the optimizer step."""

    total_steps: int
    steps_per_epoch: int
    lr: float  # peak lr actually used (the run plan's scaled lr)
    min_lr: float
    warmup_steps: int
    weight_decay: float
    weight_decay_end: float
    momentum_start: float
    momentum_end: float
    warmup_teacher_temp: float
    teacher_temp: float
    teacher_temp_warmup_steps: int

    @classmethod
    def from_setup(cls, setup, plan) -> Schedule:
        """The schedules of `setup` over the run `plan` (dino_guard.plan: steps and the lr used)."""
        o, c = setup.optimizer, setup.loss
        steps_per_epoch = plan.steps_per_epoch
        return cls(total_steps=plan.total_steps, steps_per_epoch=steps_per_epoch,
                   lr=plan.lr, min_lr=o.min_lr, warmup_steps=plan.warmup_steps(o.warmup_epochs),
                   weight_decay=o.weight_decay, weight_decay_end=o.weight_decay_end,
                   momentum_start=teacher_momentum(setup)[0], momentum_end=teacher_momentum(setup)[1],
                   warmup_teacher_temp=c.warmup_teacher_temp, teacher_temp=c.teacher_temp,
                   teacher_temp_warmup_steps=c.warmup_teacher_temp_epochs * steps_per_epoch)

    def at(self, step: int) -> dict:
        tt = self.teacher_temp
        if step < self.teacher_temp_warmup_steps:
            tt = (self.warmup_teacher_temp
                  + (self.teacher_temp - self.warmup_teacher_temp) * step / self.teacher_temp_warmup_steps)
        return {
            "lr": warmup_cosine(self.lr, self.min_lr, step, self.total_steps, self.warmup_steps),
            "weight_decay": cosine(self.weight_decay, self.weight_decay_end, step, self.total_steps),
            "teacher_momentum": cosine(self.momentum_start, self.momentum_end, step, self.total_steps),
            "teacher_temp": tt,
            "epoch": step // self.steps_per_epoch,
        }

    def in_teacher_temp_warmup(self, step: int) -> bool:
        return step < self.teacher_temp_warmup_steps and self.warmup_teacher_temp < self.teacher_temp
