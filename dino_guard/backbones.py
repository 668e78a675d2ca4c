"""Static facts per backbone, read without torch.

The table (data/backbones.json) is generated from timm and torchvision by
scripts/gen_backbones.py (models built on the meta device) and checked
against the installed timm by a slow test. Each entry:

- feature_dim: pooled width the projection head sees (timm's head_hidden_size)
- patch_size: ViT-like patch size, or null for conv nets
- img_size: default input size
- input_size: "any" (conv nets), "dynamic_img_size" (timm ViTs: other sizes
  only with that keyword), "fixed" (cannot take other sizes, e.g. Swin)
- params: parameter count with num_classes=0
- family: vit | resnet | convnext | efficientnet | regnet | swin | mobilenet
- memory: facts the memory estimator uses (see dino_guard.memory)
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

TORCHVISION_PREFIX = "torchvision/"


@dataclass(frozen=True)
class BackboneInfo:
    name: str
    family: str
    feature_dim: int
    patch_size: int | None
    img_size: int
    input_size: str
    params: int
    memory: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_vit_like(self) -> bool:
        return self.patch_size is not None


@lru_cache(maxsize=1)
def table() -> dict[str, BackboneInfo]:
    text = resources.files("dino_guard").joinpath("data/backbones.json").read_text()
    return {name: BackboneInfo(name=name, **entry) for name, entry in json.loads(text).items()}


def canonical_name(name: str) -> str:
    """Strip a timm pretrained tag: vit_small_patch16_224.dino -> vit_small_patch16_224."""
    name = name.strip()
    if name.startswith(TORCHVISION_PREFIX):
        return name
    if name.startswith("timm/"):
        name = name[len("timm/"):]
    return name.split(".", 1)[0]


def lookup(name: str) -> BackboneInfo | None:
    return table().get(canonical_name(name))


_REGISTERS = re.compile(r"_reg(\d+)(?=_|$)")


def register_tokens(name: str) -> int:
    """Register tokens of a timm ViT, read from its name (`vit_small_patch14_reg4_dinov2`: 4); 0 without."""
    match = _REGISTERS.search(canonical_name(name))
    return int(match.group(1)) if match else 0


def without_registers(name: str) -> str | None:
    """The same architecture without register tokens, when the table has it (`..._reg4_dinov2` -> `..._dinov2`)."""
    plain = _REGISTERS.sub("", canonical_name(name))
    return plain if plain != canonical_name(name) and plain in table() else None


@dataclass(frozen=True)
class Resolved:
    """A setup's backbone as every part of dino-guard sees it: its width and patch, and the table's entry."""

    width: int | None  # pooled feature width; None: unknown
    patch: int | None  # patch size; None: a conv net, or unknown
    info: BackboneInfo | None  # the table's entry; None: not in the table

    @property
    def is_vit_like(self) -> bool:
        return self.patch is not None


def resolve(backbone) -> Resolved:
    """Width and patch of `backbone` (a setup's model.backbone: name, feature_dim, patch_size).

    What the setup states wins over the table (a backbone the table does not
    know, or a timm name built with another width); the rest comes from the
    table; what neither says is None.
    """
    info = lookup(backbone.name)
    width = backbone.feature_dim or (info.feature_dim if info else None)
    patch = backbone.patch_size or (info.patch_size if info else None)
    return Resolved(width, patch, info)


def suggestions(name: str, n: int = 3) -> list[str]:
    return difflib.get_close_matches(canonical_name(name), list(table()), n=n, cutoff=0.5)
