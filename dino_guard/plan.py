"""The run plan: what a setup trains, written once for `check` and `train`.

Effective batch, the learning rate the optimizer uses, the kNN hold-out,
steps per epoch, the run's length and the cosine schedules over it all
follow from the setup and the number of images; `check`'s rules (DG411, DG412, DG416, ...) and the trainer
read them from here, so the numbers `check` states are the ones `train` runs.
Stdlib only: the check path stays torch-free.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LR_REFERENCE_BATCH = 256  # DINO: optimizer.lr is the rate for this many images (linear scaling rule)
DINOV2_LR_REFERENCE_BATCH = 1024  # DINOv2: optimizer.lr is the rate for this many images (square-root rule)
DINOV2_LAYER_DECAY = 0.9  # Meta's dinov2 layerwise_decay, the default of optimizer.layer_decay for method: dinov2
DINOV2_PATCH_EMBED_LR_MULT = 0.2  # Meta's dinov2 patch_embed_lr_mult
DINO_MOMENTUM, DINO_MOMENTUM_BATCH = 0.996, 1024  # DINO's teacher momentum and the batch it was tuned at
SYNTHETIC_HOLDOUT = 0.2  # the built-in shapes set holds out a fifth for kNN unless eval says otherwise


def effective_batch(batch_size: int, accumulate: int = 1, processes: int = 1) -> int:
    """Images per optimizer step: the per-process batch x gradient accumulation x processes."""
    return batch_size * accumulate * processes


def lr_used(base_lr: float, effective_batch: int, method: str = "dino") -> float:
    """The lr the optimizer uses for `effective_batch` images per step.

    DINO: the linear rule of main_dino.py, `lr * batch / 256`. DINOv2: the
    square-root rule of Meta's dinov2 (`lr * sqrt(batch / 1024)`).
    """
    if method == "dinov2":
        return base_lr * math.sqrt(effective_batch / DINOV2_LR_REFERENCE_BATCH)
    return base_lr * effective_batch / LR_REFERENCE_BATCH


def lr_reference_batch(method: str = "dino") -> int:
    """The batch `optimizer.lr` is the rate for, under the method's scaling rule."""
    return DINOV2_LR_REFERENCE_BATCH if method == "dinov2" else LR_REFERENCE_BATCH


def lr_rule(method: str = "dino") -> str:
    """The scaling rule in words, for messages."""
    if method == "dinov2":
        return f"lr x sqrt(effective batch / {DINOV2_LR_REFERENCE_BATCH})"
    return f"lr x effective batch / {LR_REFERENCE_BATCH}"


def layer_decay_used(setup) -> float:
    """optimizer.layer_decay, or the method's default (DINOv2 0.9, DINO 1: no decay)."""
    o = setup.optimizer
    if o.layer_decay is not None:
        return o.layer_decay
    return DINOV2_LAYER_DECAY if getattr(setup, "method", "dino") == "dinov2" else 1.0


def patch_embed_lr_mult_used(setup) -> float:
    """optimizer.patch_embed_lr_mult, or the method's default (DINOv2 0.2, DINO 1)."""
    o = setup.optimizer
    if o.patch_embed_lr_mult is not None:
        return o.patch_embed_lr_mult
    return DINOV2_PATCH_EMBED_LR_MULT if getattr(setup, "method", "dino") == "dinov2" else 1.0


def scaled_momentum(momentum: float, from_batch: int, to_batch: int) -> float:
    """The EMA momentum for `to_batch` images per step, given one tuned at `from_batch`: rho ** (to / from).

    The EMA scaling rule of Busbridge et al., "How to Scale Your EMA"
    (NeurIPS 2023): with kappa = B'/B, rho' = rho ** kappa keeps the
    teacher's memory the same number of images long. DG411 and `rescale`
    both use it.
    """
    return momentum ** (to_batch / from_batch)


def setup_processes(setup) -> int:
    """Processes the setup asks for: train.devices per node x train.num_nodes."""
    return setup.train.devices * setup.train.num_nodes


def holdout_fraction(setup, labelled: bool) -> float:
    """Share of the training images held out as kNN queries.

    Only when asked (`eval.holdout_fraction`), on labelled images, with kNN
    on and no separate `eval.path`; the built-in synthetic set keeps its own
    split unless `eval.holdout_fraction` says otherwise.
    """
    e = setup.eval
    if not labelled or not e.knn or e.path:
        return 0.0
    if e.holdout_fraction is not None:
        return e.holdout_fraction
    return SYNTHETIC_HOLDOUT if setup.data.synthetic else 0.0


def held_out_count(images: int, fraction: float) -> int:
    """Images held out of `images` at `fraction`: at least one when any is asked for, never all."""
    if fraction <= 0 or images < 2:
        return 0
    return min(images - 1, max(1, int(images * fraction)))


