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
