"""metrics.jsonl (one row per optimizer step), the run's throughput and summary.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

TIMING_KEYS = ("images_per_s", "data_wait", "time")  # metrics that differ between identical runs


def read_metrics(path: Path, upto: int) -> list:
    """Rows up to `upto` (a resume drops the steps after its checkpoint)."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["step"] <= upto]


def write_metrics(path: Path, rows: list) -> None:
    """Replace the file whole (a temp file renamed over it: a kill mid-write loses no rows)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
    os.replace(tmp, path)


def append_metric(path: Path, row: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def throughput(history: list, effective_batch: int) -> Optional[float]:
    """Images per second over the wall clock from the end of the first step to the last.

    Not the median step: DataLoader workers deliver in bursts (all finish a
    batch at once, then the device waits seconds), so the median step can show
    no data wait at all while the run as a whole is data-bound (measured on an
    H100: a median of 1,618 images/s for a run that made 385).
    """
    if len(history) < 2:
        return history[0]["images_per_s"] if history else None
    window = history[-1]["time"] - history[0]["time"]
    return (len(history) - 1) * effective_batch / window if window > 0 else None


def summarize(history: list, knn_final, knn_init, stopped_by, bad_files: int, ignored_files: int,
              effective_batch: int) -> dict:
    """summary.json: `steps` is the last optimizer step whose metrics were recorded."""
    return {"final_loss": history[-1]["loss"] if history else None,
            "steps": history[-1]["step"] if history else 0,
            "images_per_s": throughput(history, effective_batch),
            "knn_top1": knn_final, "knn_top1_init": knn_init, "stopped_by": stopped_by,
            "skipped_files": bad_files, "ignored_non_image_files": ignored_files}
