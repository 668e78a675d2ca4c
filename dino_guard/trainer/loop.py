"""The DINO training loop, read top to bottom like nanoGPT's train.py.

`train(setup, ...)` builds everything from the setup, optionally resumes,
then runs optimizer steps of `accumulate_grad_batches` micro-batches each:

    views -> teacher(global crops) under no_grad
          -> student(global crops, local crops): one forward each
          -> DINOLoss (center update deferred to the optimizer step)
          -> backward (loss / k; DDP no_sync on the non-final micro-steps)
    clip, cancel last-layer grads, optimizer step, one center update, EMA
    metrics.jsonl, loss-trend checks (DG5xx), checkpoints
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from dino_guard.trainer import checkpoint, distributed
from dino_guard.trainer.augment import PrefetchViews
from dino_guard.trainer.build import build_loss, build_models, build_optimizer
from dino_guard.trainer.data import DataError, EpochSampler, ImageDataset, build_pipeline, eval_transform, find_source, split_indices
from dino_guard.trainer.knn import evaluate, load_images
from dino_guard.trainer.monitor import Event, Monitor
from dino_guard.trainer.plot import plot_loss
from dino_guard.trainer.schedules import Schedule

TIMING_KEYS = ("images_per_s", "data_wait", "time")  # metrics that differ between identical runs
EXIT_STOPPED = 3
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Result:
    exit_code: int
    summary: dict
    events: list = field(default_factory=list)


@dataclass
class Options:
    output_dir: Path
    max_steps: Optional[int] = None
    resume: bool = False
    device: str = "auto"
    log: Callable[[str], None] = print
    on_event: Callable[[Event], None] = lambda e: None
    step_hook: Optional[Callable] = None  # (step, student) after each backward; tests inject NaNs with it


def pick_device(name: str, d: distributed.Dist, workers: int) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", d.local_rank)
    if d.enabled and "OMP_NUM_THREADS" not in os.environ:  # processes on one CPU share its cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // d.world))
    return torch.device("cpu")


class StopFlag:
    """SIGINT / SIGTERM set a flag; the loop saves a checkpoint and exits cleanly."""

    def __init__(self):
        self.signum = None
        self._old = {}

    def __enter__(self):
        for s in SIGNAL_EXIT:
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)


def make_loader(dataset, sampler, setup, collate, device) -> torch.utils.data.DataLoader:
    workers = setup.data.num_workers
    return torch.utils.data.DataLoader(
        dataset, batch_size=setup.train.batch_size, sampler=sampler, collate_fn=collate, num_workers=workers,
        pin_memory=device.type == "cuda", drop_last=True, persistent_workers=False,
        prefetch_factor=4 if workers else None,
        generator=torch.Generator())  # own generator: the global RNG stays untouched (exact resume)


@torch.no_grad()
def teacher_stats(teacher_out: torch.Tensor, center: torch.Tensor, temp: float) -> tuple[float, float]:
    """Collapse signals: std of l2-normalized outputs, mean entropy of the teacher's distribution."""
    from lightly.utils.debug import std_of_l2_normalized

    p = F.softmax((teacher_out - center.reshape(1, -1)) / temp, dim=-1)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(-1).mean()
    return std_of_l2_normalized(teacher_out).item(), entropy.item()


