"""Traced estimate: run real DINO training steps on the meta device (DINOv2: traced_dinov2.py, on this one).

The student and teacher backbones (timm or torchvision), lightly's
DINOProjectionHead and DINOLoss, the crops at their sizes, backward and the
optimizer step all execute for real, but on meta tensors: shapes and dtypes
without data. AllocationTracker counts every storage like the CUDA caching
allocator; CudaAutocast reproduces CUDA autocast and the attention kernel.
Two steps run because the optimizer creates its state during the first
step's update: the second step is the steady state the peak comes from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from dino_guard.memory.autocast import CudaAutocast
from dino_guard.memory.breakdown import Breakdown
from dino_guard.memory.physics import CUBLAS_WORKSPACE_BYTES, ddp_bucket_bytes
from dino_guard.memory.spec import MemorySpec, device_decode_bytes
from dino_guard.memory.tracker import AllocationTracker
from dino_guard.models import backbone as models
from dino_guard.models.head import dino_head
from dino_guard.models.loss import dino_loss

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# Phase that allocated a tensor -> row of the breakdown.
PHASE_PART = {
    "weights": "weights", "teacher": "teacher", "inputs": "inputs", "loss": "head_and_loss",
    "head": "head_and_loss", "global": "activations_global", "local": "activations_local",
    "backward": "gradients", "optimizer": "optimizer_state", "workspace": "workspace", "ibot": "ibot",
}


@dataclass
class Step:
    """Everything one DINO training step touches."""

    student: nn.Module
    student_head: nn.Module
    teacher: nn.Module
    teacher_head: nn.Module
    criterion: nn.Module
    optimizer: torch.optim.Optimizer
    views: list  # [(tensor of n*B crops, n, is_global)], one entry per forward pass
    forward: Callable | None = None  # the method's forward (DINOv2: memory.traced_dinov2.forward); None: DINO's
    extra: dict = field(default_factory=dict)  # the method's other parts (DINOv2: iBOT and KoLeo losses)


def estimate(spec: MemorySpec, steps: int = 2) -> Breakdown:
    """Peak bytes of `steps` DINO training steps, split by where they go."""
    if spec.method != "dino":
        raise ValueError(f"traced.estimate traces DINO steps; {spec.method} has its own (memory.traced_{spec.method})")
    tracker = AllocationTracker()
    return _measure(spec, _build(spec, tracker), tracker, steps)


def estimate_modules(spec: MemorySpec, modules: tuple, steps: int = 2) -> Breakdown:
    """The same for modules the caller built on the meta device: (student backbone,
    student head, teacher backbone, teacher head, DINO loss), e.g. meta copies of
    a user's live modules (the runtime guard). `spec` gives the batch, crops,
    precision and optimizer."""
    tracker = AllocationTracker()
    return _measure(spec, _assemble(spec, tracker, *modules), tracker, steps)


def _measure(spec: MemorySpec, step: Step, tracker: AllocationTracker, steps: int) -> Breakdown:
    for _ in range(steps):
        _train_step(spec, step, tracker)
    breakdown = Breakdown(method="traced")
    for phase, nbytes in tracker.peak_parts.items():
        breakdown.add(PHASE_PART[phase], nbytes)
    breakdown.add("workspace", CUBLAS_WORKSPACE_BYTES)
    if spec.device_decode:  # not part of the traced step: decoded on a side stream while it runs
        breakdown.add("decode", device_decode_bytes())
    if spec.ddp:  # allocated by DDP's constructor, not by the step: added, not traced
        breakdown.add("gradients", ddp_bucket_bytes(sum(p.numel() for group in step.optimizer.param_groups
                                                        for p in group["params"] if p.requires_grad)))
    return breakdown


def _backbone(spec: MemorySpec) -> models.Backbone:
    """The trainer's backbone on the meta device; dynamic_img_size only where the model takes it."""
    try:
        return models.build_backbone(spec.backbone, spec.dynamic_img_size, spec.drop_path_rate)
    except models.BackboneArgsError:  # a conv net: any input size works without the keyword
        return models.build_backbone(spec.backbone, None, spec.drop_path_rate)


