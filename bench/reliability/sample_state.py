"""A small, well-formed checkpoint body (what `loop.save` hands to `save_atomic`), the benchmarks' input.

The benchmarks keep their own copy (tests/trainer/helpers.py has the tests'):
bench/ never imports from tests/.
"""

import torch


def checkpoint_state(step: int = 3) -> dict:
    w = torch.arange(64, dtype=torch.float32).reshape(8, 8)
    return {"student": {"w": w}, "teacher": {"w": w.clone()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999)}]},
            "scaler": {}, "loss": {"center": torch.zeros(1, 8)},
            "monitor": {"losses": [1.5], "min_smoothed": float("inf")},
            "rng": {"torch": torch.get_rng_state()}, "step": step, "epoch": 0, "micro_batches_done": step,
            "knn_top1_init": 12.5, "setup": {"train": {"batch_size": 8}}, "world_size": 1}
