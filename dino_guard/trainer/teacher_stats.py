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
