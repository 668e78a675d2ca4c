"""Traced DINOv2 step on the meta device: what lightly's DINOv2 example runs, shapes only.

The teacher and the student are lightly's MaskedVisionTransformerTIMM around
the trainer's timm ViT; DINOv2ProjectionHead on the class tokens (DINOLoss)
and on every masked patch token of the global crops (IBOTPatchLoss), KoLeo
on the student's global class tokens, backward, the optimizer step and the
EMA. Built with dino_guard.models (the trainer's builders).

Two things differ from a GPU run because meta tensors hold no data: the
masked tokens are picked with index_select from an index of the expected
count (a boolean mask needs the data to know its size), and IBOTPatchLoss's
per-image weighting is applied with those indices; each is a vector of the
masked-token count, a few KB.
"""

from __future__ import annotations

import torch

from dino_guard.memory import traced
from dino_guard.memory.autocast import CudaAutocast
from dino_guard.memory.breakdown import Breakdown
from dino_guard.memory.spec import MemorySpec
from dino_guard.memory.tracker import AllocationTracker
from dino_guard.models import dinov2

KOLEO_WEIGHT = 0.1  # Meta's koleo_loss_weight; the weight does not change memory


def estimate(spec: MemorySpec, steps: int = 2) -> Breakdown:
    """Peak bytes of `steps` DINOv2 training steps, split by where they go (iBOT: a row of its own)."""
    tracker = AllocationTracker()
    return traced._measure(spec, build(spec, tracker), tracker, steps)


def build(spec: MemorySpec, tracker: AllocationTracker):

    student, width = _masked_backbone(spec)
    teacher, _ = _masked_backbone(spec)
    head_args = dict(input_dim=spec.feature_dim or width, hidden_dim=spec.head_hidden_dim,
                     bottleneck_dim=spec.head_bottleneck_dim, output_dim=spec.output_dim,
                     batch_norm=spec.head_batch_norm)
    student_head, teacher_head = dinov2.dinov2_head(meta=True, **head_args), dinov2.dinov2_head(meta=True, **head_args)
    if spec.ibot_separate_head:
        hidden, bottleneck, output = spec.ibot_head
        ibot_args = dict(head_args, hidden_dim=hidden, bottleneck_dim=bottleneck, output_dim=output)
        student_ibot = dinov2.dinov2_head(meta=True, **ibot_args)
        teacher_ibot = dinov2.dinov2_head(meta=True, **ibot_args)
    else:
        student_ibot, teacher_ibot = student_head, teacher_head
    criterion = traced.dino_loss(meta=True, output_dim=spec.output_dim)
    step = traced._assemble(spec, tracker, student, torch.nn.ModuleList([student_head, student_ibot]),
                            teacher, torch.nn.ModuleList([teacher_head, teacher_ibot]), criterion)
    ibot = dinov2.ibot_loss(meta=True, output_dim=spec.ibot_head[2])
    for tensor in ibot.buffers():
        tracker.track(tensor, "weights")
    step.extra = {"ibot": ibot, "koleo": dinov2.koleo_loss() if spec.koleo else None}
    step.forward = forward
    return step


def _masked_backbone(spec: MemorySpec):
    built = traced._backbone(spec)
    wrapped = dinov2.masked_vit(built.module, meta=True, weight_initialization="skip", pos_embed_initialization="skip")
    return wrapped, built.width


def _patch_tokens(tokens: torch.Tensor, prefix: int, index: torch.Tensor) -> torch.Tensor:
    """The masked patch tokens of a (B, N, D) output, as the (M, D) rows lightly's `features[mask]` gives."""
    return tokens[:, prefix:].reshape(-1, tokens.shape[-1]).index_select(0, index)


def forward(spec: MemorySpec, step, tracker: AllocationTracker) -> torch.Tensor:
    """Teacher on the global crops (class and masked tokens), student on every crop, DINO + iBOT + KoLeo."""
    dino_head, ibot_head = step.student_head[0], step.student_head[1]
    t_dino_head, t_ibot_head = step.teacher_head[0], step.teacher_head[1]
    prefix = step.student.vit.num_prefix_tokens
    with CudaAutocast(traced.DTYPES[spec.precision]):
        tracker.phase = "teacher"
        teacher_out, teacher_masked = [], None
        with torch.no_grad():
            for x, n, is_global in step.views:
                if is_global:
                    tokens = step.teacher.encode(x)
                    index, mask = _mask(spec, tokens, prefix, n)
                    teacher_out.extend(t_dino_head(tokens[:, 0]).chunk(n))
                    teacher_masked = t_ibot_head(_patch_tokens(tokens, prefix, index))
                    del tokens
        student_out, global_cls, student_masked = [], None, None
        for x, n, is_global in step.views:
            tracker.phase = "global" if is_global else "local"
            tokens = step.student.encode(x, mask=mask if is_global else None)
            tracker.phase = "head"
            student_out.extend(dino_head(tokens[:, 0]).chunk(n))
            if is_global:
                global_cls = tokens[:, 0]
                tracker.phase = "ibot"
                student_masked = ibot_head(_patch_tokens(tokens, prefix, index))
        tracker.phase = "loss"
        loss = step.criterion([t.float() for t in teacher_out], [s.float() for s in student_out])
        tracker.phase = "ibot"
        loss = loss + _ibot(step.extra["ibot"], teacher_masked, student_masked, len(global_cls))
        tracker.phase = "loss"
        if step.extra["koleo"] is not None:
            loss = loss + KOLEO_WEIGHT * sum(step.extra["koleo"](c) for c in global_cls.chunk(spec.n_global_views))
        return loss


def _mask(spec: MemorySpec, tokens: torch.Tensor, prefix: int, n: int) -> tuple:
    """The masked-token index (M rows of the flattened patches) and the (B, N) mask the student gets."""
    patches = tokens.shape[1] - prefix
    count = spec.masked_tokens(patches)
    index = torch.empty(count, dtype=torch.long, device="meta")
    mask = torch.empty(tokens.shape[:2], dtype=torch.bool, device="meta")
    return index, mask


def _ibot(loss, teacher_out: torch.Tensor, student_out: torch.Tensor, crops: int) -> torch.Tensor:
    """lightly's IBOTPatchLoss.forward, its per-image weights as a vector of the masked count (see above)."""
    teacher_softmax = torch.nn.functional.softmax((teacher_out - loss.center.value) / loss.teacher_temp, dim=-1)
    student_log_softmax = torch.nn.functional.log_softmax(student_out / loss.student_temp, dim=-1)
    per_token = -torch.sum(teacher_softmax * student_log_softmax, dim=-1)
    weight = torch.empty_like(per_token)
    value = (per_token * weight).sum() / crops
    loss.center.update(teacher_out)
    return value
