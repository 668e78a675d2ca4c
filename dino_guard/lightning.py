"""`from dino_guard.lightning import DinoGuardCallback`: the name users write.

The callback lives in dino_guard.guard.lightning; this module only re-exports it.
"""

from dino_guard.guard.lightning import INSTALL_HINT, DinoGuardCallback

__all__ = ["DinoGuardCallback", "INSTALL_HINT"]