def _build(spec: MemorySpec, tracker: AllocationTracker) -> Step:
    built = _backbone(spec)
    student, width, teacher = built.module, built.width, _backbone(spec).module
    head_args = dict(input_dim=spec.feature_dim or width, hidden_dim=spec.head_hidden_dim,
                     bottleneck_dim=spec.head_bottleneck_dim, output_dim=spec.output_dim,
                     batch_norm=spec.head_batch_norm, freeze_last_layer=1)
    student_head, teacher_head = dino_head(meta=True, **head_args), dino_head(meta=True, **head_args)
    criterion = dino_loss(meta=True, output_dim=spec.output_dim)
    return _assemble(spec, tracker, student, student_head, teacher, teacher_head, criterion)


def _assemble(spec: MemorySpec, tracker: AllocationTracker, student: nn.Module, student_head: nn.Module,
              teacher: nn.Module, teacher_head: nn.Module, criterion: nn.Module) -> Step:
    for module in (teacher, teacher_head):
        module.requires_grad_(False)
    params = [p for p in (*student.parameters(), *student_head.parameters()) if p.requires_grad]
    step = Step(student, student_head, teacher, teacher_head, criterion, _optimizer(spec, params), [])
    for module, phase in ((student, "weights"), (student_head, "weights"), (criterion, "weights"),
                          (teacher, "teacher"), (teacher_head, "teacher")):
        for tensor in [*module.parameters(), *module.buffers()]:
            tracker.track(tensor, phase)
    step.views = _inputs(spec)
    for tensor, _, _ in step.views:
        tracker.track(tensor, "inputs")
    return step


def _optimizer(spec: MemorySpec, params: list) -> torch.optim.Optimizer:
    # Meta tensors cannot take the fused kernel; the single-tensor loop has
    # the same footprint (no list-wide temporaries), foreach is CUDA's default.
    foreach = not spec.fused_optimizer
    if spec.optimizer == "sgd":
        return torch.optim.SGD(params, lr=0.1, momentum=0.9, foreach=foreach)
    cls = torch.optim.AdamW if spec.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=1e-4, foreach=foreach)


def _inputs(spec: MemorySpec) -> list:
    """The crops as the step receives them: one tensor per forward pass."""
    views = []
    for group, (n, size) in enumerate(spec.views):
        passes = [n] if spec.forward_style == "batched" else [1] * n
        for count in passes:
            crops = torch.empty(count * spec.batch_size, 3, size, size, device="meta")
            views.append((crops, count, group == 0))  # spec.views lists the global crops first
    return views


def _train_step(spec: MemorySpec, step: Step, tracker: AllocationTracker) -> None:
    with tracker:
        loss = (step.forward or _forward)(spec, step, tracker)
        tracker.phase = "backward"
        loss.backward()
        del loss
        tracker.phase = "optimizer"
        step.optimizer.step()
        step.optimizer.zero_grad(set_to_none=True)
        _ema_update(step)


def _forward(spec: MemorySpec, step: Step, tracker: AllocationTracker) -> torch.Tensor:
    """Teacher on the global crops, student on every crop, DINO loss: one autocast region."""
    with CudaAutocast(DTYPES[spec.precision]):
        tracker.phase = "teacher"
        with torch.no_grad():
            teacher_out = [out for x, n, is_global in step.views if is_global
                           for out in step.teacher_head(step.teacher(x)).chunk(n)]
        student_out = []
        for x, n, is_global in step.views:
            tracker.phase = "global" if is_global else "local"
            features = step.student(x)
            tracker.phase = "head"
            student_out.extend(step.student_head(features).chunk(n))
        tracker.phase = "loss"
        return step.criterion([t.float() for t in teacher_out], [s.float() for s in student_out])


def _ema_update(step: Step) -> None:
    from lightly.models.utils import update_momentum

    with torch.no_grad():
        update_momentum(step.student, step.teacher, 0.996)
        update_momentum(step.student_head, step.teacher_head, 0.996)
