"""Tiny, deterministic DINO setups for trainer tests (CPU, seconds each), and how to run and read them.

Importing this module skips the importing test module where the train extra is missing."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lightly")
pytest.importorskip("timm")

from dino_guard.schemas import Setup  # noqa: E402
from dino_guard.trainer.metrics import TIMING_KEYS  # noqa: E402

TINY = {
    "data": {"synthetic": "shapes", "size": 96, "num_workers": 0},
    "transform": {"global_crop_size": 32, "local_crop_size": 16, "n_local_views": 2},
    "model": {"backbone": {"name": "test_vit", "dynamic_img_size": True, "feature_dim": 64, "patch_size": 16},
              "head": {"hidden_dim": 32, "bottleneck_dim": 16, "output_dim": 64}},
    "loss": {"output_dim": 64, "warmup_teacher_temp_epochs": 1, "warmup_teacher_temp": 0.04, "teacher_temp": 0.05},
    "optimizer": {"lr": 0.005, "warmup_epochs": 1, "clip_grad": 3.0},
    "teacher_momentum": {"start": 0.99, "end": 1.0},
    "train": {"epochs": 3, "batch_size": 8, "precision": "fp32", "seed": 0},
    "eval": {"holdout_fraction": 0.25},
}


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def tiny_setup(**over) -> Setup:
    return Setup.model_validate(merge(TINY, over))


def run(setup: Setup, out: Path, **kw):
    from dino_guard.trainer.loop import Options, train

    torch.set_num_threads(1)
    return train(setup, Options(output_dir=out, **{"log": lambda s: None, **kw}))


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data))
    return path


def cli(args: list, cwd: Path, timeout: int = 240, popen: bool = False):
    """Run `python -m dino_guard ...` in a subprocess with one thread (deterministic)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "dino_guard", *args]
    if popen:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def metrics(out: Path, drop=TIMING_KEYS) -> list:
    import json

    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [{k: v for k, v in r.items() if k not in drop} for r in rows]


def checkpoint_state(step: int = 3) -> dict:
    """A small, well-formed checkpoint body (what `loop.save` hands to `save_atomic`)."""
    w = torch.arange(64, dtype=torch.float32).reshape(8, 8)
    return {"student": {"w": w}, "teacher": {"w": w.clone()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999)}]},
            "scaler": {}, "loss": {"center": torch.zeros(1, 8)},
            "monitor": {"losses": [1.5], "min_smoothed": float("inf")},
            "rng": {"torch": torch.get_rng_state()}, "step": step, "epoch": 0, "micro_batches_done": step,
            "knn_top1_init": 12.5, "setup": {"train": {"batch_size": 8}}, "world_size": 1}


def class_folder(root, per_class: int = 14, classes=("a", "b")):
    """A labelled image folder (one subfolder a class) of small solid images."""
    from PIL import Image

    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (40, 40), (40 * c + 3 * i, 90, 200 - 5 * i)).save(root / name / f"{i}.png")
    return root


# method: dinov2 on the tiny setup: 64 px global crops are 4x4 patches, and lightly's block mask
# needs at least 4 patches per masked image, so the smallest mask is a quarter of the crop
DINOV2 = {"method": "dinov2", "transform": {"global_crop_size": 64, "local_crop_size": 32},
          "ibot": {"mask_ratio_min_max": [0.25, 0.5]}}


def dinov2_setup(**over) -> Setup:
    return tiny_setup(**merge(DINOV2, over))
