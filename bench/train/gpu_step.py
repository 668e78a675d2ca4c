"""DINO training speed of dino-guard's trainer on one GPU (written for an H100).

ViT-S/16, 2 x 224 px global + 6 x 96 px local crops, bf16 autocast, fused AdamW,
the trainer's own step (dino_guard.trainer.loop.forward_loss / optimizer_step:
batched multi-crop, one center update, EMA):

1. GPU step alone: inputs already on the GPU, median step time (as
   ../../shared/calibration/README.md measured: 928 images/s at batch 64
   without compile, 1752 at batch 128 with compile).
2. End to end: `dino_guard.trainer.loop.train` (the `dino-guard train` code)
   on the built-in shapes data set, DINOTransform in DataLoader workers.

Needs only torch, timm, lightly and dino_guard. Prints one JSON object.

    python bench/train/gpu_step.py                 # everything (about 5 minutes)
    python bench/train/gpu_step.py --only step     # the GPU step alone
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import torch  # noqa: E402

from dino_guard.schemas import Setup  # noqa: E402
from dino_guard.trainer.build import build_loss, build_models, build_optimizer  # noqa: E402
from dino_guard.trainer.loop import Options, forward_loss, optimizer_step, train  # noqa: E402

SMOKE = False  # --smoke: a tiny model on the CPU, to check the script itself


def vit_s_setup(batch: int, compile: bool, workers: int, size: int = 4000) -> Setup:
    if SMOKE:
        return Setup.model_validate({
            "data": {"synthetic": "shapes", "size": 64, "num_workers": workers},
            "transform": {"global_crop_size": 32, "local_crop_size": 16, "n_local_views": 6},
            "model": {"backbone": {"name": "test_vit", "dynamic_img_size": True},
                      "head": {"hidden_dim": 32, "bottleneck_dim": 16, "output_dim": 64}},
            "loss": {"output_dim": 64, "warmup_teacher_temp_epochs": 0},
            "train": {"batch_size": batch, "precision": "bf16", "compile": compile},
            "monitor": {"enabled": False}, "eval": {"holdout_fraction": 0.25}})
    return Setup.model_validate({
        "data": {"synthetic": "shapes", "size": size, "num_workers": workers},
        "transform": {"global_crop_size": 224, "local_crop_size": 96, "n_local_views": 6},
        "model": {"backbone": {"name": "vit_small_patch16_224", "dynamic_img_size": True},
                  "head": {"hidden_dim": 2048, "bottleneck_dim": 256, "output_dim": 65536, "freeze_last_layer": 1}},
        "loss": {"output_dim": 65536, "warmup_teacher_temp_epochs": 0},
        "optimizer": {"name": "adamw", "lr": 0.0005, "warmup_epochs": 0},
        "train": {"epochs": 100, "batch_size": batch, "precision": "bf16", "compile": compile, "seed": 0},
        "monitor": {"enabled": False},
        "eval": {"holdout_fraction": 0.01},
    })


DEVICE = torch.device("cuda")


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def gpu_step(batch: int, compile: bool, steps: int = 20, warmup: int = 5) -> dict:
    """Median images/s of the trainer's step with inputs already on the GPU."""
    torch.manual_seed(0)
    setup = vit_s_setup(batch, compile, 0)
    device = DEVICE
    student, teacher = build_models(setup)
    student.to(device)
    teacher.to(device)
    loss_fn = build_loss(setup).to(device)
    optimizer = build_optimizer(setup, student, device)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    run_student, run_teacher = (torch.compile(student), torch.compile(teacher)) if compile else (student, teacher)
    g, local = setup.transform.global_crop_size, setup.transform.local_crop_size
    global_crops = torch.randn(2 * batch, 3, g, g, device=device)
    local_crops = torch.randn(6 * batch, 3, local, local, device=device)
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times = []
    for i in range(warmup + steps):
        sync()
        t0 = time.perf_counter()
        loss, _ = forward_loss(run_student, run_teacher, loss_fn, global_crops, local_crops, 0.04, torch.bfloat16)
        scaler.scale(loss).backward()
        optimizer_step(student, teacher, optimizer, scaler, loss_fn, 3.0, 1, 0.996)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    return {"batch": batch, "compile": compile, "step_ms": round(1000 * med, 1),
            "images_per_s": round(batch / med, 1),
            "peak_allocated_gib": (round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda"
                                   else None)}


def end_to_end(batch: int, compile: bool, steps: int, workers: int) -> dict:
    """images/s of the real training loop, data loading and augmentation included."""
    setup = vit_s_setup(batch, compile, workers, size=max(4000, batch * (steps + 2)))
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = train(setup, Options(output_dir=Path(out), max_steps=steps, device=DEVICE.type, log=lambda s: None))
        wall = time.perf_counter() - t0
        rows = [json.loads(x) for x in (Path(out) / "metrics.jsonl").read_text().splitlines()]
    later = rows[len(rows) // 4:]  # past compile and worker start-up
    return {"batch": batch, "compile": compile, "steps": steps, "workers": workers,
            "images_per_s": round(statistics.median(r["images_per_s"] for r in later), 1),
            "data_wait_pct": round(100 * statistics.mean(r["data_wait"] for r in later), 1),
            "wall_s_incl_setup_and_knn": round(wall, 1), "final_loss": result.summary["final_loss"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", choices=["step", "e2e"])
    p.add_argument("--e2e-steps", type=int, default=40)
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    p.add_argument("--smoke", action="store_true", help="tiny model on the CPU: checks the script, measures nothing")
    args = p.parse_args()
    global SMOKE, DEVICE
    if args.smoke:
        SMOKE, DEVICE = True, torch.device("cpu")
    torch.backends.cuda.matmul.allow_tf32 = False  # as the calibration runs
    report = {"device": torch.cuda.get_device_name() if DEVICE.type == "cuda" else "cpu", "torch": torch.__version__}
    b1, b2 = (4, 8) if SMOKE else (64, 128)
    if args.only in (None, "step"):
        report["gpu_step"] = [gpu_step(b1, False), gpu_step(b2, not SMOKE)]
    if args.only in (None, "e2e"):
        report["end_to_end"] = [end_to_end(b1, False, args.e2e_steps, args.workers),
                                end_to_end(b2, not SMOKE, args.e2e_steps, args.workers)]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
