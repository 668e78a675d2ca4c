"""dino-guard: catch broken DINO setups, estimate their GPU memory, train them.

Importing this package must stay cheap: it is imported by a pre-commit hook
on every commit. Nothing here may import torch, timm, lightly or torchvision:
`dino_guard.DinoGuard` and `dino_guard.DinoGuardStop` load the guard (and
torch) only when first used.
"""

__version__ = "0.1.0"

_LAZY = {"DinoGuard": "dino_guard.guard", "DinoGuardStop": "dino_guard.guard"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dino_guard' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
