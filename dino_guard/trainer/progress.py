"""What the trainer prints: the plan before the first step and a progress bar."""

from __future__ import annotations

import sys

from dino_guard.plan import lr_rule


def plan_text(setup, source, plan, sched, last_step, d, device, knn_sets) -> str:
    """What the run will do, in the numbers `check` states (dino_guard.plan)."""
    t = setup.train
    return "\n".join([
        f"data: {source.description}",
        data_split_line(plan, knn_sets, setup.eval.knn),
        f"device: {device} x {d.world} process(es), precision {t.precision}, compile {t.compile}",
        f"effective batch {plan.effective_batch} = {t.batch_size} per device x {t.accumulate_grad_batches} "
        f"accumulated x {d.world} processes",
        f"lr used {plan.lr:.3g} (= {lr_rule(plan.method)}, lr {plan.base_lr:g}), warmup {sched.warmup_steps} steps",
        f"{plan.steps_per_epoch} steps per epoch, {plan.total_steps} steps in {t.epochs} epochs"
        + (f", stopping after step {last_step}" if last_step < plan.total_steps else ""),
        memory_line(setup),
    ])


def data_split_line(plan, knn_sets, knn_asked: bool = True) -> str:
    """How many images train, how many are held out, and what kNN evaluates on."""
    line = f"training on {plan.train_images} images, {plan.held_out} held out"
    if knn_sets is None and not knn_asked:
        return line + "; kNN evaluation off (eval.knn: false)"
    if knn_sets is None:
        return line + "; kNN evaluation off (give eval.path, a labelled folder, to turn it on)"
    bank, queries = knn_sets
    return line + f"; kNN: {len(queries)} query images against a bank of {len(bank)}"


def memory_line(setup) -> str:
    """The analytic peak-memory estimate of one step (what a GPU run would need)."""
    from dino_guard import backbones
    from dino_guard.memory.analytic import AnalyticUnavailable, estimate
    from dino_guard.memory.spec import spec_from_setup

    info = backbones.lookup(setup.model.backbone.name)
    if info is None:
        return "estimated GPU memory: unknown backbone (see `dino-guard estimate --method traced`)"
    try:
        peak = estimate(spec_from_setup(setup), info).peak_allocated_bytes
    except AnalyticUnavailable as exc:
        return f"estimated GPU memory: not available ({exc})"
    return f"estimated GPU memory of a step: {peak / 2**30:.2f} GiB peak allocated per device (analytic)"


class ProgressBar:
    """tqdm on a TTY (rank 0); otherwise one line per 10% of the run."""

    def __init__(self, total: int, start: int, main: bool):
        self.total, self.main, self.bar = total, main, None
        if main and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
        self.every = max(1, total // 10)

    def update(self, row: dict) -> None:
        text = (f"loss {row['loss']:.4f} lr {row['lr']:.2e} {row['images_per_s']:.0f} img/s "
                f"data-wait {100 * row['data_wait']:.0f}%")
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif self.main and (row["step"] % self.every == 0 or row["step"] == self.total):
            print(f"step {row['step']}/{self.total} epoch {row['epoch']} {text}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
