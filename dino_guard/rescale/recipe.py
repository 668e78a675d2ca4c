"""A reference recipe turned into one for the user's GPUs and data set, each change with its reason and source.

Torch-free: the batch that fits comes from the analytic memory estimate, the
lr and the teacher momentum from the run plan's rules (plan.py), K from
DG102's rule. The result is a list of changes; the command writes them into
the user's file with the same editors as `check --fix` and checks it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from dino_guard import backbones, gpus
from dino_guard.memory import analytic, fit
from dino_guard.memory.spec import spec_from_setup
from dino_guard.plan import effective_batch, lr_factor, lr_rule, lr_used, scaled_momentum, setup_processes
from dino_guard.rules.data import suggested_output_dim
from dino_guard.rules.loss import MAX_TEACHER_TEMP

# Keep the recipe's effective batch (by gradient accumulation) while the run still takes this many optimizer
# steps. Below it a smaller batch is the better trade: DG416 measured that a teacher at 0.996 -> 1.0 needs about
# a thousand steps just to forget its random init, and the recipe's warm-ups and cosine schedules were tuned
# over 10^5 steps; five times the DG416 floor leaves the schedules room to act.
MIN_STEPS = 5000
MAX_ACCUMULATE = 64  # beyond this a "step" is mostly waiting; the smaller batch is the honest choice
TENSOR_CORE_MULTIPLE = 8  # per-device batches rounded down to a multiple of 8 (from 16 up)

ESTIMATE = "dino-guard estimate (analytic peak memory)"
EMA_RULE = 'EMA scaling rule rho\' = rho^(B\'/B) (Busbridge et al., "How to Scale Your EMA", NeurIPS 2023)'


class RescaleError(ValueError):
    """Input the rescale cannot work with: the message is one line for the user."""


@dataclass(frozen=True)
class Target:
    gpu: gpus.GPU
    devices: int
    dataset_size: int
    epochs: int | None = None


@dataclass(frozen=True)
class Change:
    field: str
    old: Any
    new: Any
    reason: str
    source: str


@dataclass(frozen=True)
class Rescaled:
    changes: list[Change]
    notes: list[Change]  # derived values that are no field (the lr used)

    @property
    def fix(self) -> dict:
        return {c.field: c.new for c in self.changes}


def parse_gpus(text: str) -> tuple[int, gpus.GPU]:
    """'1xT4-16GB', '8 x H100', 'A100-80GB' -> (devices, GPU); RescaleError when unknown."""
    count, sep, name = text.strip().partition("x")
    if not sep or not count.strip().isdigit():
        count, name = "1", text
    devices = int(count)
    if devices < 1:
        raise RescaleError(f"--gpus {text}: at least one GPU")
    try:
        return devices, gpus.resolve(name.strip())
    except gpus.GpuError as exc:
        raise RescaleError(f"--gpus {text}: {exc}") from None


def rescale(setup, target: Target) -> Rescaled:
    changes: list[Change] = []
    epochs = target.epochs or setup.train.epochs
    changes += _hardware(setup, target)
    prototypes = _prototypes(setup, target.dataset_size)
    k = next((c.new for c in prototypes if c.field == "model.head.output_dim"), setup.model.head.output_dim)
    batch_changes, old_batch, new_batch = _batch(setup, target, epochs, k)
    changes += batch_changes
    notes = [_lr_note(setup, old_batch, new_batch)] if old_batch != new_batch else []
    changes += _momentum(setup, old_batch, new_batch)
    changes += prototypes
    changes += _schedules(setup, epochs)
    return Rescaled([c for c in changes if c.old != c.new], notes)


def _hardware(setup, target: Target) -> list[Change]:
    t = setup.train
    where = "--gpus"
    out = [Change("hardware.gpu", setup.hardware.gpu, target.gpu.name, "the GPU the run is checked against", where),
           Change("train.devices", t.devices, target.devices, "GPUs per node", where),
           Change("train.num_nodes", t.num_nodes, 1, "one machine", where),
           Change("data.dataset_size", setup.data.dataset_size, target.dataset_size,
                  "the training images the schedules and checks count", "--dataset-size")]
    if setup.hardware.gpu_memory_gb is not None:
        out.append(Change("hardware.gpu_memory_gb", setup.hardware.gpu_memory_gb, None, "the catalog card replaces it",
                          where))
    return out


def largest_batch(setup, target: Target, output_dim: int) -> int:
    """The largest per-device batch that fits the target GPU with the allocator's margin (head of output_dim)."""
    info = backbones.lookup(setup.model.backbone.name)
    if info is None or not setup.has_dino_transform:
        raise RescaleError(f"{setup.model.backbone.name}: no memory facts for this backbone (or no transform): "
                           "the batch that fits cannot be estimated without torch")
    spec = dataclasses.replace(spec_from_setup(setup), ddp=target.devices > 1, output_dim=output_dim)
    try:
        peak = lambda batch: analytic.estimate(spec.with_batch(batch), info).peak_allocated_bytes  # noqa: E731
        largest = fit.max_batch_size(peak, target.gpu.usable_bytes)
    except analytic.AnalyticUnavailable as exc:
        raise RescaleError(f"the memory of this setup cannot be estimated analytically: {exc}") from None
    if largest < 1:
        raise RescaleError(f"not even batch 1 fits {target.gpu.name}: use fewer or smaller crops, or a larger GPU")
    return largest


