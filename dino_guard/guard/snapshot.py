"""The last finite weights, for `on_stop`: the guard reads the loss one step late, so when it
stops on a NaN the NaN step has already been applied to the user's weights.

With `on_stop` given, the guard keeps two copies of the watched modules' floating-point
parameters and buffers, taken (on the device, no host wait) as each step ends: the copy
tagged step N holds the weights that produced step N's loss. With iBOT/KoLeo watched and no
optimizer step to hook, a step ends at the next DINO call, after the user's update: that copy
is of the next step's weights, so three are kept (a stop at step S is read while step S+1
ends, and the copy of step S-1 is then the third newest). On a stop whose
weights are not all finite, `restore` copies back the newest copy of a step before the
stopping one whose weights are finite (its loss was checked and finite), so `on_stop`
saves a state that can be resumed, as `dino-guard train` never saves non-finite weights.
The optimizer's state is not kept.
"""

from __future__ import annotations

import torch
from torch import nn


def watched_tensors(modules: list[nn.Module]) -> list[torch.Tensor]:
    """Every floating-point parameter and buffer of `modules`, each once."""
    seen, tensors = set(), []
    for module in modules:
        for t in [*module.parameters(), *module.buffers()]:
            if t.is_floating_point() and id(t) not in seen and t.device.type != "meta":
                seen.add(id(t))
                tensors.append(t)
    return tensors


def all_finite(tensors: list[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


class LastFinite:
    """Device copies (`copies` of them) of the watched weights, tagged with the step whose loss they produce."""

    def __init__(self, modules: list[nn.Module], copies: int = 2):
        self.tensors, self.count = watched_tensors(modules), copies
        self.copies: list[tuple[int, list[torch.Tensor]]] = []  # (step, copies), oldest first

    def keep(self, step: int) -> None:
        """Copy the weights now in the modules: the ones that produce the loss of `step`."""
        if not self.tensors:
            return
        if len(self.copies) < self.count:
            buffers = [torch.empty_like(t) for t in self.tensors]
        else:
            buffers = self.copies.pop(0)[1]  # reuse the oldest copy's memory
        with torch.no_grad():
            torch._foreach_copy_(buffers, [t.detach() for t in self.tensors])
        self.copies.append((step, buffers))

    def restore(self, stopping_step: int) -> int | None:
        """Put back the newest finite copy of a step before `stopping_step` when the weights are not finite.

        Returns the step whose weights the modules now hold (None: left as they were).
        """
        if not self.tensors or all_finite(self.tensors):
            return None
        for step, buffers in reversed(self.copies):
            if step < stopping_step and all_finite(buffers):
                with torch.no_grad():
                    torch._foreach_copy_(self.tensors, buffers)
                return step
        return None
