"""The DINO training loop, read top to bottom like nanoGPT's train.py.

`train(setup, ...)` builds everything from the setup (`prepare`), optionally
resumes, then runs optimizer steps of `accumulate_grad_batches` micro-batches:

    views -> teacher(global crops) under no_grad
          -> student(global crops, local crops): one forward each
          -> DINOLoss (center update deferred to the optimizer step)
          -> backward (loss / k; DDP no_sync on the non-final micro-steps)
    clip, cancel last-layer grads, optimizer step, one center update, EMA
    metrics.jsonl, loss-trend checks (DG5xx), checkpoints

The device never waits for the host: a step's numbers (loss, gradient norm,
teacher statistics) stay on the device and are read one step later, after
the next step has been queued (`launch_step` / `record_step`). Reading them
at once would stall the GPU for the host's whole per-step work (measured on
an H100: 1,344 images/s per step against 1,702 for the step alone).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dino_guard.plan import RunPlan, freeze_backbone_steps, last_step, plan_run, setup_processes
from dino_guard.trainer import checkpoint, dinov2_step, distributed, evaluate, init_weights, runfolder, setupdiff
from dino_guard.trainer.dataset import EpochSampler, ImageDataset, find_source, split_indices
from dino_guard.trainer.export import write_backbone
from dino_guard.trainer.images import DataError
from dino_guard.trainer.knn import eval_sets, top1
from dino_guard.trainer.knn import evaluate as knn_hits
from dino_guard.trainer.late import LateStep, OneStepLate, to_host_later
from dino_guard.trainer.metrics import append_metric, kept, read_metrics, summarize, write_metrics
from dino_guard.trainer.monitor import Event, Monitor
from dino_guard.trainer.pipeline import PrefetchViews, build_pipeline
from dino_guard.trainer.plot import plot_run
from dino_guard.trainer.progress import ProgressBar, plan_text
from dino_guard.trainer.recipe import build_criterion, build_models, build_optimizer
from dino_guard.trainer.schedules import Schedule
from dino_guard.trainer.teacher_stats import teacher_stats
from dino_guard.trainer.workers import start_workers, stop_signal, worker_init

EXIT_STOPPED = 3
SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass
class Result:
    exit_code: int
    summary: dict
    events: list = field(default_factory=list)
    checkpoint_step: int | None = None  # the step checkpoints/last.pt holds (None: no checkpoint)


@dataclass
class Options:
    output_dir: Path
    max_steps: int | None = None
    resume: bool = False
    overwrite: bool = False  # delete the previous run's outputs in output_dir first
    command: str = "dino-guard train SETUP"  # how the user started it, for messages that spell out the next one
    device: str = "auto"
    log: Callable[[str], None] = print
    on_event: Callable[[Event], None] = lambda e: None
    step_hook: Callable | None = None  # (step, student) after each backward; tests inject NaNs with it


def pick_device(name: str, d: distributed.Dist) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        return torch.device("cuda", d.local_rank)
    if d.enabled and "OMP_NUM_THREADS" not in os.environ:  # processes on one CPU share its cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // d.world))
    return torch.device("cpu")


class Terminated(BaseException):
    """SIGTERM during start-up, raised as Ctrl-C raises KeyboardInterrupt: there is no step to save yet."""


class StopFlag:
    """SIGINT / SIGTERM: during start-up they stop at once; once steps run, they set a flag and the
    loop saves a checkpoint and exits cleanly."""

    def __init__(self):
        self.signum = None
        self.starting = True
        self._old = {}

    def __enter__(self):
        for s in SIGNAL_EXIT:
            self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.starting:  # `timeout` may fire while the models are built or kNN measured at init
            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated
        self.signum = signum

    def release(self) -> None:
        """The handlers from before; after the steps a signal ends the process at once, as before them."""
        for s, h in self._old.items():
            signal.signal(s, h)
        self._old = {}

    def __exit__(self, *exc):
        self.release()


@dataclass
class Run:
    """Everything one training run holds; built by `prepare`, advanced by the loop."""

    setup: object
    opts: Options
    d: distributed.Dist
    device: torch.device
    source: object
    plan: RunPlan  # effective batch, lr used, steps: the numbers `check` states
    dataset: ImageDataset  # the training images (its indices)
    pipeline: object
    sched: Schedule
    last_step: int
    student: torch.nn.Module
    teacher: torch.nn.Module
    model: torch.nn.Module  # the student, wrapped in DDP when distributed
    run_student: Callable
    run_teacher: Callable
    loss_fn: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    amp_dtype: torch.dtype | None
    monitor: Monitor
    knn_sets: tuple | None
    evals: evaluate.Evaluations  # kNN along the run, the best state, the do-no-harm check
    freeze_steps: int = 0  # steps at the start that train only the heads (warm starts)
    step: int = 0
    history: list = field(default_factory=list)
    knn_init: float | None = None
    events: list = field(default_factory=list)
    bad_files: int = 0
    stopped_by: str | None = None
    exit_code: int = 0
    saved_step: int | None = None  # the step checkpoints/last.pt holds
    mid_step: bool = False  # stopped part way through a step: the weights in memory are not a whole step's

    @property
    def steps_per_epoch(self) -> int:
        return self.plan.steps_per_epoch

    @property
    def effective_batch(self) -> int:
        return self.plan.effective_batch

    @property
    def out(self) -> Path:
        return self.opts.output_dir

    @property
    def ckpt_path(self) -> Path:
        return self.out / "checkpoints" / "last.pt"

    def log(self, text: str) -> None:
        if self.d.main:
            self.opts.log(text)

    def knn_hits(self) -> torch.Tensor | None:
        """Per-query kNN hits of the teacher backbone (None: nothing readable)."""
        e = self.setup.eval
        return knn_hits(self.teacher.backbone, *self.knn_sets, self.device, e.knn_k, e.knn_temperature,
                        self.setup.data.num_workers)

    def knn(self) -> float | None:
        hits = self.knn_hits()
        return None if hits is None else top1(hits)


def train(setup, opts: Options) -> Result:
    main = int(os.environ.get("RANK", "0")) == 0  # known before the process group exists
    with StopFlag() as stop, runfolder.claimed(opts.output_dir, opts.resume, opts.overwrite, opts.command, opts.log,
                                               main):
        run = prepare(setup, opts)
        start(run)
        stop.starting = False  # from here a signal sets the flag: the loop saves, then stops
        bar = ProgressBar(run.last_step, run.step, run.d.main)
        steps_until_stopped(run, stop, bar)
        bar.close()
        stop.release()
        return finish(run)


def steps_until_stopped(run: Run, stop: StopFlag, bar: ProgressBar) -> None:
    """run_steps; DataLoader workers lost to the stop signal (`timeout` signals the whole group) are that stop."""
    try:
        run_steps(run, stop, bar)
    except RuntimeError as exc:  # PyTorch's "DataLoader worker (pid N) is killed by signal: Terminated"
        signum = stop_signal(exc, stop.signum)
        if signum is None:
            raise
        stop_mid_step(run, signum)


# -------------------------------------------------------------------- building


def prepare(setup, opts: Options) -> Run:
    """Processes, device, data, models, loss, optimizer and kNN sets, from the setup."""
    d = distributed.init(opts.device)
    device = pick_device(opts.device, d)
    t = setup.train
    if d.enabled and d.world != setup_processes(setup) and d.main:
        opts.log(f"note: torchrun started {d.world} processes, the setup says train.devices x num_nodes = "
                 f"{setup_processes(setup)}; the effective batch and lr use {d.world}")
    torch.manual_seed(t.seed)
    random.seed(t.seed + d.rank)  # DINOv2's block masks (lightly's random_block_mask uses Python's random), per rank

    source = find_source(setup.data)
    plan = plan_for(setup, source, d)
    train_idx, query_idx = split_indices(source, plan.held_out)
    pipeline = build_pipeline(setup)
    dataset = ImageDataset(source, train_idx, pipeline.transform, t.seed)
    dataset[(0, 0)]  # one sample here: data no image of which reads is one DataError, not a worker's traceback
    sched = Schedule.from_setup(setup, plan)
    # its weights replace model.init's
    resuming = opts.resume and (opts.output_dir / "checkpoints" / "last.pt").exists()
    student, teacher, model, run_student, run_teacher = prepare_models(setup, device, d, opts.log, not resuming)
    last = last_step(plan, opts.max_steps, t.max_steps)
    return Run(setup=setup, opts=opts, d=d, device=device, source=source, plan=plan,
               dataset=dataset, pipeline=pipeline, evals=evaluate.Evaluations.from_setup(setup, last),
               freeze_steps=freeze_backbone_steps(setup, plan), sched=sched, last_step=last,
               student=student, teacher=teacher, model=model, run_student=run_student, run_teacher=run_teacher,
               loss_fn=build_criterion(setup).to(device), optimizer=build_optimizer(setup, student, device),
               scaler=torch.amp.GradScaler(device.type, enabled=t.precision == "fp16"),
               amp_dtype={"bf16": torch.bfloat16, "fp16": torch.float16}.get(t.precision),
               monitor=make_monitor(setup, sched),
               knn_sets=eval_sets(setup, source, train_idx, query_idx))


def make_monitor(setup, sched: Schedule) -> Monitor:
    """The loss-trend checks; for DINOv2 with a second one watching the iBOT head for collapse."""
    monitor = Monitor(setup.monitor, setup.loss_output_dim, setup.train.precision, sched.lr)
    if setup.method == "dinov2":
        monitor.patch = Monitor(setup.monitor, dinov2_step.ibot_output_dim(setup), setup.train.precision, sched.lr,
                                head="iBOT")
    return monitor


def plan_for(setup, source, d: distributed.Dist) -> RunPlan:
    """The run plan over the images found, in the processes started; refuses a run without one whole step."""
    plan = plan_run(setup, len(source.items), source.labels is not None, processes=d.world)
    if plan.steps_per_epoch == 0:
        t = setup.train
        fits = plan.largest_batch_with_a_step
        fix = f"lower train.batch_size to {fits}" if fits else "add images or use fewer processes"
        raise DataError(f"train.batch_size {t.batch_size} x accumulate_grad_batches {t.accumulate_grad_batches} x "
                        f"{d.world} process(es) = {plan.effective_batch} images per step, but the data has only "
                        f"{plan.train_images} training image(s) ({source.description}); {fix}")
    return plan


def prepare_models(setup, device: torch.device, d: distributed.Dist, log: Callable, warm: bool = True):
    """Student and teacher (from model.init when `warm`) on the device; DDP and torch.compile wrappers when asked."""
    student, teacher = build_models(setup)
    if warm:  # model.init: a warm start
        init_weights.apply(setup, student, teacher, log if d.main else lambda text: None)
    student.to(device)
    teacher.to(device)
    if device.type == "cuda" and not is_vit_like(setup):
        student.to(memory_format=torch.channels_last)
        teacher.to(memory_format=torch.channels_last)
    device_ids = [device.index] if device.type == "cuda" else None
    model = torch.nn.parallel.DistributedDataParallel(student, device_ids=device_ids) if d.enabled else student
    run_student, run_teacher = model, teacher
    if setup.train.compile:
        from torch import _dynamo

        _dynamo.config.suppress_errors = True  # a region that cannot compile runs eagerly
        try:
            run_student, run_teacher = torch.compile(model), torch.compile(teacher)
        except Exception as exc:  # e.g. no compiler support on this platform
            if d.main:
                log(f"note: torch.compile unavailable ({type(exc).__name__}: {exc}); training eagerly")
    return student, teacher, model, run_student, run_teacher


def start(run: Run) -> None:
    """Resume when asked, measure kNN at random init, print the plan."""
    if run.opts.resume and run.ckpt_path.exists():
        resume(run)
    elif run.opts.resume:
        _, dropped = read_metrics(run.out / "metrics.jsonl", upto=0)
        run.log(f"--resume: no checkpoint at {run.ckpt_path}; starting from scratch"
                + (f" (dropped the {dropped} line(s) of metrics.jsonl)" if dropped else ""))
    if run.knn_init is None and run.knn_sets:
        evaluate.measure_start(run)  # the baseline of the do-no-harm check
    if run.d.main:
        write_metrics(run.out / "metrics.jsonl", run.history)
    if run.saved_step is None:
        save(run)  # a run stopped before its first periodic checkpoint still leaves its start
        evaluate.keep_start(run, save)
    run.log(plan_text(run.setup, run.source, run.plan, run.sched, run.last_step, run.d, run.device, run.knn_sets))
    if run.setup.model.init:
        run.log(init_weights.recipe_text(run.setup, run.sched, run.freeze_steps, run.evals.every_steps))


def resume(run: Run) -> None:
    state = checkpoint.load(run.ckpt_path)  # verified: CheckpointError names the file and what to do
    refused, allowed = setupdiff.differences(state["setup"], run.setup.model_dump(mode="json"))
    if state["world_size"] != run.d.world:  # the effective batch and the data shards change with it
        refused.append(("processes", state["world_size"], run.d.world))
    if refused:
        raise checkpoint.CheckpointError(
            f"--resume: {run.ckpt_path} was written by another setup: {setupdiff.describe(refused)}; "
            f"resume with the setup that wrote it, or start over with `{run.opts.command} --overwrite`")
    if changed := checkpoint.data_changed(state, len(run.source.items), run.setup.data.path or "data"):
        raise checkpoint.CheckpointError(f"--resume: {run.ckpt_path}: {changed}")
    if allowed:
        run.log(f"--resume: allowed changes: {setupdiff.describe(allowed)}")
    try:
        run.student.load_state_dict(state["student"])
        run.teacher.load_state_dict(state["teacher"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.scaler.load_state_dict(state["scaler"])
        run.loss_fn.load_state_dict(state["loss"])
        run.monitor.load_state_dict(state["monitor"])
        checkpoint.set_rng_state(state["rng"])
        run.step, run.knn_init = state["step"], state["knn_top1_init"]
        if state.get("evaluation"):
            run.evals.load_state_dict(state["evaluation"])
            if run.evals.guard and run.evals.start is not None and not run.evals.paired:
                run.log(f"--resume: {run.ckpt_path} predates the per-query kNN hits of the start; DG513 judges "
                        f"drops by monitor.knn_drop_margin alone for the rest of this run")
    except (RuntimeError, KeyError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        # a verified checkpoint of a model this setup does not build: say so instead of a traceback
        raise DataError(f"--resume: {run.ckpt_path} cannot be resumed with this setup "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); "
                        "resume with the setup that wrote it, or use another train.output_dir") from None
    run.saved_step = run.step
    run.history, dropped = read_metrics(run.out / "metrics.jsonl", upto=run.step)
    if dropped:
        run.log(f"metrics.jsonl: dropped {dropped} line(s) after the checkpoint's step {run.step} or unreadable; "
                f"kept {len(run.history)} row(s)")
    expected = run.step // run.setup.train.log_every_steps  # at least every Nth step's row was written
    if len(run.history) < expected:
        run.log(f"metrics.jsonl lacks {expected - len(run.history)} of the rows of steps 1-{run.step} "
                "(damaged before the checkpoint); training goes on, those rows stay missing")
    run.log(f"resumed from {run.ckpt_path} at step {run.step} (epoch {run.step // run.steps_per_epoch})")


def save(run: Run, path: Path | None = None) -> None:
    """Rank 0 writes; every rank knows which step last.pt holds (the weights are the same on all)."""
    if not all(torch.isfinite(p).all() for p in run.student.parameters()):
        run.log(f"not saving step {run.step}: the weights are not finite; "
                f"{run.ckpt_path} keeps step {run.saved_step}")
        return
    if run.d.main:
        k = run.setup.train.accumulate_grad_batches
        checkpoint.save_atomic({
            "student": run.student.state_dict(), "teacher": run.teacher.state_dict(),
            "optimizer": run.optimizer.state_dict(), "scaler": run.scaler.state_dict(),
            "loss": run.loss_fn.state_dict(), "monitor": run.monitor.state_dict(), "rng": checkpoint.rng_state(),
            "step": run.step, "epoch": run.step // run.steps_per_epoch,
            "micro_batches_done": (run.step % run.steps_per_epoch) * k, "knn_top1_init": run.knn_init,
            "evaluation": run.evals.state_dict(),
            "setup": run.setup.model_dump(mode="json"), "world_size": run.d.world,
            "data_images": len(run.source.items)}, path or run.ckpt_path)
    if path is None:
        run.saved_step = run.step


# -------------------------------------------------------------------- the loop


@dataclass
class Pending(LateStep):
    """A queued optimizer step; values: loss, grad norm, teacher std, teacher entropy, signal flag (all-reduced)."""

    schedule: dict
    started: float
    wait: float
    done_at: float | None  # wall clock when its numbers were ready (None: read it on arrival)


def run_steps(run: Run, stop: StopFlag, bar: ProgressBar) -> None:
    """Optimizer steps until the run ends, a check stops it or a signal comes."""
    t = run.setup.train
    epoch = run.step // run.steps_per_epoch
    epochs = -(-run.last_step // run.steps_per_epoch) - epoch  # through the epoch of the last step
    sampler = EpochSampler(len(run.dataset), t.batch_size, t.seed, epoch, run.d.rank, run.d.world,
                           start_batch=(run.step % run.steps_per_epoch) * t.accumulate_grad_batches,
                           epochs=epochs, group=t.accumulate_grad_batches)
    # One loader for the whole run; views made one batch ahead (on CUDA on a side stream).
    loader = make_loader(run.dataset, sampler, run.setup, run.pipeline.collate, run.device)
    batches = PrefetchViews(start_workers(loader), run.pipeline.views, run.device)
    late: OneStepLate[Pending] = OneStepLate()
    while run.step < run.last_step:
        try:
            queued = launch_step(run, batches, stop)
        except RuntimeError as exc:
            if "overflow" not in str(exc):
                raise
            return stop_on_overflow(run, exc)
        run.step += 1
        previous = late.push(queued)
        signalled = record_step(run, previous, bar, next_started=queued.started) if previous else False
        if run.stopped_by:
            return
        if signalled or stop.signum is not None or checkpoint_due(run) or knn_due(run) or run.step == run.last_step:
            signalled = record_step(run, late.take(), bar) or signalled  # the state to save must be recorded
            if run.stopped_by:
                return
            end_of_step(run)
            if run.stopped_by:
                return
        if signalled or (stop.signum is not None and not run.d.enabled):
            save(run)
            signame = signal.Signals(stop.signum or signal.SIGTERM).name
            run.stopped_by, run.exit_code = signame, SIGNAL_EXIT.get(stop.signum, 143)
            run.log(f"\n{signame}: {run.ckpt_path} holds step {run.saved_step}; continue with --resume")
            return


def stop_mid_step(run: Run, signum: int) -> None:
    """SIGTERM / SIGINT took the DataLoader workers down before the loop saw it: the step under way is lost.

    The error reaches the main process anywhere in a step, so the weights may be half updated:
    nothing is saved or exported from them, last.pt keeps the last step saved.
    """
    name = signal.Signals(signum).name
    run.stopped_by, run.exit_code, run.mid_step = name, SIGNAL_EXIT[signum], True
    run.log(f"\n{name}: the DataLoader workers were stopped part way through step {run.step + 1}, which is lost; "
            f"{run.ckpt_path} holds step {run.saved_step}; continue with --resume")


def stop_on_overflow(run: Run, exc: RuntimeError) -> None:
    """A number beyond float32 inside the optimizer step (lr 1e40): DG501, like a non-finite loss.

    The step was applied part way, so nothing is saved: last.pt keeps the last checked state.
    """
    s = run.sched.at(run.step)
    event = Event("DG501", "optimizer.lr",
                  f"step {run.step + 1}: the optimizer update overflows float32 ({exc}) at lr {s['lr']:.3g}; "
                  f"stopped, {run.ckpt_path} keeps step {run.saved_step}",
                  f"lower optimizer.lr (peak lr used {run.sched.lr:.3g}); DINO's is 0.0005 per 256 images", stop=True)
    run.events.append(event)
    if run.d.main:
        run.opts.on_event(event)
    run.stopped_by, run.exit_code = event.code, EXIT_STOPPED


def checkpoint_due(run: Run) -> bool:
    t = run.setup.train
    return (run.step % run.steps_per_epoch == 0
            or bool(t.checkpoint_every_steps and run.step % t.checkpoint_every_steps == 0))


def knn_due(run: Run) -> bool:
    return bool(run.knn_sets) and run.evals.due(run.step, run.steps_per_epoch)


def end_of_step(run: Run) -> None:
    """Checkpoints and kNN at the step boundaries the setup asks for (all metrics recorded)."""
    t, epoch = run.setup.train, run.step // run.steps_per_epoch
    epoch_end = run.step % run.steps_per_epoch == 0
    if checkpoint_due(run) or run.step == run.last_step:
        save(run)
    if epoch_end and t.checkpoint_every_epochs and epoch % t.checkpoint_every_epochs == 0:
        save(run, run.out / "checkpoints" / f"epoch_{epoch:04d}.pt")
    if knn_due(run):
        harm = evaluate.after_step(run, save)
        if run.d.main:  # the step's row may be on disk already: rewrite the file with the kNN in it
            every = run.setup.train.log_every_steps
            write_metrics(run.out / "metrics.jsonl", [r for r in run.history if kept(r, every, run.last_step)])
        if harm is not None:  # DG513: kNN below the warm start's
            run.events.append(harm)
            if run.d.main:
                run.opts.on_event(harm)
            run.stopped_by, run.exit_code = harm.code, EXIT_STOPPED


def launch_step(run: Run, batches, stop: StopFlag) -> Pending:
    """Queue one optimizer step (k micro-batches) on the device; nothing waits for it."""
    started, k = time.perf_counter(), run.setup.train.accumulate_grad_batches
    s = run.sched.at(run.step)
    for i, group in enumerate(run.optimizer.param_groups):  # a checkpoint of before the scales: DINO's two groups
        group["lr"] = s["lr"] * group.get("lr_scale", 1.0)
        group["weight_decay"] = s["weight_decay"] * group.get("wd_scale", 1.0 if i == 0 else 0.0)
    loss_sum, terms_sum, share_sum, wait, stats = 0.0, 0.0, 0.0, 0.0, None
    for micro in range(k):
        tw = time.perf_counter()
        batch, (global_crops, local_crops) = next(batches)
        wait += time.perf_counter() - tw
        note_bad_files(run, batch["bad"])
        sync = contextlib.nullcontext() if (micro == k - 1 or not run.d.enabled) else run.model.no_sync()
        with sync:
            if run.setup.method == "dinov2":
                loss, terms, teacher_view0, teacher_patches, share = dinov2_step.forward_loss(
                    run.setup, run.student, run.run_student, run.run_teacher, run.loss_fn, global_crops, local_crops,
                    s["teacher_temp"], run.amp_dtype)
                terms_sum, share_sum = terms_sum + terms, share_sum + share
            else:
                loss, teacher_view0 = forward_loss(run.run_student, run.run_teacher, run.loss_fn, global_crops,
                                                   local_crops, s["teacher_temp"], run.amp_dtype)
            run.scaler.scale(loss / k).backward()
        loss_sum = loss_sum + loss.detach()
        if stats is None:
            stats = teacher_stats(teacher_view0, run.loss_fn.center, s["teacher_temp"])
            if run.setup.method == "dinov2":  # extra values: the terms (added below) and the iBOT head's statistics
                head = dinov2_step.head_stats(run.loss_fn, teacher_patches)
        if run.opts.step_hook:
            run.opts.step_hook(run.step, run.student)
    if run.step < run.freeze_steps:  # heads first: the backbone's gradients are dropped (no update, no decay)
        for p in run.student.backbone.parameters():
            p.grad = None
    grad_norm = optimizer_step(run.student, run.teacher, run.optimizer, run.scaler, run.loss_fn,
                               t_clip(run.setup), s["epoch"], s["teacher_momentum"], run.setup)
    flag = torch.tensor(float(stop.signum is not None), device=run.device)
    extra = [*(terms_sum / k), *head, share_sum / k] if run.setup.method == "dinov2" else []
    values = torch.stack([loss_sum / k, grad_norm.float(), *stats, flag, *extra]).double()
    values, ready = to_host_later(distributed.mean_tensor(values, run.d))
    # On the CPU the step has run by now; on CUDA it is done when `ready` fires.
    return Pending(run.step + 1, values, ready, s, started, wait, None if ready else time.time())


def record_step(run: Run, p: Pending, bar: ProgressBar, next_started: float | None = None) -> bool:
    """Metrics row and loss-trend checks of a queued step; True when a rank was signalled."""
    loss, grad_norm, std, entropy, flag, *extra = p.numbers()
    dt = (next_started or time.perf_counter()) - p.started
    s = p.schedule
    row = {"step": p.step, "epoch": s["epoch"], "loss": loss, "lr": s["lr"], "weight_decay": s["weight_decay"],
           "teacher_momentum": s["teacher_momentum"], "teacher_temp": s["teacher_temp"], "grad_norm": grad_norm,
           "teacher_std": std, "teacher_entropy": entropy, "images_per_s": run.effective_batch / dt,
           "data_wait": p.wait / dt, "time": p.done_at or time.time()}
    row.update(zip(dinov2_step.EXTRA_KEYS, extra, strict=False))  # DINOv2: each term and the iBOT head's statistics
    run.history.append(row)
    if run.d.main and kept(row, run.setup.train.log_every_steps, run.last_step):
        append_metric(run.out / "metrics.jsonl", row)
    bar.update(row)
    terms = {dinov2_step.TERM_NAMES[key]: row[key] for key in dinov2_step.TERM_NAMES if key in row}
    # the iBOT head's monitor reads the masked tokens' cross-entropy: lightly's term is the masked share x it
    share = row.get("ibot_masked_share", 0.0)  # 0: no masked crop this step, nothing measured (std is nan too)
    patch = ((row["ibot"] / share if share else math.nan, row["ibot_teacher_std"], row["ibot_teacher_entropy"])
             if "ibot" in row else None)
    # the trend checks read the DINO term against its head's entropy and ln K (the total adds iBOT and KoLeo)
    step_events = run.monitor.observe(p.step, row.get("dino", loss), grad_norm, std, entropy,
                                      run.sched.in_teacher_temp_warmup(p.step), p.step > run.sched.warmup_steps,
                                      terms=terms, patch=patch)
    for e in step_events:
        run.events.append(e)
        if run.d.main:
            run.opts.on_event(e)
    stopping = next((e for e in step_events if e.stop), None)
    if stopping:
        run.stopped_by, run.exit_code = stopping.code, EXIT_STOPPED
    return flag > 0


def note_bad_files(run: Run, bad: list) -> None:
    if bad and not run.bad_files:
        run.log(f"warning: skipped unreadable image {bad[0]} (replaced by the next image; "
                "further ones are counted in summary.json)")
    run.bad_files += len(bad)


def finish(run: Run) -> Result:
    """Final kNN, summary.json, the resolved setup and loss.png."""
    # after a check's stop, or one part way through a step, the weights in memory are not the ones to measure or export
    weights_unfit = (run.stopped_by or "").startswith("DG") or run.mid_step
    knn_final = None
    if run.knn_sets and not weights_unfit:  # the last epoch's evaluation, when there was one, is the final one
        knn_final = run.history[-1]["knn_top1"] if run.history and "knn_top1" in run.history[-1] else run.knn()
    summary = summarize(run.history, knn_final, run.knn_init, run.stopped_by, run.bad_files, run.source.ignored,
                        run.effective_batch, len(run.knn_sets[1]) if run.knn_sets else None)
    if knn_final is not None and run.evals.record(run.step, knn_final):
        save(run, evaluate.best_path(run))
    summary.update(knn_top1_best=run.evals.best, knn_top1_best_step=run.evals.best_step)
    if run.d.main:
        runfolder.write_text(run.out / "summary.json", json.dumps(summary, indent=2) + "\n")
        runfolder.write_text(run.out / "setup.resolved.json",
                             json.dumps(run.setup.model_dump(mode="json"), indent=2) + "\n")
        if run.history and not weights_unfit:  # the backbone to take to the next step
            write_backbone(run.setup, run.teacher.state_dict(), run.out / "backbone.pt", "teacher", run.step)
        if run.history:
            title = f"{run.setup.model.backbone.name}, effective batch {run.effective_batch}"
            stop = (run.history[-1]["step"], run.stopped_by) if run.stopped_by else None  # marked on the curve
            ibot_dim = dinov2_step.ibot_output_dim(run.setup) if run.setup.method == "dinov2" else None
            runfolder.replaced(run.out / "loss.png", lambda tmp: plot_run(
                run.history, run.setup.loss_output_dim, tmp, title, run.knn_init, knn_final, stop=stop,
                ibot_output_dim=ibot_dim))
    distributed.finish(run.d)
    return Result(run.exit_code, summary, run.events, run.saved_step)


# -------------------------------------------------------------------- one step's pieces


def make_loader(dataset, sampler, setup, collate, device) -> torch.utils.data.DataLoader:
    n = setup.data.num_workers
    return torch.utils.data.DataLoader(
        dataset, batch_size=setup.train.batch_size, sampler=sampler, collate_fn=collate, num_workers=n,
        pin_memory=device.type == "cuda", drop_last=True, persistent_workers=False,
        prefetch_factor=4 if n else None,
        worker_init_fn=worker_init(),  # SIGTERM to the process group (`timeout`): the main process stops
        generator=torch.Generator())  # own generator: the global RNG stays untouched (exact resume)


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


def optimizer_step(student, teacher, optimizer, scaler, loss_fn, clip: float, epoch: int, momentum: float,
                   setup=None) -> torch.Tensor:
    """Clip, cancel last-layer grads (freeze_last_layer), step, one update of each center, EMA.

    Returns the gradient norm as a device scalar (reading it would wait for the device).
    """
    from lightly.models.utils import update_momentum

    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(student.parameters(), clip)
    if setup is not None and setup.method == "dinov2":
        dinov2_step.cancel_last_layer_gradients(setup, student, epoch)
    else:
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

    resolved = backbones.resolve(setup.model.backbone)
    return resolved.is_vit_like or (resolved.info is None and "vit" in setup.model.backbone.name)


def t_clip(setup) -> float:
    return setup.optimizer.clip_grad if setup.optimizer.clip_grad else math.inf
