"""DINOv2 in the reference trainer (`method: dinov2`): its models, its three-term loss,
its layer-wise learning rates and one micro-batch, as lightly's DINOv2 example does it.

    mask  <- random_block_mask over the global crops' patch grid (models.dinov2.block_mask)
    teacher(global crops)                    -> class-token head out, masked-patch head out (no_grad)
    student(global crops with mask tokens)   -> class tokens, class-token head out, masked-patch head out
    student(local crops)                     -> class-token head out
    loss = DINO(class tokens) + ibot.weight x iBOT(masked patches) + koleo.weight x KoLeo(student class tokens)

The loop (trainer/loop.py) stays the one loop: it asks this module for the models,
the criterion, the optimizer's groups and the micro-step when the setup says dinov2.
Both centres move once per optimizer step (`DINOv2Criterion.step_center`) and the
EMA reaches every teacher part, the separate iBOT head included.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from dino_guard.plan import layer_decay_used, patch_embed_lr_mult_used

LIGHTLY_MIN_BLOCK = 4  # random_block_mask's min_num_masks_per_block: an image masks at least one block this big
LAYER_SCALE_INIT = 1e-5  # timm's init_values, as lightly's DINOv2 example and Meta's dinov2 use
# metrics.jsonl keys; ibot_masked_share: the share of global crops with masked patches (the iBOT term's scale)
EXTRA_KEYS = ("dino", "ibot", "koleo", "ibot_teacher_std", "ibot_teacher_entropy", "ibot_masked_share")
TERM_NAMES = {"dino": "DINO", "ibot": "iBOT", "koleo": "KoLeo"}


class DINOv2Model(nn.Module):
    """Masked ViT + DINO head (+ a separate iBOT head); one forward for everything a step needs.

    `backbone` is lightly's MaskedVisionTransformerTIMM (the timm ViT is `backbone.vit`).
    One forward, so DDP sees every parameter the step uses.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, ibot_head: nn.Module | None = None):
        super().__init__()
        self.backbone, self.head, self.ibot_head = backbone, head, ibot_head

    @property
    def patch_head(self) -> nn.Module:
        return self.ibot_head if self.ibot_head is not None else self.head

    def forward(self, global_crops: torch.Tensor, local_crops: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, mask_input: bool = True):
        """(class tokens, their head's output, masked patch tokens' head output, local crops' head output).

        `mask` (B, tokens) picks the patch tokens of the iBOT term; with `mask_input`
        (the student) they are replaced by the mask token first, the teacher sees the whole crop.
        """
        tokens = self.backbone.encode(global_crops, mask=mask if mask_input else None)
        cls = tokens[:, 0]
        patch_out = self.patch_head(tokens[mask]) if mask is not None else None
        local_out = self.head(self.backbone.encode(local_crops)[:, 0]) if local_crops is not None else None
        return cls, self.head(cls), patch_out, local_out


class DINOv2Criterion(nn.Module):
    """DINO + iBOT + KoLeo, each from lightly (built in dino_guard.models); the terms stay apart for metrics."""

    def __init__(self, dino: nn.Module, ibot: nn.Module, koleo: nn.Module, ibot_weight: float, koleo_weight: float):
        super().__init__()
        self.dino, self.ibot, self.koleo = dino, ibot, koleo
        self.ibot_weight, self.koleo_weight = ibot_weight, koleo_weight

    @property
    def center(self) -> torch.Tensor:
        return self.dino.center

    def step_center(self) -> None:
        """Both centres move once per optimizer step, from every micro-batch of it."""
        self.dino.step_center()
        self.ibot.step_center()


# -------------------------------------------------------------------- building


def backbone_args(setup) -> dict:
    """The backbone builder's arguments for DINOv2: LayerScale, and dynamic sizes for the local crops."""
    b = setup.model.backbone
    dynamic = True if b.dynamic_img_size is None else b.dynamic_img_size
    return {"init_values": LAYER_SCALE_INIT, "dynamic_img_size": dynamic}


