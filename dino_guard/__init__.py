"""dino-guard: catch broken DINO setups, estimate their GPU memory, train them.

Importing this package must stay cheap: it is imported by a pre-commit hook
on every commit. Nothing here may import torch, timm, lightly or torchvision.
"""

__version__ = "0.1.0"
