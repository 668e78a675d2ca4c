"""--resume continues only the run that was started: compare the checkpoint's setup with this one.

A field that changes what the run computes (batch, seed, backbone, head,
data, schedule, ...) refuses the resume; the fields in HARMLESS only change
where outputs go, how often they are written, logging, evaluation and the
monitor's thresholds, and are allowed (and printed). A field not listed is
treated as changing the run: refusing a harmless change costs a flag, a
silent change of meaning costs the run.
"""

from __future__ import annotations

HARMLESS = (
    "train.output_dir", "train.max_steps", "train.checkpoint_every_epochs", "train.checkpoint_every_steps",
    "train.log_every_steps", "train.compile", "data.num_workers", "hardware.", "monitor.",
    "eval.knn_k", "eval.knn_temperature", "eval.knn_every_epochs", "eval.knn_max_images",
)


def flatten(value, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists and tuples stay leaves (compared whole)."""
    if not isinstance(value, dict):
        return {prefix: value}
    out = {}
    for key, sub in value.items():
        out.update(flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
    return out


def is_harmless(field: str) -> bool:
    return any(field == h or (h.endswith(".") and field.startswith(h)) for h in HARMLESS)


def differences(saved: dict, current: dict) -> tuple:
    """(refused, allowed): lists of (field, checkpoint's value, current value), in field order."""
    old, new = flatten(saved), flatten(current)
    changed = [(f, old.get(f), new.get(f)) for f in sorted(old.keys() | new.keys())
               if _norm(old.get(f)) != _norm(new.get(f))]
    return [c for c in changed if not is_harmless(c[0])], [c for c in changed if is_harmless(c[0])]


def _norm(value):
    return list(value) if isinstance(value, tuple) else value


def describe(changes: list) -> str:
    return "; ".join(f"{f}: {old!r} in the checkpoint, {new!r} now" for f, old, new in changes)
