"""DG104's throughput estimate reproduces the calibration's measured points."""

from __future__ import annotations

import pytest

from dino_guard.gpus import CATALOG
from dino_guard.rules.augment import ANCHOR_PARAMS, GPU_TFLOPS, gpu_images_per_s


@pytest.mark.parametrize("precision,compiled,measured",
                         [("bf16", False, 928), ("fp32", False, 308), ("bf16", True, 1370)])
def test_h100_vit_small_is_the_measured_rate(precision, compiled, measured):
    assert gpu_images_per_s("H100-80GB", ANCHOR_PARAMS, precision, compiled) == pytest.approx(measured)


def test_resnet50_by_parameters_is_near_its_measured_rate():
    # ResNet-50 (23,508,032 parameters) measured 799 images/s, same H100, bf16.
    assert gpu_images_per_s("h100", 23_508_032, "bf16", False) == pytest.approx(799, rel=0.1)


def test_every_catalog_gpu_has_a_tflops_entry_and_unknown_names_give_none():
    assert {g.name for g in CATALOG} == set(GPU_TFLOPS)
    assert gpu_images_per_s("no such card", ANCHOR_PARAMS, "bf16", False) is None
