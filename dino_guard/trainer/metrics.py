"""metrics.jsonl (one row per optimizer step), the run's throughput and summary.json."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dino_guard.trainer import runfolder

TIMING_KEYS = ("images_per_s", "data_wait", "time")  # metrics that differ between identical runs


def read_metrics(path: Path, upto: int) -> tuple:
    """(rows, dropped): the rows of steps 1..`upto`, in order, as far as they are readable.

    The checkpoint is the truth a resume goes back to: rows after its step,
    lines that are not a JSON object with an integer step (a torn write after
    a full disk, a foreign line), repeated or out-of-order steps are dropped
    and counted, and nothing raises.
    """
    if path.is_symlink() or not path.is_file():  # a planted link (to /dev/zero, ...) is not this run's record
        return [], 0
    rows, dropped = [], 0
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        row = _row(line)
        if row is None or row["step"] > upto or (rows and row["step"] <= rows[-1]["step"]):
            dropped += 1 if line.strip() else 0
            continue
        rows.append(row)
    return rows, dropped


def _row(line: str) -> dict | None:
    try:
        row = json.loads(line)
    except ValueError:
        return None
    ok = isinstance(row, dict) and isinstance(row.get("step"), int) and not isinstance(row["step"], bool)
    return row if ok and row["step"] >= 1 else None


def write_metrics(path: Path, rows: list) -> None:
    """Replace the file whole (a new file renamed over it: a kill mid-write loses no rows)."""
    runfolder.write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def kept(row: dict, every: int, last_step: int) -> bool:
    """Whether metrics.jsonl keeps `row` at `train.log_every_steps: every`.

    Every Nth step, the run's last step and any row with a kNN result; the
    loss-trend monitor and the progress bar still see every step.
    """
    return row["step"] % every == 0 or row["step"] == last_step or "knn_top1" in row


def append_metric(path: Path, row: dict) -> None:
    """Append to the file `write_metrics` created at the start; never through a planted link."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "a") as f:
        f.write(json.dumps(row) + "\n")


def throughput(history: list, effective_batch: int) -> float | None:
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
