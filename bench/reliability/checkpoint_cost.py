"""What verification costs: a ViT-S-sized checkpoint (22M parameters, student + teacher + AdamW state).

    PYTHONPATH=. python bench/reliability/checkpoint_cost.py

Compares plain torch.save / torch.load with checkpoint.save_atomic (hash, fsync,
read back and verify, rename) / checkpoint.load (load and verify).
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import torch
from sample_state import checkpoint_state  # beside this script

from dino_guard.trainer import checkpoint


def vit_s_sized_state() -> dict:
    state = checkpoint_state()
    state["student"] = {f"p{i}": torch.randn(1_100_000) for i in range(20)}
    state["teacher"] = {k: v.clone() for k, v in state["student"].items()}
    state["optimizer"] = {"state": {i: {"exp_avg": torch.randn(1_100_000), "exp_avg_sq": torch.rand(1_100_000)}
                                    for i in range(20)}, "param_groups": []}
    return state


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    state, folder = vit_s_sized_state(), Path(tempfile.mkdtemp())
    try:
        plain_save = timed(lambda: (torch.save(state, folder / "plain.pt"), os.sync()))
        save = timed(lambda: checkpoint.save_atomic(state, folder / "last.pt"))
        plain_load = timed(lambda: torch.load(folder / "plain.pt", weights_only=True))
        load = timed(lambda: checkpoint.load(folder / "last.pt"))
        size = (folder / "last.pt").stat().st_size / 2**20
        print(f"{size:.0f} MiB: torch.save {plain_save:.2f} s, save_atomic {save:.2f} s; "
              f"torch.load {plain_load:.2f} s, checkpoint.load {load:.2f} s")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main()
