"""Rules about the optimizer, its schedules and precision (DG41x)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from dino_guard.findings import Severity
from dino_guard.plan import (
    DINO_MOMENTUM,
    DINO_MOMENTUM_BATCH,
    cosine,
    last_step,
    lr_reference_batch,
    lr_rule,
    scaled_momentum,
)
from dino_guard.rules.registry import Issue, rule

# Base learning rates (per 256 images) DINO recipes use, with a wide margin.
LR_RANGES = {"adamw": (1e-5, 5e-3), "adam": (1e-5, 5e-3), "sgd": (1e-3, 1.0)}
# DG411 speaks when the teacher forgets more than twice as fast (per image) as DINO's 0.996 at batch 1024
# does: 1 - start above MOMENTUM_SLACK x (1 - the EMA-scaled momentum). At batch 256 that is start < 0.998.
MOMENTUM_SLACK = 2.0
SHORT_RUN = 1000  # optimizer steps; below, a fast teacher is what lets it learn at all (DG416)
INIT_LEFT_MAX = 0.10  # share of its random init the EMA teacher may still hold at the end (DG416)


@rule("DG410", "teacher-momentum-invalid", Severity.WARNING, needs=("teacher_momentum",))
def teacher_momentum_invalid(ctx) -> Iterator[Issue]:
    """Teacher EMA momentum outside DINO's range or decreasing (an error when it is 1.0 throughout).

    What it checks:
        `teacher_momentum.start` in [0.9, 1) and start <= end. Graded by the
        numbers: a warning for a low start or a decreasing schedule; an error
        when both start and end are 1.0, since the EMA update
        `teacher = m * teacher + (1 - m) * student` then never changes the
        teacher: it stays at its random initialisation for the whole run and
        the exported (teacher) backbone is untrained, for certain (the same
        fact DG717 reports for a script that never updates the teacher).

    Why it matters:
        the teacher is an exponential moving average of the student; a
        momentum of 1.0 from the start freezes the teacher at its random init,
        a low one makes it a noisy copy of the student (collapse), and a
        schedule that decreases is a swapped pair.

    Example:
        `teacher_momentum: {start: 1.0, end: 0.996}`.

    Use instead:
        `teacher_momentum: {start: 0.996, end: 1.0}`.

    References:
        facebookresearch/dino main_dino.py (`--momentum_teacher`);
        lightly.utils.scheduler.cosine_schedule.
    """
    start, end = ctx.setup.teacher_momentum.start, ctx.setup.teacher_momentum.end
    if start > end:
        yield Issue("teacher_momentum.start", f"teacher momentum decreases from {start} to {end}",
                    f"swap them: start: {end}, end: {start}",
                    fix={"teacher_momentum.start": end, "teacher_momentum.end": start})
    elif start >= 1.0 or (start < 0.9 and not short_run(ctx)):
        frozen = start >= 1.0  # and end >= start: 1.0 throughout, the teacher never moves
        state = ("freezes the teacher at its initialisation" if frozen
                 else "makes the teacher a noisy copy of the student")
        yield Issue("teacher_momentum.start", f"teacher momentum start={start} {state}",
                    f"use start: 0.996 (0.9995 for batches of 256 or less), end: {max(end, 0.996)}",
                    fix={"teacher_momentum.start": 0.996, "teacher_momentum.end": max(end, 0.996)},
                    severity=Severity.ERROR if frozen else None)


@rule("DG411", "momentum-small-batch", Severity.INFO, needs=("teacher_momentum.start", "train"))
def momentum_small_batch(ctx) -> Iterator[Issue]:
    """A small effective batch with the large-batch teacher momentum.

    What it checks:
        `teacher_momentum.start` against DINO's 0.996 (tuned at batch 1024)
        scaled to the effective batch (batch_size x accumulate x devices x
        nodes) by the EMA scaling rule rho' = rho ** (B' / 1024); reported when
        the teacher forgets more than twice as fast as that, in a run long
        enough for the scaled momentum (else DG416 would report the slow
        teacher).

    Why it matters:
        an EMA with momentum rho averages over about B / (1 - rho) images; at a
        smaller batch the same rho forgets in fewer images, and the teacher
        becomes a noisy copy of the student. DINO's authors recommend 0.9995
        at batch 256 for the same reason.

    Example:
        `train: {batch_size: 64}` on one GPU, `teacher_momentum: {start:
        0.996}` (scaled: 0.996 ** (64 / 1024) = 0.9997).

    Use instead:
        `teacher_momentum: {start: 0.9997}`; `dino-guard rescale` applies the
        same rule when it changes the batch.

    References:
        Busbridge et al., "How to Scale Your EMA", NeurIPS 2023; facebookresearch/dino
        main_dino.py (`--momentum_teacher` help); dino_guard/plan.py (scaled_momentum).
    """
    batch, start = ctx.run_plan.effective_batch, ctx.setup.teacher_momentum.start
    target = scaled_momentum(DINO_MOMENTUM, DINO_MOMENTUM_BATCH, batch)
    if 1 - start <= MOMENTUM_SLACK * (1 - target):
        return
    suggested = min(round(target, 4), 0.9999)
    steps = optimizer_steps(ctx)
    if steps is not None and init_share(suggested, ctx.setup.teacher_momentum.end, steps) > INIT_LEFT_MAX:
        return  # too short a run for the scaled momentum (DG416 would fire); the advice is for long runs
    yield Issue("teacher_momentum.start", f"effective batch {batch} with teacher momentum start={start} (DINO's "
                f"{DINO_MOMENTUM} is tuned for batch {DINO_MOMENTUM_BATCH})",
                f"by the EMA scaling rule ({DINO_MOMENTUM} ** ({batch} / {DINO_MOMENTUM_BATCH})) use start: "
                f"{suggested:g} for this batch", fix={"teacher_momentum.start": suggested})


@rule("DG412", "lr-used", Severity.INFO, needs=("optimizer.lr", "train"))
def lr_used(ctx) -> Iterator[Issue]:
    """The learning rate the trainer will actually use.

    What it checks:
        nothing can be wrong here; it shows `optimizer.lr` x effective batch /
        256, DINO's linear scaling rule.

    Why it matters:
        `lr` in the setup is the rate for 256 images, as in main_dino.py; the
        rate at your batch is what the optimizer sees.

    Example:
        `optimizer: {lr: 0.0005}`, `train: {batch_size: 64, devices: 8}` ->
        0.001.

    Use instead:
        nothing; raise or lower `optimizer.lr`, not the scaled value.

    References:
        facebookresearch/dino main_dino.py (`args.lr * batch_size / 256`);
        Goyal et al. 2017.
    """
    plan = ctx.run_plan
    yield Issue("optimizer.lr", f"lr used = {lr_rule(plan.method)} = {plan.lr:.4g} with lr {plan.base_lr:g} "
                f"(effective batch {plan.effective_batch})",
                f"optimizer.lr is the rate for a batch of {lr_reference_batch(plan.method)}; "
                f"the optimizer uses {lr_rule(plan.method)}")


@rule("DG413", "lr-out-of-range", Severity.WARNING, needs=("optimizer",))
def lr_out_of_range(ctx) -> Iterator[Issue]:
    """A base learning rate far outside what DINO recipes use.

    What it checks:
        `optimizer.lr` (per 256 images) within 1e-5..5e-3 for AdamW/Adam and
        1e-3..1.0 for SGD.

    Why it matters:
        DINO uses 5e-4 (AdamW, ViTs) and 0.03-0.3 (SGD/LARS, ResNets); an lr
        100x off either never learns or diverges, often into NaNs after hours.
        A common cause is entering the already-scaled rate.

    Example:
        `optimizer: {name: adamw, lr: 0.1}`.

    Use instead:
        `optimizer: {name: adamw, lr: 0.0005}`.

    References:
        facebookresearch/dino main_dino.py (`--lr`); solo-learn DINO configs.
    """
    opt = ctx.setup.optimizer
    low, high = LR_RANGES[opt.name]
    if not low <= opt.lr <= high:
        yield Issue("optimizer.lr",
                    f"lr={opt.lr:g} for {opt.name} is outside the usual {low:g}..{high:g} (per 256 images)",
                    f"use lr: {0.0005 if opt.name != 'sgd' else 0.03} for {opt.name}",
                    fix={"optimizer.lr": 0.0005 if opt.name != "sgd" else 0.03})


@rule("DG414", "warmup-longer-than-training", Severity.WARNING, needs=("optimizer.warmup_epochs", "train.epochs"))
def warmup_longer_than_training(ctx) -> Iterator[Issue]:
    """The learning-rate warmup lasts the whole run.

    What it checks:
        `optimizer.warmup_epochs` < `train.epochs`.

    Why it matters:
        DINO's default warmup is 10 epochs; in a 10-epoch run the lr only
        rises and the cosine decay never happens.

    Example:
        `train: {epochs: 5}` with the default `warmup_epochs: 10`.

    Use instead:
        `optimizer: {warmup_epochs: 1}` (about a tenth of the run).

    References:
        facebookresearch/dino main_dino.py (`--warmup_epochs`).
    """
    warmup, epochs = ctx.setup.optimizer.warmup_epochs, ctx.setup.train.epochs
    if warmup >= epochs:
        yield Issue("optimizer.warmup_epochs",
                    f"lr warmup of {warmup:g} epochs in a {epochs}-epoch run: the lr never decays",
                    f"use warmup_epochs: {max(epochs / 10, 0.1):g}",
                    fix={"optimizer.warmup_epochs": max(epochs / 10, 0.1)})


@rule("DG415", "fp16-small-patch", Severity.WARNING, needs=("train.precision", "model.backbone"))
def fp16_small_patch(ctx) -> Iterator[Issue]:
    """fp16 with a ViT whose patches are 8 px or smaller.

    What it checks:
        `train.precision: fp16` with patch size below 14 (the /8 models).

    Why it matters:
        small patches mean long token sequences whose attention logits
        overflow fp16's range; DINO's authors report NaNs for ViT-S/8 in fp16
        and train it without. bf16 has fp32's range. DINOv2's /14 models are
        trained in fp16 with a grad scaler, so patch 14 is not reported.

    Example:
        `backbone: {name: vit_small_patch8_224}`, `train: {precision: fp16}`.

    Use instead:
        `train: {precision: bf16}` (Ampere or newer), or fp32.

    References:
        facebookresearch/dino README (ViT-S/8 trained without fp16); issue
        #246 thread.
    """
    patch = ctx.patch_size
    if ctx.setup.train.precision == "fp16" and patch is not None and patch < 14:
        yield Issue("train.precision",
                    f"fp16 with patch size {patch} ({ctx.setup.model.backbone.name}): "
                    "attention logits overflow, NaN risk",
                    "use precision: bf16 (or fp32 on GPUs without bf16)", fix={"train.precision": "bf16"})


def optimizer_steps(ctx) -> int | None:
    """Optimizer steps of the whole run, when the data set's size is known."""
    plan = ctx.run_plan
    if not plan.total_steps:  # unknown, or no whole batch: nothing to judge a teacher by
        return None
    return last_step(plan, ctx.setup.train.max_steps)