def build_models(setup) -> tuple[DINOv2Model, DINOv2Model]:
    """Student and teacher; refuses a backbone that is not a timm ViT and a head that does not fit it."""
    from lightly.models.utils import deactivate_requires_grad

    from dino_guard import backbones
    from dino_guard.models.dinov2 import masked_vit
    from dino_guard.trainer.build import BuildError, create_backbone

    b = setup.model.backbone
    not_vit = BuildError(f"model.backbone.name: method: dinov2 trains a timm VisionTransformer (masked patch "
                         f"tokens); {b.name} is not one; use e.g. vit_small_patch14_dinov2, or method: dino")
    info = backbones.lookup(b.name)
    if b.name.startswith(backbones.TORCHVISION_PREFIX) or (info is not None and not info.is_vit_like):
        raise not_vit
    vit = create_backbone(b, **backbone_args(setup)).module
    if not all(hasattr(vit, part) for part in ("blocks", "patch_embed", "cls_token", "embed_dim")):
        raise not_vit
    width = vit.embed_dim
    h = setup.model.head
    if h.input_dim is not None and h.input_dim != width:
        raise BuildError(f"model.head.input_dim is {h.input_dim} but {b.name} outputs {width} features; "
                         f"write input_dim: {width} (or leave it out)")
    check_mask_fits(setup, vit)
    backbone = masked_vit(vit, antialias=False, pos_embed_initialization="skip",
                          weight_initialization="skip" if b.pretrained else "")
    heads = _heads(setup, width)
    student = DINOv2Model(backbone, *heads())
    teacher = DINOv2Model(copy.deepcopy(backbone), *heads())
    teacher.load_state_dict(student.state_dict())  # weight norm: heads are built, not deep-copied
    deactivate_requires_grad(teacher)
    return student, teacher


