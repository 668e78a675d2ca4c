"""Making library objects: each is recorded in the trace with the script class that made it."""

from __future__ import annotations

from dino_guard.sources.interp.values import Obj


def record(it, obj: Obj) -> Obj:
    """Remember a library object the script created."""
    return it.trace.record(obj, it.scope())
