"""The DINOv2 builder makes lightly's parts with lightly's own arguments, quietly."""

from __future__ import annotations

import math
import warnings

import pytest

pytestmark = pytest.mark.torch


def test_dinov2_head_is_lightlys_and_quiet_about_weight_norm():
    import lightly.models.modules  # noqa: F401  (its own import warnings are not the head's)
    from lightly.models.modules import DINOv2ProjectionHead

    from dino_guard.models.dinov2 import dinov2_head

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        head = dinov2_head(meta=True, input_dim=384, hidden_dim=64, bottleneck_dim=32, output_dim=128)
    assert isinstance(head, DINOv2ProjectionHead)
    assert [str(w.message) for w in caught if "weight_norm" in str(w.message)] == []
    assert head.layers[0].in_features == 384 and head.last_layer.weight_v.shape == (128, 32)
    assert head.last_layer.weight_v.device.type == "meta"


def test_ibot_loss_center_has_the_output_dim():
    from lightly.loss import IBOTPatchLoss

    from dino_guard.models.dinov2 import ibot_loss

    loss = ibot_loss(output_dim=96, teacher_temp=0.07)
    assert isinstance(loss, IBOTPatchLoss) and loss.center.value.shape == (1, 96)


def test_koleo_loss_over_one_image_is_dead_in_fp32_and_infinite_in_half():
    """What the KoLeo rule warns about (dinov2#307): one image per call has only itself as neighbour."""
    import torch

    from dino_guard.models.dinov2 import koleo_loss

    loss = koleo_loss()
    one = torch.randn(1, 8, requires_grad=True)
    value = loss(one)
    value.backward()
    assert value.item() > 15 and one.grad.abs().max().item() == 0.0  # -log(eps): a constant, no gradient
    assert math.isinf(loss(torch.randn(1, 8).half()).item())
    assert math.isfinite(loss(torch.randn(2, 8)).item())


def test_masked_vit_wraps_a_timm_vit_and_masks_tokens():
    import torch

    from dino_guard.models.backbone import build_backbone
    from dino_guard.models.dinov2 import block_mask, masked_vit, token_mask

    vit = build_backbone("vit_tiny_patch16_224", dynamic_img_size=True, meta=False).module
    model = masked_vit(vit)
    mask = block_mask(2, (8, 8), (0.1, 0.5), 1.0)
    assert mask.shape == (2, 8, 8) and mask.any()
    tokens = model.encode(torch.randn(2, 3, 128, 128), mask=token_mask(mask, vit.num_prefix_tokens))
    assert tokens.shape == (2, 1 + 64, 192)


def test_set_drop_path_uses_lightlys_update_drop_path_rate():
    from dino_guard.models.backbone import build_backbone
    from dino_guard.models.dinov2 import set_drop_path

    vit = build_backbone("vit_tiny_patch16_224", meta=True).module
    set_drop_path(vit, 0.1)
    assert all(block.drop_path1.drop_prob == 0.1 for block in vit.blocks)