@dataclass(frozen=True)
class RunPlan:
    """The numbers of one run. Counts are None when the data set's size is unknown (check without data)."""

    batch_size: int  # per process
    accumulate: int
    processes: int  # devices x nodes, or the world torchrun started
    base_lr: float
    epochs: int
    images: int | None  # every image found (or stated)
    held_out: int | None  # of those, kNN queries never trained on
    method: str = "dino"  # the lr scaling rule follows the method

    @property
    def effective_batch(self) -> int:
        return effective_batch(self.batch_size, self.accumulate, self.processes)

    @property
    def lr(self) -> float:
        return lr_used(self.base_lr, self.effective_batch, self.method)

    @property
    def train_images(self) -> int | None:
        return None if self.images is None else self.images - self.held_out

    @property
    def steps_per_epoch(self) -> int | None:
        """Whole optimizer steps per epoch; the incomplete last one is dropped (as the sampler does)."""
        return None if self.images is None else self.train_images // self.effective_batch

    @property
    def largest_batch_with_a_step(self) -> int | None:
        """The per-process batch at which the training images fill one whole optimizer step (0: none does)."""
        return None if self.images is None else self.train_images // (self.accumulate * self.processes)

    @property
    def total_steps(self) -> int | None:
        return None if self.images is None else self.epochs * self.steps_per_epoch

    def warmup_steps(self, warmup_epochs: float) -> int | None:
        return None if self.images is None else int(warmup_epochs * self.steps_per_epoch)


def plan_run(setup, images: int | None = None, labelled: bool = False,
             processes: int | None = None) -> RunPlan:
    """The plan of `setup` over `images` images (`labelled`: class labels exist), in `processes` processes.

    `processes` defaults to the setup's `train.devices x train.num_nodes`; the
    trainer passes the world torchrun actually started.
    """
    t = setup.train
    held = None if images is None else held_out_count(images, holdout_fraction(setup, labelled))
    return RunPlan(batch_size=t.batch_size, accumulate=t.accumulate_grad_batches,
                   processes=processes or setup_processes(setup), base_lr=setup.optimizer.lr * lr_factor(setup),
                   epochs=t.epochs,
                   images=images, held_out=held, method=getattr(setup, "method", "dino"))


# Warm starts (model.init): the defaults and where they come from are in the setup schema's field docs.
WARM_LR_FACTOR = 0.1  # DINO's cosine lr is below 10% of its peak over a run's last fifth (main_dino.py)
WARM_TEACHER_MOMENTUM = 0.999  # DINO's teacher momentum (0.996 -> 1) over a run's last third
WARM_KNN_EVALUATIONS = 10  # kNN evaluations along a warm start (the do-no-harm check compares each to the start)


def warm_start(setup) -> bool:
    return bool(getattr(setup.model, "init", None))


def lr_factor(setup) -> float:
    """What model.init multiplies the lr by (1 for a cold start)."""
    if not warm_start(setup):
        return 1.0
    factor = setup.optimizer.warm_start_lr_factor
    return WARM_LR_FACTOR if factor is None else factor


def teacher_momentum(setup) -> tuple[float, float]:
    """(start, end) of the teacher momentum; a warm start raises both to teacher_momentum.warm_start."""
    m = setup.teacher_momentum
    if not warm_start(setup):
        return m.start, m.end
    floor = WARM_TEACHER_MOMENTUM if m.warm_start is None else m.warm_start
    return max(m.start, floor), max(m.end, floor)


def freeze_backbone_steps(setup, plan: RunPlan) -> int:
    """Steps at the start that train only the heads: the lr warmup for a warm start unless the setup says."""
    steps = setup.train.freeze_backbone_steps
    if steps is not None:
        return steps
    return (plan.warmup_steps(setup.optimizer.warmup_epochs) or 0) if warm_start(setup) else 0


def knn_every_steps(setup, last: int | None) -> int:
    """kNN evaluated every this many optimizer steps (0: not by steps)."""
    every = setup.eval.every_steps
    if every is not None:
        return every
    return max(1, last // WARM_KNN_EVALUATIONS) if warm_start(setup) and last else 0


def last_step(plan: RunPlan, *max_steps: int | None) -> int | None:
    """The step the run ends at: the whole run, or the first `max_steps` given (--max-steps, train.max_steps)."""
    cap = next((m for m in max_steps if m), None)
    if plan.total_steps is None:
        return cap
    return min(plan.total_steps, cap) if cap else plan.total_steps


def cosine(start: float, end: float, step: int, total: int) -> float:
    """Cosine from start (step 0) to end (step total), as facebookresearch/dino's cosine_scheduler
    and lightly's cosine_schedule (whose `max_steps - 1` is `total` here)."""
    if total <= 0:
        return end
    t = min(step, total) / total
    return end + 0.5 * (start - end) * (1 + math.cos(math.pi * t))


def warmup_cosine(peak: float, final: float, step: int, total: int, warmup: int) -> float:
    """Linear warmup from 0 to peak over `warmup` steps, then cosine to final."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return cosine(peak, final, step - warmup, total - warmup)
