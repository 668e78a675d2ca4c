"""Rows of a measured-memory CSV (see tests/memory/h100_dino_memory.csv) as MemorySpecs.

Used by the accuracy tests and bench/estimate; stdlib only.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from dino_guard.memory.spec import MemorySpec


@dataclass(frozen=True)
class MeasuredRow:
    spec: MemorySpec
    status: str  # ok | oom
    peak_allocated_bytes: int | None

    @property
    def label(self) -> str:
        s = self.spec
        local = f"+{s.n_local_views}x{s.local_crop_size}" if s.n_local_views else ""
        return (f"{s.backbone} b{s.batch_size} {s.precision} {s.n_global_views}x{s.global_crop_size}{local} "
                f"out{s.output_dim} {s.forward_style}{' fused' if s.fused_optimizer else ''}")


def _spec(row: dict) -> MemorySpec:
    return MemorySpec(
        backbone=row["backbone"],
        batch_size=int(row["batch_size"]),
        precision=row["precision"],
        n_global_views=int(row["n_global_views"]),
        global_crop_size=int(row["global_crop_size"]),
        n_local_views=int(row["n_local_views"]),
        local_crop_size=int(row["local_crop_size"] or 96),
        feature_dim=int(row["feature_dim"]),
        head_hidden_dim=int(row["head_hidden_dim"]),
        head_bottleneck_dim=int(row["head_bottleneck_dim"]),
        output_dim=int(row["output_dim"]),
        head_batch_norm=row["head_batch_norm"] == "True",
        optimizer=row["optimizer"],
        fused_optimizer=row["fused_adamw"] == "True",
        forward_style=row["forward_style"],
    )


def load_rows(path: Path) -> list[MeasuredRow]:
    with open(path, newline="") as handle:
        return [MeasuredRow(_spec(row), row["status"],
                            int(row["peak_allocated_bytes"]) if row["peak_allocated_bytes"] else None)
                for row in csv.DictReader(handle)]
