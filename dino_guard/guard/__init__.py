"""The runtime guard: DinoGuard for any training loop (watch), the pre-flight
on live objects (preflight) and DinoGuardCallback for Lightning (lightning).

    from dino_guard.guard import DinoGuard, DinoGuardStop
"""

from dino_guard.guard.watch import DinoGuard, DinoGuardStop

__all__ = ["DinoGuard", "DinoGuardStop"]
