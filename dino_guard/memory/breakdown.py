"""Where the memory of a DINO step goes, at the moment of its peak."""

from __future__ import annotations

from dataclasses import dataclass, field

# Order of the rows in the text table; every estimator fills these keys.
PARTS = (
    ("weights", "student weights (backbone + head)"),
    ("teacher", "teacher weights and forward"),
    ("optimizer_state", "optimizer state"),
    ("gradients", "gradients (backward in flight)"),
    ("inputs", "input crops"),
    ("activations_global", "activations, global crops"),
    ("activations_local", "activations, local crops"),
    ("head_and_loss", "head and loss"),
    ("ibot", "iBOT head and loss"),  # DINOv2: the masked patch tokens
    ("workspace", "CUDA workspaces and temporaries"),
    ("decode", "JPEG decoding (decode: device)"),
)
OPTIONAL_PARTS = frozenset({"decode", "ibot"})  # shown only when the setup uses them
PART_NAMES = tuple(name for name, _ in PARTS)


@dataclass
class Breakdown:
    """Bytes per part at the peak; they sum to peak_allocated_bytes."""

    method: str
    parts: dict = field(default_factory=lambda: dict.fromkeys(PART_NAMES, 0))

    @property
    def peak_allocated_bytes(self) -> int:
        return int(sum(self.parts.values()))

    def add(self, part: str, nbytes: float) -> None:
        if part not in PART_NAMES:
            raise KeyError(f"unknown memory part {part!r}")
        self.parts[part] = self.parts.get(part, 0) + int(nbytes)

    def rows(self) -> list[tuple[str, int]]:
        return [(label, self.parts.get(name, 0)) for name, label in PARTS
                if name not in OPTIONAL_PARTS or self.parts.get(name, 0)]
