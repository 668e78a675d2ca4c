"""DG503 (dimensional collapse) on real tiny runs: per-step teacher std vs the floor, DINO loss, teacher entropy.

    PYTHONPATH=$PWD python bench/monitor/dg503_runs.py CASE STEPS [OUT]     (OUT default /tmp/dg503/runs)

Each case is `dino-guard train`'s loop on tiny.dino.yaml beside this script (the trainer tests' tiny setup;
CPU, a minute or two); the run folder (metrics.jsonl) is what dg503_replay.py reads.
"""

from __future__ import annotations

import copy
import json
import math
import sys
from pathlib import Path

import torch
import yaml

from dino_guard.schemas import Setup
from dino_guard.trainer.loop import Options, train

TINY = yaml.safe_load((Path(__file__).with_name("tiny.dino.yaml")).read_text())
# 64 px global crops are 4x4 patches: lightly's block mask needs at least 4 patches per masked image
DINOV2 = {"method": "dinov2", "transform": {"global_crop_size": 64, "local_crop_size": 32},
          "ibot": {"mask_ratio_min_max": [0.25, 0.5]}}


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def tiny_setup(**over) -> Setup:
    return Setup.model_validate(merge(TINY, over))


def dinov2_setup(**over) -> Setup:
    return tiny_setup(**merge(DINOV2, over))


def run(setup: Setup, out: Path, **options):
    torch.set_num_threads(1)
    return train(setup, Options(output_dir=out, log=lambda line: None, **options))


def metrics(out: Path) -> list:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]

QUICK = {"grace_steps": 2, "collapse_window": 5, "divergence_window": 5, "patience": 5}
OFF = {"enabled": False}
CASES = {  # true collapses first, then healthy LayerScale runs
    "collapse_no_center_lr5": lambda: tiny_setup(loss={"center_momentum": 1.0, "teacher_temp": 0.04}, monitor=QUICK,
                                                 optimizer={"lr": 5.0, "clip_grad": None, "warmup_epochs": 0},
                                                 train={"epochs": 20}),
    "dinov2_collapse_no_center_lr5": lambda: dinov2_setup(
        loss={"center_momentum": 1.0, "teacher_temp": 0.04}, monitor=QUICK,
        optimizer={"lr": 5.0, "clip_grad": None, "warmup_epochs": 0}, train={"epochs": 20}),
    "dinov2_no_center_lr1e-3_nomon": lambda: dinov2_setup(loss={"center_momentum": 1.0}, monitor=OFF,
                                                          optimizer={"lr": 1e-3, "warmup_epochs": 0},
                                                          train={"epochs": 10}),
    "dinov2_layerscale_const_lr1e-3": lambda: dinov2_setup(optimizer={"lr": 1e-3, "warmup_epochs": 0},
                                                           train={"epochs": 10}),
    "dinov2_layerscale_ema0.9995": lambda: dinov2_setup(optimizer={"lr": 1e-3, "warmup_epochs": 0},
                                                        teacher_momentum={"start": 0.9995, "end": 1.0},
                                                        train={"epochs": 10}),
}


def main() -> None:
    name, steps = sys.argv[1], int(sys.argv[2])
    out = Path(sys.argv[3] if len(sys.argv) > 3 else "/tmp/dg503/runs") / name
    out.mkdir(parents=True, exist_ok=True)
    setup = CASES[name]()
    result = run(setup, out, max_steps=steps)
    k = setup.loss.output_dim
    floor = setup.monitor.min_teacher_std / math.sqrt(k)
    print(f"{name}: stopped_by={result.summary.get('stopped_by')} steps={result.summary.get('steps')} "
          f"floor={floor:.2e} ln K={math.log(k):.3f}")
    for r in metrics(out):
        loss = r.get("dino", r["loss"])
        print(f"{r['step']:3d} std={r['teacher_std']:.2e} loss={loss:.3f} entropy={r['teacher_entropy']:.3f}")
    for e in result.events:
        print(e.code, e.message)


if __name__ == "__main__":
    main()