def _round_batch(batch: int) -> int:
    return batch - batch % TENSOR_CORE_MULTIPLE if batch >= 2 * TENSOR_CORE_MULTIPLE else batch


def _batch(setup, target: Target, epochs: int, output_dim: int) -> tuple[list[Change], int, int]:
    """Per-device batch and accumulation; the old and new effective batch."""
    t = setup.train
    old_effective = effective_batch(t.batch_size, t.accumulate_grad_batches, setup_processes(setup))
    largest = largest_batch(setup, target, output_dim)
    fitted = f"{largest} fit{'s' * (largest == 1)} per device on {target.gpu.name}"
    kept = fit.plan(math.ceil(old_effective / target.devices), 1, largest)
    kept_steps = epochs * (target.dataset_size // old_effective)
    if kept.exact and kept.accumulate_grad_batches <= MAX_ACCUMULATE and kept_steps >= MIN_STEPS:
        why = (f"gradient accumulation keeps the recipe's effective batch {old_effective} ({fitted}); "
               f"the run still takes {kept_steps} optimizer steps (>= {MIN_STEPS})")
        return ([Change("train.batch_size", t.batch_size, kept.batch_size, why, ESTIMATE),
                 Change("train.accumulate_grad_batches", t.accumulate_grad_batches, kept.accumulate_grad_batches,
                        why, ESTIMATE)], old_effective, old_effective)
    batch = _round_batch(min(largest, old_effective // target.devices) or 1)
    new_effective = batch * target.devices
    steps = epochs * (target.dataset_size // new_effective)
    why = (f"a smaller effective batch {new_effective} (was {old_effective}): keeping {old_effective} would leave "
           f"{kept_steps} optimizer steps over {target.dataset_size} images x {epochs} epochs (< {MIN_STEPS}); "
           f"at {new_effective} the run takes {steps}; {fitted} (rounded down to a multiple of 8)")
    return ([Change("train.batch_size", t.batch_size, batch, why, ESTIMATE),
             Change("train.accumulate_grad_batches", t.accumulate_grad_batches, 1, "no accumulation: " + why,
                    ESTIMATE)], old_effective, new_effective)


def _lr_note(setup, old_batch: int, new_batch: int) -> Change:
    method, factor = setup.method, lr_factor(setup)
    base = setup.optimizer.lr * factor  # what the trainer scales: a warm start's lr is multiplied first
    warm = f" (x {factor:g} for model.init's warm start)" if factor != 1 else ""
    return Change("lr used", round(lr_used(base, old_batch, method), 8), round(lr_used(base, new_batch, method), 8),
                  f"optimizer.lr {setup.optimizer.lr:g}{warm} is kept: the trainer scales it by the method's rule, "
                  f"{lr_rule(method)}",
                  "dino_guard/plan.py (DINO: linear per 256, Goyal et al. 2017; DINOv2: square root against 1024)")


def _momentum(setup, old_batch: int, new_batch: int) -> list[Change]:
    if old_batch == new_batch:
        return []
    m, kappa = setup.teacher_momentum, new_batch / old_batch
    why = f"the effective batch went {old_batch} -> {new_batch} (kappa = {kappa:.4g})"
    return [Change(f"teacher_momentum.{name}", value, round(scaled_momentum(value, old_batch, new_batch), 6), why,
                   EMA_RULE) for name, value in (("start", m.start), ("end", m.end)) if value < 1]


def _prototypes(setup, images: int) -> list[Change]:
    head_dim = setup.model.head.output_dim
    out: list[Change] = []
    if head_dim > images:
        k = suggested_output_dim(images)
        why = f"{head_dim} prototypes for {images} images: most would never be used (DG102)"
        out += [Change("model.head.output_dim", head_dim, k, why, "DG102 (dino-guard rule DG102)"),
                Change("loss.output_dim", setup.loss_output_dim, k, "must equal the head's (DG401)", "DG401")]
    if setup.loss.teacher_temp > MAX_TEACHER_TEMP:
        out.append(Change("loss.teacher_temp", setup.loss.teacher_temp, 0.04,
                          f"above {MAX_TEACHER_TEMP}: flat targets (DG402)", "DG402; facebookresearch/dino README"))
    return out


def _schedules(setup, epochs: int) -> list[Change]:
    """Epoch counts of warm-ups and freezes: the same fraction of a run of another length, each inside it."""
    old = setup.train.epochs
    scale = epochs / old
    source = "the recipe's share of the run kept"
    out = [Change("train.epochs", old, epochs, "--epochs", "--epochs")]
    lr_warmup = setup.optimizer.warmup_epochs * scale
    if lr_warmup >= epochs:
        lr_warmup = epochs / 10
    temp_warmup = min(round(setup.loss.warmup_teacher_temp_epochs * scale), epochs)
    freeze = setup.model.head.freeze_last_layer
    out += [Change("optimizer.warmup_epochs", setup.optimizer.warmup_epochs, round(lr_warmup, 3),
                   f"{setup.optimizer.warmup_epochs:g} of {old} epochs", source),
            Change("loss.warmup_teacher_temp_epochs", setup.loss.warmup_teacher_temp_epochs, temp_warmup,
                   f"{setup.loss.warmup_teacher_temp_epochs} of {old} epochs", source)]
    if freeze > 0:
        out.append(Change("model.head.freeze_last_layer", freeze, max(1, round(freeze * scale)),
                          f"{freeze} of {old} epochs", source))
    return out
