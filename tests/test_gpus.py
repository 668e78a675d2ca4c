"""GPU catalog: lenient names, ambiguity, and the reserve calibrated on the measured H100 steps."""

import csv
from pathlib import Path

import pytest

from dino_guard import gpus

CSV = Path(__file__).parent / "memory" / "h100_dino_memory.csv"


@pytest.mark.parametrize("name, expected", [
    ("H100-80GB", "H100-80GB"), ("h100 80gb", "H100-80GB"), ("NVIDIA H100 80GB HBM3", "H100-80GB"),
    ("H100", "H100-80GB"), ("A100-40GB", "A100-40GB"), ("a100_80gb", "A100-80GB"),
    ("NVIDIA A100-SXM4-80GB", "A100-80GB"), ("RTX-4090", "RTX-4090-24GB"), ("RTX 4090", "RTX-4090-24GB"),
    ("NVIDIA GeForce RTX 4090", "RTX-4090-24GB"), ("V100-16GB", "V100-16GB"), ("v100 32g", "V100-32GB"),
    ("A6000", "RTX-A6000-48GB"), ("RTX A6000", "RTX-A6000-48GB"), ("Tesla T4", "T4-16GB"),
    ("l40s", "L40S-48GB"), ("L4", "L4-24GB"), ("A10", "A10-24GB"), ("h200", "H200-141GB"),
])
def test_names_match_leniently(name, expected):
    assert gpus.resolve(name).name == expected


@pytest.mark.parametrize("name", ["A100", "V100", "nvidia a100"])
def test_ambiguous_names_list_the_choices(name):
    with pytest.raises(gpus.GpuError, match="ambiguous.*-40GB|ambiguous.*-16GB"):
        gpus.resolve(name)


def test_unknown_name_suggests_and_lists_the_catalog():
    with pytest.raises(gpus.GpuError) as exc:
        gpus.resolve("H1000")
    message = str(exc.value)
    assert "did you mean H100-80GB" in message
    assert all(name in message for name in gpus.catalog_names())
    assert "gpu_memory_gb" in message


def test_every_catalog_name_resolves_to_itself():
    for gpu in gpus.CATALOG:
        assert gpus.resolve(gpu.name) is gpu


def test_capacity_is_total_minus_context_and_usable_keeps_the_measured_edge_reserve():
    h100 = gpus.resolve("H100-80GB")
    assert h100.total_bytes == 85_017_493_504  # measured on an H100 80GB HBM3
    assert h100.capacity_bytes == h100.total_bytes - gpus.CUDA_CONTEXT_BYTES
    assert h100.usable_bytes == int(h100.capacity_bytes / (1 + gpus.EDGE_RESERVE))


GIB = 2**30


@pytest.mark.parametrize("allocated_gib, reserve", [(72.2, 0.035), (72.2, 0.056), (71.4, 0.035), (71.4, 0.056)])
def test_the_steps_measured_at_the_edge_fit_with_their_measured_reserve(allocated_gib, reserve):
    # ResNet-50 bf16 batch 512 (72.2 GiB) and ViT-S/16 fp32 batch 384 (71.4 GiB) ran on the H100,
    # with reserved 3.5-5.6% above allocated: both are `fits`, and what they reserved fits the card.
    h100 = gpus.resolve("H100-80GB")
    assert h100.verdict(int(allocated_gib * GIB)) == gpus.FITS
    assert allocated_gib * GIB * (1 + reserve) <= h100.capacity_bytes


def test_three_verdicts_at_the_edges():
    h100 = gpus.resolve("H100-80GB")
    assert h100.verdict(h100.usable_bytes) == gpus.FITS
    assert h100.verdict(h100.usable_bytes + 1) == gpus.TIGHT
    assert h100.verdict(h100.capacity_bytes) == gpus.TIGHT
    assert h100.verdict(h100.capacity_bytes + 1) == gpus.DOES_NOT_FIT


def test_reserve_covers_every_measured_ok_row():
    # what the GPU really held at the peak (reserved, not just allocated) fits
    h100 = gpus.resolve("H100-80GB")
    rows = [r for r in csv.DictReader(CSV.open()) if r["status"] == "ok"]
    assert all(int(r["peak_allocated_bytes"]) <= h100.usable_bytes for r in rows)
    assert max(int(r["peak_reserved_bytes"]) for r in rows) <= h100.total_bytes - gpus.CUDA_CONTEXT_BYTES


def test_memory_only_cards():
    gpu = gpus.from_memory_gb(48)
    assert gpu.total_bytes == 48 * 2**30 and 0 < gpu.usable_bytes < gpu.total_bytes
    with pytest.raises(gpus.GpuError):
        gpus.from_memory_gb(0)
