"""Accuracy and speed of `dino-guard estimate`; writes bench/estimate/RESULTS.md.

    .venv/bin/python bench/estimate/bench.py            # everything (a few minutes on 2 cores)
    .venv/bin/python bench/estimate/bench.py --speed    # only the timings

1. Both methods against every measured H100 step (tests/memory/h100_dino_memory.csv).
2. Generalization: analytic against traced on backbones, heads, crops and
   batches that are not in the CSV (the analytic facts come from backbone-only
   traces, so agreement on whole DINO steps checks the physics, not a fit).
3. Speed: traced ViT-B/16, 2x224 + 10x96 crops, batch 128, on one CPU thread;
   analytic for the same setup.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dino_guard import backbones  # noqa: E402
from dino_guard.memory import analytic  # noqa: E402
from dino_guard.memory.calibration import load_rows  # noqa: E402
from dino_guard.memory.spec import MemorySpec  # noqa: E402

CSV = ROOT / "tests" / "memory" / "h100_dino_memory.csv"
RESULTS = Path(__file__).with_name("RESULTS.md")
GB = 1e9

GENERALIZATION = [
    MemorySpec("convnext_tiny", 64, "bf16"),
    MemorySpec("convnext_small", 32, "fp32", n_local_views=8),
    MemorySpec("convnext_base", 48, "bf16", global_crop_size=192, local_crop_size=80, output_dim=16384),
    MemorySpec("efficientnet_b0", 128, "bf16"),
    MemorySpec("efficientnet_b3", 48, "fp32", global_crop_size=256, local_crop_size=112, head_batch_norm=True),
    MemorySpec("regnety_016", 128, "bf16", n_local_views=10),
    MemorySpec("regnety_032", 64, "fp32", output_dim=4096, head_hidden_dim=4096),
    MemorySpec("resnet101", 96, "bf16", head_batch_norm=True),
    MemorySpec("wide_resnet50_2", 48, "fp32", n_local_views=4),
    MemorySpec("mobilenetv3_large_100", 256, "bf16"),
    MemorySpec("swin_tiny_patch4_window7_224", 64, "bf16"),
    MemorySpec("deit_small_patch16_224", 96, "bf16", n_local_views=8, output_dim=32768),
    MemorySpec("vit_small_patch14_dinov2", 64, "bf16", local_crop_size=98),
    MemorySpec("vit_base_patch14_reg4_dinov2", 32, "fp32", local_crop_size=98, head_bottleneck_dim=384),
    MemorySpec("vit_base_patch8_224", 8, "bf16"),
    MemorySpec("vit_large_patch16_224", 160, "bf16", n_local_views=10),
    MemorySpec("torchvision/resnet50", 64, "bf16"),
    MemorySpec("torchvision/efficientnet_b0", 96, "fp32"),
    MemorySpec("torchvision/convnext_tiny", 48, "bf16", n_local_views=0),
    MemorySpec("vit_small_patch16_224", 256, "bf16", global_crop_size=160, local_crop_size=64),
]


def analytic_peak(spec: MemorySpec) -> int:
    return analytic.estimate(spec, backbones.lookup(spec.backbone)).peak_allocated_bytes


def describe(spec: MemorySpec) -> str:
    crops = " + ".join(f"{n}x{s}" for n, s in spec.views)
    head = f"{spec.head_hidden_dim}/{spec.head_bottleneck_dim}/{spec.output_dim}{' BN' if spec.head_batch_norm else ''}"
    return f"{spec.backbone} b{spec.batch_size} {spec.precision} {crops} head {head}"


def summary(errors: list[float]) -> str:
    absolute = [abs(e) for e in errors]
    return f"median |error| {statistics.median(absolute):.2%}, max {max(absolute):.2%} over {len(errors)} setups"


def calibration_section(traced) -> list[str]:
    lines = ["## 1. Against the measured H100 steps", "",
             "| setup | measured GB | traced GB | error | analytic GB | error |", "|---|---:|---:|---:|---:|---:|"]
    t_err, a_err = [], []
    for row in load_rows(CSV):
        a = analytic_peak(row.spec)
        if row.status != "ok":
            t = traced.estimate(row.spec).peak_allocated_bytes
            lines.append(f"| {row.label} | OOM | {t / GB:.1f} | - | {a / GB:.1f} | - |")
            continue
        t = traced.estimate(row.spec).peak_allocated_bytes
        m = row.peak_allocated_bytes
        t_err.append(t / m - 1)
        a_err.append(a / m - 1)
        lines.append(f"| {row.label} | {m / GB:.2f} | {t / GB:.2f} | {t / m - 1:+.1%} | "
                     f"{a / GB:.2f} | {a / m - 1:+.1%} |")
    return lines + ["", f"- traced: {summary(t_err)}", f"- analytic: {summary(a_err)}", ""]


def generalization_section(traced) -> list[str]:
    lines = ["## 2. Setups not in the CSV: analytic against traced", "",
             "| setup | traced GB | analytic GB | difference |", "|---|---:|---:|---:|"]
    errors = []
    for spec in GENERALIZATION:
        t, a = traced.estimate(spec).peak_allocated_bytes, analytic_peak(spec)
        errors.append(a / t - 1)
        lines.append(f"| {describe(spec)} | {t / GB:.2f} | {a / GB:.2f} | {a / t - 1:+.1%} |")
    return lines + ["", f"- analytic vs traced: {summary(errors)}", ""]


def speed_section(traced) -> list[str]:
    import torch

    torch.set_num_threads(1)
    spec = MemorySpec("vit_base_patch16_224", 128, "bf16", n_local_views=10)
    traced.estimate(MemorySpec("vit_tiny_patch16_224", 8))  # warm the imports
    runs = []
    for _ in range(3):
        start = time.perf_counter()
        traced.estimate(spec)
        runs.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(1000):
        analytic_peak(spec)
    per_analytic = (time.perf_counter() - start) / 1000
    return ["## 3. Speed", "", f"{describe(spec)}, one CPU thread (torch.set_num_threads(1)):", "",
            f"- traced: median {statistics.median(runs):.2f} s of 3 runs (min {min(runs):.2f} s); requirement < 10 s",
            f"- analytic: {per_analytic * 1e3:.3f} ms per estimate (mean of 1000); requirement < 50 ms", ""]


def gpu_section(traced, path: Path) -> list[str]:
    """Both methods against measurements made by gpu_validate.py on a real GPU."""
    import json

    lines = [f"## 4. Setups not in the CSV, measured on a GPU ({path.name})", "",
             "| setup | measured GB | traced GB | error | analytic GB | error |", "|---|---:|---:|---:|---:|---:|"]
    t_err, a_err = [], []
    for row in json.loads(path.read_text()):
        spec = MemorySpec(**row["spec"])
        if row["status"] != "ok":
            lines.append(f"| {describe(spec)} | {row['status']} | | | | |")
            continue
        m, t, a = row["peak_allocated_bytes"], traced.estimate(spec).peak_allocated_bytes, analytic_peak(spec)
        t_err.append(t / m - 1)
        a_err.append(a / m - 1)
        lines.append(f"| {describe(spec)} | {m / GB:.2f} | {t / GB:.2f} | {t / m - 1:+.1%} | "
                     f"{a / GB:.2f} | {a / m - 1:+.1%} |")
    if t_err:
        lines += ["", f"- traced: {summary(t_err)}", f"- analytic: {summary(a_err)}"]
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speed", action="store_true", help="only the timings (printed, RESULTS.md untouched)")
    parser.add_argument("--gpu-results", type=Path,
                        help="JSON from gpu_validate.py: compare and print (RESULTS.md untouched)")
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore")
    from dino_guard.memory import traced

    if args.speed:
        print("\n".join(speed_section(traced)))
        return
    if args.gpu_results:
        print("\n".join(gpu_section(traced, args.gpu_results)))
        return
    import lightly
    import timm
    import torch  # noqa: E401

    header = ["# dino-guard estimate: accuracy and speed", "",
              f"Command: `.venv/bin/python bench/estimate/bench.py` on {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores (shared), torch {torch.__version__}, timm {timm.__version__}, "
              f"lightly {lightly.__version__}. The H100 measurements used torch 2.11, timm 1.0.29.", ""]
    gpu_note = ["## 4. Setups not in the CSV, on a real GPU", "",
                "Not measured yet: `python bench/estimate/gpu_validate.py > gpu_results.json` on a GPU machine",
                "(torch + timm only), then "
                "`.venv/bin/python bench/estimate/bench.py --gpu-results gpu_results.json`.", ""]
    sections = (header + calibration_section(traced) + generalization_section(traced) + speed_section(traced)
                + gpu_note)
    RESULTS.write_text("\n".join(sections))
    print("\n".join(sections))


if __name__ == "__main__":
    main()
