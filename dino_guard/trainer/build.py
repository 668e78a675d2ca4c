"""Build the models and the loss from a Setup.

Student = backbone + DINOProjectionHead; teacher = a copy of the backbone +
a head built fresh that loads the student head's state (weight norm cannot
be deep-copied). Both are wrapped in `MultiCrop`, whose one forward takes the
global crops and the local crops as two batched tensors.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dino_guard.models.head import dino_head
from dino_guard.models.loss import dino_loss


class BuildError(Exception):
    """A model the setup asks for cannot be built; the message says why and what to do."""


class MultiCrop(nn.Module):
    """backbone + head; one forward for all global crops, one for all local crops."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, global_crops: torch.Tensor, local_crops: torch.Tensor | None = None):
        out_global = self.head(self.backbone(global_crops).flatten(1))
        if local_crops is None:
            return out_global, None
        return out_global, self.head(self.backbone(local_crops).flatten(1))


def create_backbone(cfg, meta: bool = False, dynamic_img_size: bool | None = None, init_values: float | None = None):
    """The setup's backbone through the one builder (dino_guard.models.backbone): timm with
    num_classes=0 (pooled features) or torchvision/<name> without its last Linear.
    Returns a Backbone (module, width, recipe for backbone.json). The keywords are the
    method's (DINOv2: LayerScale and dynamic sizes, trainer/dinov2_step.backbone_args)."""
    from dino_guard.models import backbone as models

    dynamic = cfg.dynamic_img_size if dynamic_img_size is None else dynamic_img_size
    try:
        return models.build_backbone(cfg.name, dynamic, cfg.drop_path_rate, cfg.pretrained, meta=meta,
                                     init_values=init_values)
    except models.UnknownBackbone as exc:
        raise BuildError(f"model.backbone.name: {exc}{models.did_you_mean(cfg.name)}") from None
    except models.BackboneArgsError as exc:  # e.g. dynamic_img_size on a conv net
        raise BuildError(f"model.backbone: {exc}; remove dynamic_img_size for backbones that are not ViTs") from None


def output_width(backbone: nn.Module, size: int) -> int:
    """The real pooled width, measured with one tiny forward."""
    was_training = backbone.training
    backbone.eval()
    with torch.no_grad():
        width = backbone(torch.zeros(1, 3, size, size)).flatten(1).shape[1]
    backbone.train(was_training)
    return width


def build_models(setup) -> tuple[MultiCrop, MultiCrop]:
    """Student and teacher; refuses a head whose input_dim is not the backbone's width."""
    from lightly.models.utils import deactivate_requires_grad

    backbone = create_backbone(setup.model.backbone).module
    width = output_width(backbone, setup.transform.global_crop_size if setup.transform else 224)
    h = setup.model.head
    if h.input_dim is not None and h.input_dim != width:
        raise BuildError(f"model.head.input_dim is {h.input_dim} but {setup.model.backbone.name} outputs {width} "
                         f"features; write input_dim: {width} (or leave it out)")
    args = dict(input_dim=width, hidden_dim=h.hidden_dim, bottleneck_dim=h.bottleneck_dim, output_dim=h.output_dim,
                batch_norm=h.batch_norm, freeze_last_layer=h.freeze_last_layer, norm_last_layer=h.norm_last_layer)
    student = MultiCrop(backbone, dino_head(**args))
    teacher_head = dino_head(**args)
    teacher_head.load_state_dict(student.head.state_dict())
    teacher = MultiCrop(copy.deepcopy(backbone), teacher_head)
    deactivate_requires_grad(teacher)
    return student, teacher


def build_loss(setup):
    """lightly's DINOLoss whose center update waits for the whole optimizer step (the one builder).

    It holds no teacher-temperature warm-up of its own: the trainer's Schedule
    (trainer.schedules, per optimizer step) passes the temperature on every call.
    """
    c = setup.loss
    return dino_loss(output_dim=setup.loss_output_dim, warmup_teacher_temp=c.teacher_temp,
                     teacher_temp=c.teacher_temp, warmup_teacher_temp_epochs=0,
                     student_temp=c.student_temp, center_momentum=c.center_momentum)


def param_groups(model: nn.Module) -> list[dict]:
    """Weight decay on weights, none on biases and norm parameters (as DINO does).

    Each group carries `lr_scale` and `wd_scale`: the loop sets a group's lr and
    weight decay to the schedule's value times them (DINOv2's layer-wise groups use
    other scales, trainer/dinov2_step.py).
    """
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": decay, "lr_scale": 1.0, "wd_scale": 1.0},
            {"params": no_decay, "weight_decay": 0.0, "lr_scale": 1.0, "wd_scale": 0.0}]


def build_optimizer(setup, model: nn.Module, device: torch.device) -> torch.optim.Optimizer:
    return make_optimizer(setup, param_groups(model), device)


def make_optimizer(setup, groups: list[dict], device: torch.device) -> torch.optim.Optimizer:
    """The setup's optimizer over `groups` (their own weight_decay wins over the setup's)."""
    o = setup.optimizer
    for g in groups:
        g.setdefault("weight_decay", o.weight_decay * g.get("wd_scale", 1.0))
    fused = {"fused": True} if device.type == "cuda" else {}
    if o.name == "adamw":
        return torch.optim.AdamW(groups, lr=o.lr, weight_decay=o.weight_decay, **fused)
    if o.name == "adam":  # Adam's weight decay is L2 in the gradient
        return torch.optim.Adam(groups, lr=o.lr, weight_decay=o.weight_decay, **fused)
    return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
