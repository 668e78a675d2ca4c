"""Fit the batch to a GPU: the largest per-device batch, and a batch/accumulation pair.

Torch-free: works with any `peak(batch) -> bytes` function. The peak grows
with the batch (more crops, more activations), almost linearly, so a few
secant steps land on the limit and one more evaluation confirms it; a
bisection takes over if they ever miss (the guess never has to be trusted).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

Peak = Callable[[int], int]
MAX_BATCH = 1 << 20  # beyond any GPU; stops the search on degenerate slopes


def max_batch_size(peak: Peak, usable_bytes: int, known: tuple[int, int] | None = None) -> int:
    """Largest batch whose peak fits `usable_bytes` (0 if not even batch 1)."""
    seen: dict[int, int] = {}

    def at(batch: int) -> int:
        if batch not in seen:
            seen[batch] = peak(batch)
        return seen[batch]

    if known:
        seen[known[0]] = known[1]
    b1 = known[0] if known else 1
    b2 = b1 * 2 if b1 < 64 else b1 // 2
    for _ in range(8):  # secant steps on the (nearly linear) peak
        slope = (at(b2) - at(b1)) / (b2 - b1)
        if slope <= 0:
            return MAX_BATCH if at(b1) <= usable_bytes else 0
        guess = max(1, min(MAX_BATCH, math.floor(b2 + (usable_bytes - at(b2)) / slope)))
        if guess in seen:
            b2 = guess
            break
        b1, b2 = b2, guess
    return _settle(at, usable_bytes, b2)


def _settle(peak: Peak, usable_bytes: int, guess: int) -> int:
    """Confirm the guess: bracket the limit around it, then bisect."""
    fits = peak(guess) <= usable_bytes
    low, high = (guess, None) if fits else (0, guess)
    if fits:  # the limit is at or above the guess: check one more than it
        if guess == MAX_BATCH or peak(guess + 1) > usable_bytes:
            return guess
        low, high = guess + 1, min(MAX_BATCH, guess * 2 + 1)
        while high < MAX_BATCH and peak(high) <= usable_bytes:
            low, high = high, min(MAX_BATCH, high * 2)
    if not fits and guess > 1 and peak(guess - 1) <= usable_bytes:
        return guess - 1
    while high - low > 1:  # invariant: low fits (or is 0), high does not
        mid = (low + high) // 2
        low, high = (mid, high) if peak(mid) <= usable_bytes else (low, mid)
    return low


@dataclass(frozen=True)
class BatchPlan:
    batch_size: int
    accumulate_grad_batches: int
    exact: bool  # True: batch x accumulation equals the requested per-device effective batch


def plan(batch_size: int, accumulate: int, max_batch: int) -> BatchPlan | None:
    """The batch/accumulation pair that fits and keeps batch x accumulation per device.

    Keeps the setup's pair when it fits; otherwise the fewest accumulation
    steps that divide the effective batch into fitting micro-batches, or, when
    no divisor fits, the largest fitting batch with enough steps to reach at
    least the same effective batch. None when not even batch 1 fits.
    """
    if max_batch <= 0:
        return None
    if batch_size <= max_batch:
        return BatchPlan(batch_size, accumulate, True)
    total = batch_size * accumulate
    micro = _largest_divisor(total, max_batch, low=math.ceil(max_batch / 2))
    if micro is not None:  # a divisor far below the limit would waste the GPU
        return BatchPlan(micro, total // micro, True)
    return BatchPlan(max_batch, math.ceil(total / max_batch), False)


def _largest_divisor(total: int, high: int, low: int) -> int | None:
    """The largest divisor of `total` in [low, high], or None.

    Walks the micro-batch sizes (at most MAX_BATCH / 2 of them), never the
    accumulation steps: those run to total / max_batch, 10^15 for a batch of 10^18.
    """
    for micro in range(high, max(low, 1) - 1, -1):
        if total % micro == 0:
            return micro
    return None
