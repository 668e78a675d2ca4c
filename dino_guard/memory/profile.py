"""Measure a backbone's memory facts for the analytic estimator (scripts/gen_backbones.py).

One forward and backward of the backbone alone on the meta device, under the
same tracker and autocast emulation as the traced estimate, gives per
precision:

- fixed: bytes a forward keeps that do not grow with the batch (bf16 casts
  of the weights, cached once per autocast region);
- act: [resolution, bytes per image] kept for backward after the forward;
- bwd_ratio: what the backward needs on top of the kept activations while
  it runs (gradients of activations in flight), as a fraction of them.

Bytes per image come from the difference of two batch sizes, so nothing
that is constant per pass leaks into them.
"""

from __future__ import annotations

import torch

from dino_guard.memory.autocast import CudaAutocast
from dino_guard.memory.traced import DTYPES
from dino_guard.memory.tracker import AllocationTracker

SMALL_BATCH, LARGE_BATCH = 16, 32  # large enough that activations, not weight grads, set the peak


def _pass(model, batch: int, size: int, precision: str) -> tuple[int, int]:
    """(bytes kept after forward, extra peak during backward) for one pass."""
    tracker = AllocationTracker()
    for tensor in [*model.parameters(), *model.buffers()]:
        tracker.track(tensor, "weights")
    x = torch.empty(batch, 3, size, size, device="meta")
    with tracker:
        with CudaAutocast(DTYPES[precision]):
            tracker.phase = "act"
            out = model(x)
        kept = tracker.total
        tracker.peak = kept
        out.float().sum().backward()
    weights = sum(nbytes for nbytes, phase in tracker.live.values() if phase == "weights")
    for p in model.parameters():
        p.grad = None
    return kept - weights, tracker.peak - kept


def profile(model, precision: str, sizes: list[int]) -> dict:
    """Memory facts of one backbone in one precision (see module doc)."""
    top = max(sizes)
    kept_s, bwd_s = _pass(model, SMALL_BATCH, top, precision)
    kept_l, bwd_l = _pass(model, LARGE_BATCH, top, precision)
    span = LARGE_BATCH - SMALL_BATCH
    act_top, bwd_top = (kept_l - kept_s) / span, max(0.0, (bwd_l - bwd_s) / span)
    fixed = kept_s - SMALL_BATCH * act_top
    act = [[top, round(act_top)]]
    for size in sorted(set(sizes) - {top}):
        kept, _ = _pass(model, SMALL_BATCH, size, precision)
        act.append([size, round((kept - fixed) / SMALL_BATCH)])
    # The backward's in-flight bytes scale with the activations they are
    # gradients of, so one resolution gives the ratio for all of them.
    return {"fixed": round(fixed), "act": sorted(act), "bwd_ratio": round(bwd_top / act_top, 4) if act_top else 0.0}
