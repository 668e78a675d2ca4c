"""The one DINO loss builder: lightly's DINOLoss with its center moved once per optimizer step."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def dino_loss(meta: bool = False, **args) -> nn.Module:
    """A `StepCenteredDINOLoss(**args)` (DINOLoss's own arguments); on the meta device when `meta`."""
    from lightly.loss import DINOLoss

    class StepCenteredDINOLoss(DINOLoss):
        """DINOLoss that collects the teacher mean of each micro-batch and
        updates the center once per optimizer step, from all of them
        (lightly updates it on every call; all-reduced under DDP)."""

        def update_center(self, teacher_out: torch.Tensor) -> None:  # called by DINOLoss.forward
            self._pending.append(teacher_out.detach().float().mean(dim=(0, 1), keepdim=True))

        def step_center(self) -> None:
            if self._pending:
                # equal micro-batches: the mean of their means is the mean of the whole step
                DINOLoss.update_center(self, torch.cat(self._pending))
            self._pending = []

    with torch.device("meta") if meta else contextlib.nullcontext():
        loss = StepCenteredDINOLoss(**args)
    loss._pending = []
    return loss


def step_centered_ibot_loss(meta: bool = False, **args) -> nn.Module:
    """lightly's IBOTPatchLoss(**args) (built by models.dinov2) whose center moves once per optimizer step.

    IBOTPatchLoss updates its center on every call, once per micro-batch under
    gradient accumulation. Here each call adds its masked teacher tokens' sum and
    count; `step_center()` moves the center once, by their mean over the whole
    step (micro-batches mask different numbers of tokens, so a mean of means would
    weigh them wrongly). A call with no masked token moves nothing.
    """
    from lightly.models.modules.center import Center

    from dino_guard.models.dinov2 import ibot_loss

    class StepCenter(Center):
        def update(self, x: torch.Tensor) -> None:  # called by IBOTPatchLoss.forward
            if len(x):
                rows = x.detach().float()
                self._sum = self._sum + rows.sum(dim=0, keepdim=True)
                self._count += len(rows)

        def step(self) -> None:
            if self._count:
                Center.update(self, self._sum / self._count)  # all-reduced under DDP
            self._sum, self._count = 0.0, 0

    loss = ibot_loss(meta=meta, **args)
    old = loss.center
    with torch.device("meta") if meta else contextlib.nullcontext():
        loss.center = StepCenter(size=old.size, momentum=old.momentum)
    loss.center._sum, loss.center._count = 0.0, 0
    loss.step_center = loss.center.step
    return loss
