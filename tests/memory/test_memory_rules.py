"""DG601-DG603 beyond the fixtures: when they must stay silent, and what they suggest."""

import pytest

from dino_guard.check.engine import Context, run_rules
from dino_guard.rules.registry import get
from dino_guard.schemas import Setup

BIG = {
    "transform": {"global_crop_size": 224, "local_crop_size": 96, "n_local_views": 10},
    "model": {"backbone": {"name": "vit_base_patch16_224", "dynamic_img_size": True}},
    "train": {"batch_size": 512, "precision": "fp32"},
}


def codes(data, gpu=None):
    ctx = Context("setup.dino.yaml", Setup.model_validate(data))
    ctx.options.gpu = gpu
    rules = [get(code) for code in ("DG601", "DG602", "DG603")]
    return [f for f in run_rules(ctx, rules)]


def test_silent_without_a_gpu():
    assert codes(BIG) == []


def test_gpu_from_the_command_line_or_memory_size():
    assert [f.code for f in codes(BIG, gpu="H100-80GB")] == ["DG601"]
    assert [f.code for f in codes({**BIG, "hardware": {"gpu_memory_gb": 80}})] == ["DG601"]


def test_suggestion_keeps_the_effective_batch():
    (finding,) = codes(BIG, gpu="H100")
    assert "batch_size: 128 with accumulate_grad_batches: 4" in finding.help
    assert "512" in finding.message and "H100-80GB" in finding.message


def test_nothing_fits_says_so():
    # ViT-B weights, teacher and AdamW state alone are about 1.7 GB
    data = {**BIG, "train": {"batch_size": 8, "precision": "fp32"}, "hardware": {"gpu_memory_gb": 1.5}}
    (finding,) = codes(data)
    assert finding.code == "DG601" and "not even batch 1" in finding.help


@pytest.mark.parametrize("gpu", ["A100", "H1000"])
def test_bad_gpu_name_is_reported_once(gpu):
    assert [f.code for f in codes(BIG, gpu=gpu)] == ["DG603"]


def test_backbone_outside_the_table_is_left_to_estimate():
    data = {**BIG, "model": {"backbone": {"name": "eva02_base_patch14_224", "feature_dim": 768}}}
    assert codes(data, gpu="T4") == []
