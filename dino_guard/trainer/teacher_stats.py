"""The teacher's collapse signals, one definition for `dino-guard train` and the guard.

Both feed these two numbers to the same Monitor (trainer/monitor.py): a fix
here is a fix in both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from lightly.utils.debug import std_of_l2_normalized  # imports matplotlib: once, here, not in a step


@torch.no_grad()
def teacher_stats(teacher_out: torch.Tensor, center: torch.Tensor, temp: float) -> list:
    """Collapse signals, as device scalars: std of l2-normalized outputs, mean entropy of the teacher.

    Both are taken after centering, on what the teacher's softmax sees: raw
    outputs carry a large common part that the center removes, and their std
    falls below DG503's floor in runs that learn well (the bug in
    test_dg503_is_measured_after_centering).
    """
    centered = teacher_out - center.reshape(1, -1)
    p = F.softmax(centered / temp, dim=-1)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum(-1).mean()
    return [std_of_l2_normalized(centered).float(), entropy.float()]


@torch.no_grad()
def masked_image_share(mask: torch.Tensor) -> torch.Tensor:
    """The share of images with at least one masked patch in a (B, H, W) iBOT mask, as a device scalar.

    lightly's IBOTPatchLoss averages each image's masked tokens and then divides
    by all B images: those without a masked patch (half of them with
    random_block_mask's default batch_mask_ratio 0.5) add 0. Its term is this
    share x the cross-entropy of a masked token, so a uniform iBOT head gives
    share x ln(K), never ln(K); the Monitor compares term / share with ln(K).
    """
    return mask.flatten(1).any(dim=1).float().mean()