def train(setup, opts: Options) -> Result:
    # ---------------------------------------------------------------- processes and device
    d = distributed.init(opts.device)
    device = pick_device(opts.device, d, setup.data.num_workers)
    t = setup.train
    if d.enabled and d.world != t.devices * t.num_nodes and d.main:
        opts.log(f"note: torchrun started {d.world} processes, the setup says train.devices x num_nodes = "
                 f"{t.devices * t.num_nodes}; the effective batch and lr use {d.world}")
    torch.manual_seed(t.seed)
    log = opts.log if d.main else (lambda s: None)
    out = opts.output_dir
    if d.main:
        (out / "checkpoints").mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- data
    source = find_source(setup.data)
    train_idx, query_idx = split_indices(source, setup.eval.holdout_fraction)
    pipeline = build_pipeline(setup)
    dataset = ImageDataset(source, train_idx, pipeline.transform, t.seed)
    k = t.accumulate_grad_batches
    micro_per_epoch = EpochSampler(len(train_idx), t.batch_size, t.seed, 0, d.rank, d.world).batches_per_epoch()
    steps_per_epoch = micro_per_epoch // k
    if steps_per_epoch == 0:
        raise DataError(f"train.batch_size {t.batch_size} x accumulate_grad_batches {k} x {d.world} processes is "
                         f"more than the {len(train_idx)} training images; lower the batch size")
    effective_batch = t.batch_size * k * d.world
    sched = Schedule.from_setup(setup, steps_per_epoch, effective_batch)
    last_step = min(sched.total_steps, opts.max_steps or t.max_steps or sched.total_steps)

    # ---------------------------------------------------------------- models, loss, optimizer
    student, teacher = build_models(setup)
    student.to(device)
    teacher.to(device)
    if device.type == "cuda" and not is_vit_like(setup):
        student.to(memory_format=torch.channels_last)
        teacher.to(memory_format=torch.channels_last)
    loss_fn = build_loss(setup).to(device)
    optimizer = build_optimizer(setup, student, device)
    precision = t.precision
    amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    model = torch.nn.parallel.DistributedDataParallel(student, device_ids=[device.index] if device.type == "cuda" else None) if d.enabled else student
    run_student, run_teacher = model, teacher
    if t.compile:
        from torch import _dynamo

        _dynamo.config.suppress_errors = True  # a region that cannot compile runs eagerly
        try:
            run_student, run_teacher = torch.compile(model), torch.compile(teacher)
        except Exception as exc:  # e.g. no compiler support on this platform
            log(f"note: torch.compile unavailable ({type(exc).__name__}: {exc}); training eagerly")
    monitor = Monitor(setup.monitor, setup.loss_output_dim, precision, sched.lr)

    # ---------------------------------------------------------------- kNN sets, random-init baseline
    knn_sets = None
    if source.labels is not None and query_idx:
        tf = eval_transform(setup.transform.global_crop_size)
        knn_sets = (load_images(source, train_idx, tf), load_images(source, query_idx, tf))
    knn = lambda backbone: evaluate(backbone, *knn_sets, device, setup.eval.knn_k, setup.eval.knn_temperature)  # noqa: E731

    # ---------------------------------------------------------------- resume
    step, history, knn_init = 0, [], None
    ckpt_path = out / "checkpoints" / "last.pt"
    if opts.resume and ckpt_path.exists():
        try:
            state = checkpoint.load(ckpt_path)
            student.load_state_dict(state["student"])
            teacher.load_state_dict(state["teacher"])
            optimizer.load_state_dict(state["optimizer"])
            scaler.load_state_dict(state["scaler"])
            loss_fn.load_state_dict(state["loss"])
            monitor.load_state_dict(state["monitor"])
            checkpoint.set_rng_state(state["rng"])
            step, knn_init = state["step"], state["knn_top1_init"]
        except (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as exc:
            # a truncated file, or one written for another model: say so instead of a traceback
            raise DataError(f"--resume: {ckpt_path} cannot be resumed with this setup "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                            "resume with the setup that wrote it, or use another train.output_dir") from None
        history = read_metrics(out / "metrics.jsonl", upto=step)
        log(f"resumed from {ckpt_path} at step {step} (epoch {step // steps_per_epoch})")
    elif opts.resume:
        log(f"--resume: no checkpoint at {ckpt_path}; starting from scratch")
    if knn_init is None and knn_sets:
        knn_init = knn(teacher.backbone)
        log(f"kNN top-1 of the backbone at random init: {knn_init:.1f}% "
            f"({len(knn_sets[1][1])} held-out images, {len(knn_sets[0][1])} in the bank)")
    if d.main:
        write_metrics(out / "metrics.jsonl", history)

    def save(path: Path = ckpt_path) -> None:
        if d.main:
            checkpoint.save_atomic({
                "student": student.state_dict(), "teacher": teacher.state_dict(),
                "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "loss": loss_fn.state_dict(),
                "monitor": monitor.state_dict(), "rng": checkpoint.rng_state(), "step": step,
                "epoch": step // steps_per_epoch, "micro_batches_done": (step % steps_per_epoch) * k,
                "knn_top1_init": knn_init, "setup": setup.model_dump(mode="json"),
                "world_size": d.world}, path)

    log(plan_text(setup, source, effective_batch, sched, last_step, d, device))
    stopped_by, events, exit_code = None, [], 0
    bad_files, reported_bad = 0, False
    bar = progress_bar(last_step, step, d)
    stop = StopFlag()

    # ---------------------------------------------------------------- the loop
    with stop:
        while step < last_step:
            epoch = step // steps_per_epoch
            sampler = EpochSampler(len(train_idx), t.batch_size, t.seed, epoch, d.rank, d.world,
                                   start_batch=(step % steps_per_epoch) * k)
            # Views are made one batch ahead (on CUDA on a side stream, overlapping the step).
            batches = PrefetchViews(make_loader(dataset, sampler, setup, pipeline.collate, device), pipeline.views, device)
            while step < last_step and step // steps_per_epoch == epoch:
                t0 = time.perf_counter()
                s = sched.at(step)
                for i, group in enumerate(optimizer.param_groups):
                    group["lr"] = s["lr"]
                    if i == 0:
                        group["weight_decay"] = s["weight_decay"]

                # ---- k micro-batches: forward, loss, backward
                loss_sum, wait, stats = 0.0, 0.0, None
                for micro in range(k):
                    tw = time.perf_counter()
                    batch, (global_crops, local_crops) = next(batches)
                    wait += time.perf_counter() - tw
                    if batch["bad"]:
                        bad_files += len(batch["bad"])
                        if not reported_bad:
                            log(f"warning: skipped unreadable image {batch['bad'][0]} (replaced by the next image; "
                                "further ones are counted in summary.json)")
                            reported_bad = True
                    sync = contextlib.nullcontext() if (micro == k - 1 or not d.enabled) else model.no_sync()
                    with sync:
                        loss, teacher_view0 = forward_loss(run_student, run_teacher, loss_fn, global_crops, local_crops,
                                                           s["teacher_temp"], amp_dtype)
                        scaler.scale(loss / k).backward()
                    loss_sum += loss.detach()
                    if stats is None:
                        stats = teacher_stats(teacher_view0, loss_fn.center, s["teacher_temp"])
                    if opts.step_hook:
                        opts.step_hook(step, student)

                # ---- optimizer step, one center update, EMA
                grad_norm = optimizer_step(student, teacher, optimizer, scaler, loss_fn, t_clip(setup),
                                           s["epoch"], s["teacher_momentum"])
                step += 1

                # ---- metrics, loss-trend checks
                loss_value = distributed.mean((loss_sum / k).item(), d, device)
                stats = [distributed.mean(x, d, device) for x in stats]  # every rank decides alike
                dt = time.perf_counter() - t0
                row = {"step": step, "epoch": s["epoch"], "loss": loss_value, "lr": s["lr"],
                       "weight_decay": s["weight_decay"], "teacher_momentum": s["teacher_momentum"],
                       "teacher_temp": s["teacher_temp"], "grad_norm": grad_norm, "teacher_std": stats[0],
                       "teacher_entropy": stats[1], "images_per_s": effective_batch / dt,
                       "data_wait": wait / dt, "time": time.time()}
                history.append(row)
                if d.main:
                    append_metric(out / "metrics.jsonl", row)
                bar.update(row)
                step_events = monitor.observe(step, loss_value, grad_norm, stats[0], stats[1],
                                              sched.in_teacher_temp_warmup(step), step > sched.warmup_steps)
                for e in step_events:
                    events.append(e)
                    if d.main:
                        opts.on_event(e)
                stopping = next((e for e in step_events if e.stop), None)
                if stopping:
                    stopped_by, exit_code = stopping.code, EXIT_STOPPED
                    break

                # ---- checkpoints, signals
                epoch_end = step % steps_per_epoch == 0
                if epoch_end or step == last_step or (t.checkpoint_every_steps and step % t.checkpoint_every_steps == 0):
                    save()
                if epoch_end and t.checkpoint_every_epochs and (step // steps_per_epoch) % t.checkpoint_every_epochs == 0:
                    save(out / "checkpoints" / f"epoch_{step // steps_per_epoch:04d}.pt")
                if epoch_end and knn_sets and setup.eval.knn_every_epochs and (step // steps_per_epoch) % setup.eval.knn_every_epochs == 0:
                    history[-1]["knn_top1"] = knn(teacher.backbone)
                    log(f"epoch {step // steps_per_epoch}: kNN top-1 {history[-1]['knn_top1']:.1f}%")
                if distributed.any_true(stop.signum is not None, d, device):
                    save()
                    signame = signal.Signals(stop.signum or signal.SIGTERM).name
                    stopped_by, exit_code = signame, SIGNAL_EXIT.get(stop.signum, 143)
                    log(f"\n{signame}: saved {ckpt_path} at step {step}; continue with --resume")
                    break
            if stopped_by:
                break
    bar.close()

    # ---------------------------------------------------------------- evaluation and summary
    knn_final = knn(teacher.backbone) if knn_sets and not (stopped_by or "").startswith("DG") else None
    summary = summarize(history, step, knn_final, knn_init, stopped_by, bad_files, source, effective_batch)
    if d.main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        (out / "setup.resolved.json").write_text(json.dumps(setup.model_dump(mode="json"), indent=2) + "\n")
        if history:
            plot_loss([r["step"] for r in history], [r["loss"] for r in history], setup.loss_output_dim,
                      out / "loss.png", f"{setup.model.backbone.name}, effective batch {effective_batch}")
    distributed.finish(d)
    return Result(exit_code, summary, events)


def forward_loss(run_student, run_teacher, loss_fn, global_crops, local_crops, teacher_temp: float, amp_dtype):
    """One micro-batch: the teacher on the global crops (no_grad), the student on the
    global crops and the local crops (one forward each), the DINO loss in fp32."""
    n_global = 2
    with torch.autocast(global_crops.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        with torch.no_grad():
            t_out, _ = run_teacher(global_crops)
        s_global, s_local = run_student(global_crops, local_crops)
    teacher_out = list(t_out.float().chunk(n_global))
    student_out = list(s_global.float().chunk(n_global))
    if s_local is not None:
        student_out += list(s_local.float().chunk(len(s_local) // len(teacher_out[0])))
    return loss_fn(teacher_out, student_out, teacher_temp=teacher_temp), teacher_out[0]


def optimizer_step(student, teacher, optimizer, scaler, loss_fn, clip: float, epoch: int, momentum: float) -> float:
    """Clip, cancel last-layer grads (freeze_last_layer), step, one center update, EMA."""
    from lightly.models.utils import update_momentum

    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(student.parameters(), clip).item()
    student.head.cancel_last_layer_gradients(epoch)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    loss_fn.step_center()
    with torch.no_grad():
        update_momentum(student, teacher, momentum)
    return grad_norm


def is_vit_like(setup) -> bool:
    """Patch-based backbones (ViT, DeiT, Swin, ...) gain nothing from channels_last."""
    from dino_guard import backbones

    info = backbones.lookup(setup.model.backbone.name)
    return bool(setup.model.backbone.patch_size or (info.is_vit_like if info else "vit" in setup.model.backbone.name))


def t_clip(setup) -> float:
    return setup.optimizer.clip_grad if setup.optimizer.clip_grad else math.inf


def summarize(history, step, knn_final, knn_init, stopped_by, bad_files, source, effective_batch) -> dict:
    return {"final_loss": history[-1]["loss"] if history else None, "steps": step,
            "images_per_s": throughput(history, effective_batch),
            "knn_top1": knn_final, "knn_top1_init": knn_init, "stopped_by": stopped_by,
            "skipped_files": bad_files, "ignored_non_image_files": source.ignored}


def throughput(history, effective_batch) -> "float | None":
    """Images per second over the wall clock from the end of the first step to the last.

    Not the median step: DataLoader workers deliver in bursts (all finish a
    batch at once, then the device waits seconds), so the median step can show
    no data wait at all while the run as a whole is data-bound (measured on an
    H100: a median of 1,618 images/s for a run that made 385).
    """
    if len(history) < 2:
        return history[0]["images_per_s"] if history else None
    window = history[-1]["time"] - history[0]["time"]
    return (len(history) - 1) * effective_batch / window if window > 0 else None


# -------------------------------------------------------------------- metrics.jsonl


def read_metrics(path: Path, upto: int) -> list:
    """Rows up to `upto` (a resume drops the steps after its checkpoint)."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["step"] <= upto]


def write_metrics(path: Path, rows: list) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def append_metric(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


# -------------------------------------------------------------------- printing


def plan_text(setup, source, effective_batch, sched, last_step, d, device) -> str:
    t = setup.train
    return "\n".join([
        f"data: {source.description}",
        f"device: {device} x {d.world} process(es), precision {t.precision}, compile {t.compile}",
        f"effective batch {effective_batch} = {t.batch_size} per device x {t.accumulate_grad_batches} accumulated "
        f"x {d.world} processes",
        f"lr used {sched.lr:.3g} (= {setup.optimizer.lr:g} x {effective_batch} / 256), warmup {sched.warmup_steps} steps",
        f"{sched.steps_per_epoch} steps per epoch, {sched.total_steps} steps in {t.epochs} epochs"
        + (f", stopping after step {last_step}" if last_step < sched.total_steps else ""),
        memory_line(setup),
    ])


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


class progress_bar:
    """tqdm on a TTY (rank 0); otherwise one line per 10% of the run."""

    def __init__(self, total: int, start: int, d: distributed.Dist):
        self.total, self.d, self.tty = total, d, sys.stderr.isatty()
        self.bar = None
        if d.main and self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=start, unit="step", dynamic_ncols=True)
        self.every = max(1, total // 10)

    def update(self, row: dict) -> None:
        text = (f"loss {row['loss']:.4f} lr {row['lr']:.2e} {row['images_per_s']:.0f} img/s "
                f"data-wait {100 * row['data_wait']:.0f}%")
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif self.d.main and (row["step"] % self.every == 0 or row["step"] == self.total):
            print(f"step {row['step']}/{self.total} epoch {row['epoch']} {text}", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
