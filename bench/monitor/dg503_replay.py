"""Replay measured runs (metrics.jsonl under a folder of run folders) through the Monitor, default and QUICK
thresholds; prints the step DG503 would stop each run at.

    PYTHONPATH=$PWD python bench/monitor/dg503_replay.py [RUNS]     (RUNS default /tmp/dg503/runs)

To compare with an older monitor: `git show REV:dino_guard/trainer/monitor.py > /tmp/old/oldmon/monitor.py`
(plus an empty __init__.py), then run this with PYTHONPATH=$PWD:/tmp/old and DG503_MONITOR=oldmon.monitor.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

from dino_guard.schemas.setup import Monitor as MonitorCfg

Monitor = importlib.import_module(os.environ.get("DG503_MONITOR", "dino_guard.trainer.monitor")).Monitor
QUICK = {"grace_steps": 2, "collapse_window": 5, "divergence_window": 5, "patience": 5}


def first_dg503(rows: list, cfg: MonitorCfg, output_dim: int) -> str:
    mon = Monitor(cfg, output_dim)
    for i, r in enumerate(rows):
        after_lr_warmup = i > 0 and r["lr"] <= rows[i - 1]["lr"]  # as the guard reads it
        for e in mon.observe(r["step"], r.get("dino", r["loss"]), 1.0, r["teacher_std"], r["teacher_entropy"],
                             False, after_lr_warmup):
            if e.code == "DG503":
                return f"DG503 at step {r['step']}"
    return "quiet"


def main() -> None:
    for folder in sorted(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/dg503/runs").iterdir()):
        rows = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines() if x.strip()]
        output_dim = 256 if "synthetic" in folder.name else 64
        print(f"{folder.name} ({len(rows)} steps): default {first_dg503(rows, MonitorCfg(), output_dim)}, "
              f"QUICK {first_dg503(rows, MonitorCfg(**QUICK), output_dim)}")


if __name__ == "__main__":
    main()
