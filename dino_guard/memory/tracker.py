"""Count bytes on the meta device the way CUDA's caching allocator would.

Tensors on the meta device have shapes, dtypes and storages but no data, so
a whole training step runs in a second without a GPU. This dispatch mode sees
every aten op below autograd (forward, backward and optimizer alike), starts
counting each new storage when an op returns it and stops when the storage
dies (a weakref callback: autograd's saved tensors keep it alive exactly as
on the GPU). Sizes are rounded like the allocator rounds its blocks, so the
running peak is what `torch.cuda.max_memory_allocated()` would report.
"""

from __future__ import annotations

import weakref
from collections import defaultdict

import torch
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode

from dino_guard.memory.physics import block_bytes, kernel_workspace_bytes


class AllocationTracker(TorchDispatchMode):
    """Live and peak bytes of meta storages, split by the phase that allocated them."""

    def __init__(self):
        super().__init__()
        self.phase = "weights"
        self.live: dict[int, tuple[int, str]] = {}  # id(storage) -> (bytes, phase)
        self.total = 0
        self.peak = 0
        self.peak_parts: dict[str, int] = {}

    def track(self, tensor: torch.Tensor, phase: str | None = None) -> None:
        if tensor.device.type != "meta":
            return  # CPU scalars (optimizer step counters) never reach the GPU allocator
        storage = tensor.untyped_storage()
        key = id(storage)
        if key in self.live or storage.nbytes() == 0:
            return
        nbytes = block_bytes(storage.nbytes())
        self.live[key] = (nbytes, phase or self.phase)
        self.total += nbytes
        weakref.finalize(storage, self._free, key)

    def _free(self, key: int) -> None:
        nbytes, _ = self.live.pop(key)
        self.total -= nbytes

    def note_peak(self, transient: int = 0) -> None:
        """Record the running peak; `transient` is what a kernel holds only while it runs."""
        if self.total + transient <= self.peak:
            return
        self.peak = self.total + transient
        parts = defaultdict(int)
        for nbytes, phase in self.live.values():
            parts[phase] += nbytes
        parts["workspace"] += transient
        self.peak_parts = dict(parts)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in pytree.tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.track(leaf)
        self.note_peak(kernel_workspace_bytes(func, args, out))
        return out
