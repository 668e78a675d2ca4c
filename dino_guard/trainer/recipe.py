"""The setup's method picks the parts the one loop trains: DINO (trainer/build.py) or DINOv2
(trainer/dinov2_step.py). A method this module does not know is refused, never trained as DINO."""

from __future__ import annotations

import torch
from torch import nn

from dino_guard.trainer import build, dinov2_step


def _dinov2(setup) -> bool:
    if setup.method not in ("dino", "dinov2"):
        raise build.BuildError(f"method: {setup.method!r}: dino-guard train trains dino or dinov2")
    return setup.method == "dinov2"


def build_models(setup) -> tuple[nn.Module, nn.Module]:
    """Student and teacher of the setup's method."""
    return dinov2_step.build_models(setup) if _dinov2(setup) else build.build_models(setup)


def build_criterion(setup) -> nn.Module:
    """DINO's DINOLoss, or DINOv2's DINO + iBOT + KoLeo; every centre moves once per optimizer step."""
    return dinov2_step.build_criterion(setup) if _dinov2(setup) else build.build_loss(setup)


def build_optimizer(setup, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    """The setup's optimizer; DINOv2's groups carry the layer-wise lr decay and the patch-embed multiplier."""
    groups = dinov2_step.param_groups(setup, model) if _dinov2(setup) else build.param_groups(model)
    return build.make_optimizer(setup, groups, device)
