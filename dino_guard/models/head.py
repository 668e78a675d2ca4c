"""The one DINO head builder: lightly's DINOProjectionHead, quiet about lightly's weight_norm."""

from __future__ import annotations

import contextlib
import warnings

import torch
from torch import nn

# torch deprecates the weight_norm that lightly's head calls; the warning is
# about lightly's code, not the user's setup, and the replacement would
# rename the head's state_dict keys (checkpoints, export).
WEIGHT_NORM_DEPRECATION = r"`torch\.nn\.utils\.weight_norm` is deprecated"


def dino_head(meta: bool = False, **args) -> nn.Module:
    """lightly's DINOProjectionHead(**args); on the meta device (no memory) when `meta`."""
    from lightly.models.modules import DINOProjectionHead

    device = torch.device("meta") if meta else contextlib.nullcontext()
    with device, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=WEIGHT_NORM_DEPRECATION, category=FutureWarning)
        return DINOProjectionHead(**args)