def check_mask_fits(setup, vit: nn.Module) -> None:
    """random_block_mask raises (a traceback mid-run) when an image's share of masked patches is below
    one block of 4; refuse that before the first step, with the numbers."""
    from dino_guard.trainer.build import BuildError

    size = setup.transform.global_crop_size if setup.transform else 224
    ph, pw = vit.patch_embed.patch_size
    patches = (size // ph) * (size // pw)
    low = setup.ibot.mask_ratio_min_max[0]
    if int(patches * low) < LIGHTLY_MIN_BLOCK:
        need = -(-LIGHTLY_MIN_BLOCK * 100 // patches) / 100
        raise BuildError(f"ibot.mask_ratio_min_max: the smallest mask is {low} x {patches} patches "
                         f"({size} px global crops, patch {ph}) = {int(patches * low)}, below lightly's "
                         f"random_block_mask block of {LIGHTLY_MIN_BLOCK} patches; raise the minimum to "
                         f"{min(need, 1.0)} or transform.global_crop_size")


def _heads(setup, width: int):
    from dino_guard.models.dinov2 import dinov2_head

    h, i = setup.model.head, setup.ibot

    def make():
        head = dinov2_head(input_dim=width, hidden_dim=h.hidden_dim, bottleneck_dim=h.bottleneck_dim,
                           output_dim=h.output_dim, batch_norm=h.batch_norm)
        if not i.separate_head:
            return head, None
        return head, dinov2_head(input_dim=width, hidden_dim=i.head.hidden_dim, bottleneck_dim=i.head.bottleneck_dim,
                                 output_dim=i.head.output_dim, batch_norm=h.batch_norm)

    return make


def ibot_output_dim(setup) -> int:
    """IBOTPatchLoss's width: ibot.output_dim, else the head the patch tokens go through."""
    i = setup.ibot
    return i.output_dim or (i.head.output_dim if i.separate_head else setup.model.head.output_dim)


def build_criterion(setup) -> DINOv2Criterion:
    from dino_guard.models.dinov2 import koleo_loss
    from dino_guard.models.loss import step_centered_ibot_loss
    from dino_guard.trainer.build import build_loss

    i = setup.ibot
    ibot = step_centered_ibot_loss(output_dim=ibot_output_dim(setup), teacher_temp=i.teacher_temp,
                                   student_temp=i.student_temp, center_momentum=i.center_momentum)
    return DINOv2Criterion(build_loss(setup), ibot, koleo_loss(), i.weight, setup.koleo.weight)


def layer_id(name: str, depth: int) -> int:
    """Meta's dinov2 layer ids: embeddings 0, block i -> i + 1, the rest (final norm, heads) depth + 1."""
    if name.startswith("backbone."):
        rest = name[len("backbone."):].removeprefix("vit.")
        if rest.startswith(("patch_embed", "pos_embed", "cls_token", "reg_token", "mask_token")):
            return 0
        if rest.startswith("blocks."):
            return int(rest.split(".")[1]) + 1
    return depth + 1


def param_groups(setup, model: DINOv2Model) -> list[dict]:
    """One group per (lr scale, weight decay on/off): lr x layer_decay^(depth + 1 - layer id),
    x patch_embed_lr_mult on the patch embedding; no weight decay on biases, norms and LayerScale."""
    depth = len(model.backbone.vit.blocks)
    decay, patch_mult = layer_decay_used(setup), patch_embed_lr_mult_used(setup)
    groups: dict = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        scale = decay ** (depth + 1 - layer_id(name, depth))
        if ".patch_embed." in f".{name}":
            scale *= patch_mult
        wd = 0.0 if p.ndim <= 1 or name.endswith(".bias") else 1.0
        groups.setdefault((scale, wd), {"params": [], "lr_scale": scale, "wd_scale": wd})["params"].append(p)
    return list(groups.values())


# -------------------------------------------------------------------- one micro-batch


def patch_mask(setup, model: DINOv2Model, global_crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(block mask (B, H, W), token mask (B, prefix + H*W)) for the global crops, as lightly's example builds them."""
    from dino_guard.models.dinov2 import block_mask, token_mask

    vit = model.backbone.vit
    ph, pw = vit.patch_embed.patch_size
    grid = (global_crops.shape[-2] // ph, global_crops.shape[-1] // pw)
    i = setup.ibot
    block = block_mask(len(global_crops), grid, i.mask_ratio_min_max, i.mask_sample_probability, global_crops.device)
    return block, token_mask(block, vit.num_prefix_tokens)


def forward_loss(setup, student: DINOv2Model, run_student, run_teacher, criterion: DINOv2Criterion,
                 global_crops: torch.Tensor, local_crops: torch.Tensor | None, teacher_temp: float, amp_dtype):
    """One micro-batch: (total loss, [dino, ibot, koleo] terms, teacher outputs of both heads for the statistics,
    the share of global crops with masked patches: teacher_stats.masked_image_share)."""
    from dino_guard.trainer.teacher_stats import masked_image_share

    n_global = 2
    block, mask = patch_mask(setup, student, global_crops)
    with torch.autocast(global_crops.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        with torch.no_grad():
            _, t_cls_out, t_patch_out, _ = run_teacher(global_crops, None, mask, False)
        s_cls, s_cls_out, s_patch_out, s_local_out = run_student(global_crops, local_crops, mask)
    teacher_out = list(t_cls_out.float().chunk(n_global))
    student_out = list(s_cls_out.float().chunk(n_global))
    if s_local_out is not None:
        student_out += list(s_local_out.float().chunk(len(s_local_out) // len(teacher_out[0])))
    dino = criterion.dino(teacher_out, student_out, teacher_temp=teacher_temp)
    ibot = criterion.ibot(t_patch_out.float(), s_patch_out.float(), block)
    koleo = sum(criterion.koleo(c) for c in s_cls.float().chunk(n_global))
    total = dino + criterion.ibot_weight * ibot + criterion.koleo_weight * koleo
    return (total, torch.stack([dino.detach(), ibot.detach(), koleo.detach()]), teacher_out[0], t_patch_out.float(),
            masked_image_share(block))


def head_stats(criterion: DINOv2Criterion, teacher_patch_out: torch.Tensor) -> list:
    """The iBOT head's collapse signals (std, entropy) on the masked patch tokens, at the iBOT teacher temperature."""
    from dino_guard.trainer.teacher_stats import teacher_stats

    if len(teacher_patch_out) < 2:  # no masked token this micro-batch: nothing to measure
        nan = torch.tensor(float("nan"), device=teacher_patch_out.device)
        return [nan, nan]
    return teacher_stats(teacher_patch_out, criterion.ibot.center.value, criterion.ibot.teacher_temp)


def cancel_last_layer_gradients(setup, student: DINOv2Model, epoch: int) -> None:
    """model.head.freeze_last_layer for DINOv2 heads (lightly's DINOv2ProjectionHead has no such method)."""
    if epoch < setup.model.head.freeze_last_layer:
        for head in (student.head, student.ibot_head):
            if head is not None:
                for p in head.last_layer.parameters():
                    p.grad = None
