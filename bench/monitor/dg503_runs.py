"""DG503 (dimensional collapse) on real tiny runs: per-step teacher std vs the floor, DINO loss, teacher entropy.

    PYTHONPATH=$PWD python bench/monitor/dg503_runs.py CASE STEPS [OUT]     (OUT default /tmp/dg503/runs)

Each case is `dino-guard train`'s loop on tests/trainer/helpers.py's tiny setups (CPU, a minute or two);
the run folder (metrics.jsonl) is what dg503_replay.py reads.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from tests.trainer.helpers import dinov2_setup, metrics, run, tiny_setup

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
