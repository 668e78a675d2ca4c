"""Reading a step's numbers one step late, so no step waits for the device.

A step's loss and teacher statistics are copied to the host without a sync
when it is queued; they are read while the next step already runs (the
reference trainer's loop and the runtime guard both work this way). On the
CPU the copy is the tensor itself and reading never waits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import torch


def to_host_later(values: torch.Tensor) -> tuple[torch.Tensor, torch.cuda.Event | None]:
    """Start the device->host copy now; `ready` (None off CUDA) says when it has landed."""
    if values.device.type != "cuda":
        return values, None
    host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
    host.copy_(values, non_blocking=True)
    ready = torch.cuda.Event()
    ready.record()
    return host, ready


@dataclass
class LateStep:
    """A queued step whose numbers may still be on their way to the host."""

    step: int
    values: torch.Tensor  # on the host once `ready` has fired
    ready: torch.cuda.Event | None

    def numbers(self) -> list[float]:
        """The step's numbers; waits for their copy only if it has not landed yet."""
        if self.ready is not None:
            self.ready.synchronize()
        return self.values.tolist()


T = TypeVar("T", bound=LateStep)


class OneStepLate(Generic[T]):
    """One queued step: each new step hands back the one before it, to be read now."""

    def __init__(self) -> None:
        self.queued: T | None = None

    def push(self, step: T) -> T | None:
        previous, self.queued = self.queued, step
        return previous

    def take(self) -> T | None:
        """The queued step, read at the end of the run (or before a checkpoint)."""
        previous, self.queued = self.queued, None
        return previous