def short_run(ctx) -> bool:
    steps = optimizer_steps(ctx)
    return steps is not None and steps < SHORT_RUN


def init_share(start: float, end: float, steps: int) -> float:
    """Share of the random init left in an EMA teacher after `steps` updates on
    lightly's cosine schedule from `start` to `end`: the product of the momenta."""
    if steps <= 0:
        return 1.0
    n = min(steps, 64)  # a long run is sampled evenly (the log-momentum is smooth in i): 0.04% off at a 10% share
    log_share = 0.0
    for i in range(n):
        m = cosine(start, end, i, max(n - 1, 1))
        if m <= 0:
            return 0.0
        log_share += math.log(m)
    return math.exp(log_share * steps / n)


@rule("DG416", "teacher-too-slow-for-run", Severity.WARNING, needs=("teacher_momentum", "train", "data"))
def teacher_too_slow_for_run(ctx) -> Iterator[Issue]:
    """The run is too short for the teacher's momentum: it ends close to its random init.

    What it checks:
        the product of the teacher momenta over the run's optimizer steps
        (data set size, effective batch, epochs; lightly's cosine schedule
        from `teacher_momentum.start` to `end`), which is the share of its
        random initialisation the EMA teacher still holds at the end; more
        than 10% is reported.

    Why it matters:
        DINO evaluates and exports the teacher. Momenta tuned for hundreds of
        epochs (0.996 -> 1.0) average over hundreds of steps; in a run of 150
        steps (0.98 -> 1.0) the teacher still holds 22% of its random init and
        little of the second half of training, and its kNN accuracy fell below
        the random init's (measured: 47.5% -> 38.3%; with 0.85 -> 0.95,
        64.6%).

    Example:
        `teacher_momentum: {start: 0.996, end: 1.0}` for 10 epochs of 1,200
        images at batch 64.

    Use instead:
        `teacher_momentum: {start: 0.9, end: 0.95}` for such a short run, or
        train longer.

    References:
        Caron et al. 2021 (DINO), section 3.1 (momentum encoder);
        bench/train/RESULTS.md.
    """
    steps = optimizer_steps(ctx)
    start, end = ctx.setup.teacher_momentum.start, ctx.setup.teacher_momentum.end
    if not steps or start > end:  # 0 steps: fewer images than one batch, the teacher is not the problem
        return
    share = init_share(start, end, steps)
    if share <= INIT_LEFT_MAX:
        return
    # the momentum whose share after `steps` is about 5%: (1 - m) * steps = 3
    suggested = max(0.5, math.floor((1 - 3 / steps) * 1000) / 1000)
    yield Issue("teacher_momentum.start",
                f"after {steps} optimizer steps the EMA teacher still holds {share:.0%} of its random init "
                f"(momentum {start} -> {end}): the teacher you evaluate and export is mostly untrained",
                f"for a run this short use a faster teacher, e.g. teacher_momentum: {{start: {suggested}, "
                f"end: {suggested}}}, or train for more steps",
                fix={"teacher_momentum.start": suggested, "teacher_momentum.end": suggested})


