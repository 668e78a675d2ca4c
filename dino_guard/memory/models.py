"""Build the DINO step's modules on the meta device (no memory, no GPU)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from dino_guard.backbones import TORCHVISION_PREFIX, canonical_name


class UnknownBackbone(ValueError):
    pass


def build_backbone(name: str, dynamic_img_size: bool = True, drop_path_rate: float = 0.0) -> tuple[nn.Module, int]:
    """(backbone without classifier, pooled feature width), on the meta device."""
    if name.startswith(TORCHVISION_PREFIX):
        return _torchvision_backbone(name[len(TORCHVISION_PREFIX):])
    with torch.device("meta"):
        return _timm_backbone(canonical_name(name), dynamic_img_size, drop_path_rate)


def _timm_backbone(name: str, dynamic_img_size: bool, drop_path_rate: float) -> tuple[nn.Module, int]:
    import timm

    if not timm.is_model(name):
        raise UnknownBackbone(f"timm does not know the model {name!r}")
    kwargs = {"pretrained": False, "num_classes": 0}
    if drop_path_rate:
        kwargs["drop_path_rate"] = drop_path_rate
    try:  # only ViT-like models take the keyword; the others accept any size anyway
        model = timm.create_model(name, dynamic_img_size=dynamic_img_size, **kwargs)
    except TypeError:
        model = timm.create_model(name, **kwargs)
    width = getattr(model, "head_hidden_size", None) or model.num_features
    return model, int(width)


def _torchvision_backbone(name: str) -> tuple[nn.Module, int]:
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        raise UnknownBackbone(f"torchvision has no classification model {name!r}")
    try:
        with torch.device("meta"):
            model = torchvision.models.get_model(name, weights=None)
    except NotImplementedError:
        # a few constructors compute their widths with real tensors (RegNet's
        # BlockParams): build those on the CPU once and move them to meta
        model = torchvision.models.get_model(name, weights=None).to("meta")
    return model, strip_classifier(model)


def strip_classifier(model: nn.Module) -> int:
    """Replace the last Linear (the ImageNet classifier) with Identity; return its input width."""
    last = None
    for path, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = path
    if last is None:
        raise UnknownBackbone(f"{type(model).__name__} has no Linear classifier to remove")
    parent_path, _, child = last.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    width = getattr(parent, child).in_features
    setattr(parent, child, nn.Identity())
    return width


def build_head(input_dim: int, hidden_dim: int, bottleneck_dim: int, output_dim: int, batch_norm: bool) -> nn.Module:
    from lightly.models.modules import DINOProjectionHead

    # lightly still calls the deprecated torch.nn.utils.weight_norm; the
    # warning is lightly's to fix and would only clutter our output.
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return DINOProjectionHead(input_dim, hidden_dim, bottleneck_dim, output_dim,
                                  batch_norm=batch_norm, freeze_last_layer=1)


def build_loss(output_dim: int) -> nn.Module:
    from lightly.loss import DINOLoss

    with torch.device("meta"):
        return DINOLoss(output_dim)
