"""The one backbone builder: a timm or torchvision model without its classifier, its pooled
width, and the recipe to build it again (backbone.json). On the meta device for shapes and
estimates, on the CPU for training."""

from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass

import torch
from torch import nn

from dino_guard.backbones import TORCHVISION_PREFIX, canonical_name


class UnknownBackbone(ValueError):
    pass


class BackboneArgsError(ValueError):
    """The library rejected an argument for this model (e.g. dynamic_img_size on a conv net)."""


@dataclass
class Backbone:
    """A backbone without its classifier, its pooled width, and how to build it again.

    `recipe` is what backbone.json stores: `library` (timm | torchvision),
    `name`, `kwargs` for timm.create_model / torchvision.models.get_model,
    and for torchvision the `classifier` submodule replaced by Identity.
    """

    module: nn.Module
    width: int
    recipe: dict


def build_backbone(name: str, dynamic_img_size: bool | None = None, drop_path_rate: float = 0.0,
                   pretrained: bool = False, meta: bool = True, init_values: float | None = None) -> Backbone:
    """The one backbone builder of the trainer, the traced estimator and scripts/gen_backbones.py.

    timm: `create_model(name, num_classes=0)`, the pooled features
    (`head_hidden_size`: after MobileNetV3's conv_head, 1280 wide). torchvision:
    the model with its last Linear (the ImageNet classifier) replaced by
    Identity, the same cut (mobilenet_v3_large: 1280, after the 960 -> 1280
    layer). `meta`: on the meta device (no memory; for shapes and estimates).
    `init_values`: timm's LayerScale init of a ViT (DINOv2 uses 1e-5); it adds
    parameters, so it is part of the recipe backbone.json keeps.
    """
    device = torch.device("meta") if meta else contextlib.nullcontext()
    if name.startswith(TORCHVISION_PREFIX):
        return _torchvision_backbone(name[len(TORCHVISION_PREFIX):], pretrained, meta)
    with device:
        return _timm_backbone(name, dynamic_img_size, drop_path_rate, pretrained, init_values)


def _timm_backbone(name: str, dynamic_img_size: bool | None, drop_path_rate: float, pretrained: bool,
                   init_values: float | None = None) -> Backbone:
    import timm

    arch = canonical_name(name)
    if not timm.is_model(arch):
        raise UnknownBackbone(f"timm does not know the model {arch!r}")
    kwargs = {"num_classes": 0}
    if dynamic_img_size is not None:
        kwargs["dynamic_img_size"] = dynamic_img_size
    if drop_path_rate:
        kwargs["drop_path_rate"] = drop_path_rate
    if init_values is not None:
        kwargs["init_values"] = init_values
    try:  # a pretrained tag (vit_small_patch16_224.dino) picks the weights
        model = timm.create_model(name.removeprefix("timm/") if pretrained else arch, pretrained=pretrained, **kwargs)
    except TypeError as exc:
        raise BackboneArgsError(f"timm rejected the arguments {kwargs} for {arch!r}: {exc}") from None
    width = getattr(model, "head_hidden_size", None) or model.num_features
    return Backbone(model, int(width), {"library": "timm", "name": arch, "kwargs": kwargs})


def _torchvision_backbone(name: str, pretrained: bool, meta: bool) -> Backbone:
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        raise UnknownBackbone(f"torchvision has no classification model {name!r}")
    weights = "DEFAULT" if pretrained else None
    try:
        with torch.device("meta") if meta else contextlib.nullcontext():
            model = torchvision.models.get_model(name, weights=weights)
    except NotImplementedError:
        # a few constructors compute their widths with real tensors (RegNet's
        # BlockParams): build those on the CPU once and move them to meta
        model = torchvision.models.get_model(name, weights=weights).to("meta")
    classifier, width = strip_classifier(model)
    return Backbone(model, width, {"library": "torchvision", "name": name, "kwargs": {"weights": None},
                                   "classifier": classifier})


def strip_classifier(model: nn.Module) -> tuple[str, int]:
    """Replace the last Linear (the ImageNet classifier) with Identity; (its path, its input width)."""
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
    return last, width


def did_you_mean(name: str) -> str:
    """`; did you mean a, b?` from the library's own model list, or nothing."""
    if name.startswith(TORCHVISION_PREFIX):
        import torchvision

        close = difflib.get_close_matches(name[len(TORCHVISION_PREFIX):], torchvision.models.list_models(), n=3)
    else:
        import timm

        close = difflib.get_close_matches(name.split(".")[0], timm.list_models(), n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""
