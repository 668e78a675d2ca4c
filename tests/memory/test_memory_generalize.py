"""The analytic physics on setups the CSV never saw, held against the traced estimate.

The analytic facts come from tracing each backbone alone; agreement on whole
DINO steps with other heads, crops, batches and precisions is what shows the
model is physics rather than a fit to the measured rows.
"""

import statistics

import pytest

from dino_guard import backbones
from dino_guard.memory import analytic
from dino_guard.memory.spec import MemorySpec

pytestmark = [pytest.mark.slow, pytest.mark.torch]

UNSEEN = [
    MemorySpec("convnext_tiny", 64, "bf16"),
    MemorySpec("efficientnet_b0", 96, "fp32", global_crop_size=256, local_crop_size=112, head_batch_norm=True),
    MemorySpec("regnety_016", 128, "bf16", n_local_views=10),
    MemorySpec("swin_tiny_patch4_window7_224", 32, "bf16", output_dim=16384),
    MemorySpec("vit_small_patch14_dinov2", 48, "fp32", local_crop_size=98, head_hidden_dim=4096),
    MemorySpec("torchvision/resnet50", 64, "bf16", n_local_views=0),
    MemorySpec("deit_small_patch16_224", 200, "bf16", global_crop_size=192, local_crop_size=80),
]


def test_analytic_agrees_with_traced_on_unseen_setups(torch_extra):
    from dino_guard.memory import traced

    errors = []
    for spec in UNSEEN:
        t = traced.estimate(spec).peak_allocated_bytes
        a = analytic.estimate(spec, backbones.lookup(spec.backbone)).peak_allocated_bytes
        errors.append(abs(a / t - 1))
    assert statistics.median(errors) <= 0.10
    assert max(errors) <= 0.20, dict(zip((s.backbone for s in UNSEEN), errors, strict=True))
