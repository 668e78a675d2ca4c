"""DINOv2's memory: the analytic terms (iBOT on the masked patch tokens) held against the traced step.

No GPU here: the DINOv2 figures are checked traced-against-analytic, not yet against a measured run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dino_guard import backbones
from dino_guard.memory import analytic
from dino_guard.memory.spec import MemorySpec, spec_from_setup
from dino_guard.setupfile.loader import load_setup

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dinov2_vits14.dino.yaml"

DINOV2_SETUPS = [
    MemorySpec("vit_small_patch14_dinov2", 32, "bf16", local_crop_size=98, n_local_views=8, method="dinov2"),
    MemorySpec("vit_base_patch14_dinov2", 16, "bf16", local_crop_size=98, n_local_views=8, method="dinov2",
               ibot_separate_head=True, ibot_output_dim=32768),
    MemorySpec("vit_large_patch14_dinov2", 8, "fp32", local_crop_size=98, n_local_views=8, method="dinov2"),
]


def _analytic(spec: MemorySpec):
    return analytic.estimate(spec, backbones.lookup(spec.backbone))


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("spec", DINOV2_SETUPS, ids=lambda s: f"{s.backbone}-{s.precision}-sep{s.ibot_separate_head}")
def test_analytic_agrees_with_traced_within_3_percent_on_dinov2(spec, torch_extra):
    from dino_guard.memory import traced_dinov2

    t = traced_dinov2.estimate(spec)
    a = _analytic(spec)
    assert abs(a.peak_allocated_bytes / t.peak_allocated_bytes - 1) <= 0.03, (a.parts, t.parts)
    assert t.parts["ibot"] > 0 and a.parts["ibot"] > 0


def test_the_ibot_head_is_a_row_of_its_own_and_grows_with_the_masked_tokens():
    few = _analytic(MemorySpec("vit_small_patch14_dinov2", 32, local_crop_size=98, method="dinov2", masked_share=0.05))
    many = _analytic(MemorySpec("vit_small_patch14_dinov2", 32, local_crop_size=98, method="dinov2", masked_share=0.3))
    assert 0 < few.parts["ibot"] < many.parts["ibot"]
    assert "iBOT head and loss" in [label for label, _ in many.rows()]
    dino = _analytic(MemorySpec("vit_small_patch14_dinov2", 32, local_crop_size=98))
    assert dino.parts["ibot"] == 0 and "iBOT head and loss" not in [label for label, _ in dino.rows()]


def test_a_dinov2_setup_gives_its_ibot_part_to_the_spec():
    spec = spec_from_setup(load_setup(EXAMPLE).setup)
    assert spec.method == "dinov2" and not spec.ibot_separate_head and spec.koleo
    assert spec.masked_share == pytest.approx(0.5 * 0.3)  # Meta: half the crops, 10-50% of their patches
    assert spec.masked_tokens(256) == round(2 * 128 * 256 * 0.15)