@rule("DG417", "no-optimizer-step", Severity.WARNING, needs=("train", "data"))
def no_optimizer_step(ctx) -> Iterator[Issue]:
    """The training images do not fill one optimizer step: the run never takes a step.

    What it checks:
        the training images (found under `data.path`, stated in
        `data.dataset_size` or `data.size`, less the kNN hold-out) against the
        effective batch, `batch_size x accumulate_grad_batches x devices x
        num_nodes`.

    Why it matters:
        every epoch drops its incomplete last step, so a run with fewer images
        than one step spends its time loading data, never updates a weight,
        and exports a backbone at its random initialisation. `dino-guard
        train` refuses such a run (exit 2). A warning: the count `check` sees
        (a stated `data.dataset_size`, a folder that may change before the
        run) need not be the trainer's.

    Example:
        `data: {dataset_size: 100}` with `train: {batch_size: 64, devices: 2}`.

    Use instead:
        a per-device batch of at most the images divided by the devices
        (here `batch_size: 50`), or more images.

    References:
        torch.utils.data.DataLoader (`drop_last`); dino_guard/plan.py.
    """
    plan = ctx.run_plan
    if plan.images is None or plan.steps_per_epoch:
        return
    micro_batches = plan.accumulate * plan.processes
    fits = plan.largest_batch_with_a_step
    fix = {"train.batch_size": fits} if fits else None
    help_text = (f"use batch_size: {fits} or less, or train on more images" if fits else
                 f"{plan.train_images} images cannot fill {micro_batches} micro-batches even at batch_size: 1: lower "
                 "accumulate_grad_batches (and devices), or train on more images")
    yield Issue("train.batch_size", f"an optimizer step takes {plan.effective_batch} images (effective batch) but "
                f"the data set has {plan.train_images} training images: not one whole step", help_text, fix)
