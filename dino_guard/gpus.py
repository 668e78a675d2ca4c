"""GPU catalog: a name as users write it -> the bytes a training step may use.

Three figures per card, and three verdicts for a predicted peak of
allocated bytes (`torch.cuda.max_memory_allocated()`):

- total: what the CUDA driver reports (torch.cuda.mem_get_info()[1]); the
  H100 figure is measured, the others are the usual nvidia-smi totals in MiB.
- capacity = total - CUDA context: all the caching allocator can ever
  reserve. The context is 650,969,088 bytes, measured for an idle torch 2.11
  / CUDA 13 context on the H100 (other cards and versions differ by a few
  hundred MB).
- usable = capacity / (1 + EDGE_RESERVE): the peak allocation that still
  leaves room for the allocator's own reserve (blocks it holds but has not
  handed out: rounding and fragmentation).

The reserve is modelled from measurement, not a flat share. Far from the
edge the allocator keeps whatever it once cached (reserved over allocated
at the peak: median 5%, up to 41% for ResNet-18 at batch 256 in the 41
H100 steps of tests/memory/h100_dino_memory.csv), because nothing asks for
it back. At the edge a failing cudaMalloc makes it free its unused cached
blocks and retry, so only the fragmentation that survives that counts: in
the H100 steps measured at the edge (ResNet-50 bf16 at batch 512, 72.2 GiB
allocated; ViT-S/16 fp32 at batch 384, 71.4 GiB) it was 3.5% to 5.6%.
EDGE_RESERVE is the top of that range. Verdicts:

- fits: peak <= usable;
- tight: usable < peak <= capacity: the allocations fit, the measured
  fragmentation margin does not (DG602); `PYTORCH_CUDA_ALLOC_CONF=
  expandable_segments:True` lets the allocator grow segments in place and
  removes most of that fragmentation;
- does-not-fit: peak > capacity: the allocations alone exceed the card (DG601).

Names match leniently: case, spaces, dashes and underscores, an NVIDIA /
GeForce / Tesla prefix, form-factor words (SXM4, PCIe, HBM3) and a memory
suffix (80GB, 80G) are all optional. A name that fits two cards (A100) is
an error listing both.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

MIB, GIB = 2**20, 2**30
CUDA_CONTEXT_BYTES = 650_969_088
EDGE_RESERVE = 0.056  # reserved over allocated at the peak, at the edge of an H100 (see above)
FITS, TIGHT, DOES_NOT_FIT = "fits", "tight", "does-not-fit"
MAX_MEMORY_GB = 100_000.0  # 100 TB: far above any one device (the schema's bound on hardware.gpu_memory_gb)
NOISE_WORDS = frozenset({"nvidia", "geforce", "tesla", "sxm", "sxm2", "sxm4", "sxm5", "pcie", "hbm2", "hbm2e", "hbm3",
                         "hbm3e", "nvl", "gpu"})


@dataclass(frozen=True)
class GPU:
    name: str
    total_bytes: int
    aliases: tuple = ()  # other spellings of the model, without memory

    @property
    def capacity_bytes(self) -> int:
        """All the caching allocator can reserve: total minus the CUDA context."""
        return self.total_bytes - CUDA_CONTEXT_BYTES

    @property
    def usable_bytes(self) -> int:
        """The largest peak allocation that leaves room for the allocator's measured reserve."""
        return int(self.capacity_bytes / (1 + EDGE_RESERVE))

    def verdict(self, peak_allocated_bytes: int) -> str:
        """fits | tight | does-not-fit for a predicted peak of allocated bytes."""
        if peak_allocated_bytes <= self.usable_bytes:
            return FITS
        return TIGHT if peak_allocated_bytes <= self.capacity_bytes else DOES_NOT_FIT

    @property
    def memory_gb(self) -> int:
        return round(self.total_bytes / GIB)


CATALOG = (
    GPU("H100-80GB", 85_017_493_504, ("h100",)),
    GPU("H200-141GB", 143_771 * MIB, ("h200",)),
    GPU("A100-80GB", 81_920 * MIB, ("a100",)),
    GPU("A100-40GB", 40_960 * MIB, ("a100",)),
    GPU("A10-24GB", 23_028 * MIB, ("a10",)),
    GPU("RTX-A6000-48GB", 49_140 * MIB, ("a6000", "rtxa6000")),
    GPU("L4-24GB", 23_034 * MIB, ("l4",)),
    GPU("L40S-48GB", 46_068 * MIB, ("l40s",)),
    GPU("RTX-3090-24GB", 24_576 * MIB, ("rtx3090", "3090")),
    GPU("RTX-4090-24GB", 24_564 * MIB, ("rtx4090", "4090")),
    GPU("V100-16GB", 16_384 * MIB, ("v100",)),
    GPU("V100-32GB", 32_768 * MIB, ("v100",)),
    GPU("T4-16GB", 15_360 * MIB, ("t4",)),
)


class GpuError(ValueError):
    """An unknown or ambiguous GPU name; the message says what would work."""


def _parse(name: str) -> tuple[str, int | None]:
    """'NVIDIA A100-SXM4-80GB' -> ('a100', 80)."""
    tokens = re.findall(r"[a-z]+\d*[a-z]*|\d+[a-z]*", name.lower())
    memory = None
    kept = []
    for token in tokens:
        size = re.fullmatch(r"(\d+)(gb|g|gib)", token)
        if size:
            memory = int(size.group(1))
        elif token not in NOISE_WORDS:
            kept.append(token)
    return "".join(kept), memory


def catalog_names() -> list[str]:
    return [gpu.name for gpu in CATALOG]


def resolve(name: str) -> GPU:
    """The catalog entry a user's GPU name means; GpuError if none or several."""
    base, memory = _parse(name)
    matches = [g for g in CATALOG if base in g.aliases and (memory is None or memory == g.memory_gb)]
    if memory is not None and not matches:  # 80 vs 79.2 GiB: accept the nominal size too
        matches = [g for g in CATALOG if base in g.aliases and g.name.endswith(f"-{memory}GB")]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        choices = ", ".join(g.name for g in matches)
        raise GpuError(f"GPU name {name!r} is ambiguous: {choices}; add the memory size, e.g. {matches[0].name}")
    raise GpuError(_unknown_message(name, base))


def _unknown_message(name: str, base: str) -> str:
    spellings = {alias: g.name for g in CATALOG for alias in g.aliases}
    close = difflib.get_close_matches(base, list(spellings), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(dict.fromkeys(spellings[c] for c in close))}? " if close else ""
    return (f"unknown GPU {name!r}; {hint}known GPUs: {', '.join(catalog_names())}; "
            "for any other card set hardware.gpu_memory_gb")


def from_memory_gb(gb: float) -> GPU:
    """A card known only by its memory (hardware.gpu_memory_gb, GiB as nvidia-smi shows)."""
    if not 0 < gb <= MAX_MEMORY_GB:  # also refuses nan and inf, which no byte count can hold
        raise GpuError(f"gpu_memory_gb must be a positive number of at most {MAX_MEMORY_GB:g}, got {gb}")
    return GPU(f"{gb:g} GB GPU", int(gb * GIB))


def for_setup(setup, override: str | None = None) -> GPU | None:
    """The GPU a setup trains on: --gpu, then hardware.gpu, then hardware.gpu_memory_gb; None if unknown."""
    name = override or setup.hardware.gpu
    if name:
        return resolve(name)
    if setup.hardware.gpu_memory_gb:
        return from_memory_gb(setup.hardware.gpu_memory_gb)
    return None
