"""The one builder of DINOv2's parts (torch): lightly's DINOv2ProjectionHead, IBOTPatchLoss,
KoLeoLoss and MaskedVisionTransformerTIMM, plus the block mask of the masked patch tokens.

Used by the traced memory estimate, the trainer and the guard alike, so the three build
the same modules with the same arguments (lightly's own signatures, lightly 1.6):

- ``DINOv2ProjectionHead(input_dim=2048, hidden_dim=2048, bottleneck_dim=256,
  output_dim=65536, batch_norm=False)``
- ``IBOTPatchLoss(output_dim=65536, teacher_temp=0.04, student_temp=0.1,
  center_mode="mean", center_momentum=0.9)``
- ``KoLeoLoss(p=2, eps=1e-8)``
- ``MaskedVisionTransformerTIMM(vit, mask_token=None, weight_initialization="",
  antialias=True, pos_embed_initialization="sincos")``
- ``random_block_mask(size=(B, H, W), batch_mask_ratio=0.5, min_image_mask_ratio=0.1,
  max_image_mask_ratio=0.5, ...)``
"""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

from dino_guard.models.head import WEIGHT_NORM_DEPRECATION


def _device(meta: bool):
    return torch.device("meta") if meta else contextlib.nullcontext()


def dinov2_head(meta: bool = False, **args) -> nn.Module:
    """lightly's DINOv2ProjectionHead(**args); on the meta device (no memory) when `meta`.

    Give `input_dim` explicitly: lightly's default is 2048 (a ResNet-50's width),
    not the ViT's embedding width (ViT-S/14 384, B/14 768, L/14 1024, g/14 1536).
    The same builder makes the DINO head and a separate iBOT head.
    """
    from lightly.models.modules import DINOv2ProjectionHead

    with _device(meta), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=WEIGHT_NORM_DEPRECATION, category=FutureWarning)
        return DINOv2ProjectionHead(**args)


def ibot_loss(meta: bool = False, **args) -> nn.Module:
    """lightly's IBOTPatchLoss(**args) (output_dim, teacher_temp, student_temp, center_mode,
    center_momentum); on the meta device when `meta`.

    Its `output_dim` must be the output width of the head the masked patch tokens
    go through (the DINO head when shared, the iBOT head when separate).
    """
    from lightly.loss import IBOTPatchLoss

    with _device(meta):
        return IBOTPatchLoss(**args)


def koleo_loss(**args) -> nn.Module:
    """lightly's KoLeoLoss(**args) (p, eps): no parameters or buffers, so no device.

    It needs at least 2 images per call (per device): with one image the only
    "nearest neighbour" is the image itself, the distance is 0, and the loss is the
    constant -log(eps) ~ 17 with no gradient (infinite on float16 tensors, dinov2#307).
    """
    from lightly.loss import KoLeoLoss

    return KoLeoLoss(**args)


def masked_vit(vit: nn.Module, meta: bool = False, **args) -> nn.Module:
    """lightly's MaskedVisionTransformerTIMM around a timm VisionTransformer (`vit`).

    `args` are the wrapper's own (mask_token, weight_initialization, antialias,
    pos_embed_initialization). The wrapper adds one mask token (embed_dim
    parameters); `vit` must already be on the device asked for (build it with
    models.backbone.build_backbone(meta=...)).
    """
    from lightly.models.modules import MaskedVisionTransformerTIMM

    with _device(meta):
        return MaskedVisionTransformerTIMM(vit=vit, **args)


def block_mask(batch: int, grid: tuple[int, int], mask_ratio_min_max: tuple[float, float],
               mask_sample_probability: float, device: torch.device | str | None = None) -> torch.Tensor:
    """lightly's random_block_mask for `batch` global crops of `grid` (H, W) patches:
    a boolean (batch, H, W) mask, True where a patch token is replaced by the mask token.

    `mask_sample_probability` of the crops are masked at all (lightly's batch_mask_ratio),
    each between min and max of its patches (the setup's ibot.mask_ratio_min_max).
    """
    from lightly.models.utils import random_block_mask

    low, high = mask_ratio_min_max
    return random_block_mask(size=(batch, *grid), batch_mask_ratio=mask_sample_probability,
                             min_image_mask_ratio=low, max_image_mask_ratio=high, device=device)


def set_drop_path(vit: nn.Module, drop_path_rate: float, mode: str = "uniform") -> None:
    """lightly's update_drop_path_rate on a timm ViT (Meta's DINOv2 uses uniform drop path)."""
    from lightly.models.utils import update_drop_path_rate

    update_drop_path_rate(vit, drop_path_rate=drop_path_rate, mode=mode)


def token_mask(mask: torch.Tensor, num_prefix_tokens: int) -> torch.Tensor:
    """The (B, H, W) patch mask as MaskedVisionTransformerTIMM's `mask=` wants it: (B, prefix + H*W),
    never masking the class and register tokens."""
    flat = mask.flatten(start_dim=1)
    return torch.nn.functional.pad(flat, (num_prefix_tokens, 0), value=False)
