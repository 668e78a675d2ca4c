"""Regenerate dino_guard/data/backbones.json from the installed timm and torchvision.

Every model is built on the meta device (no weights, no memory). Per entry:
pooled feature width (timm's head_hidden_size), patch size, default image
size, whether other input sizes work (and through which keyword), parameter
count with num_classes=0, family, and the memory facts the analytic
estimator needs (dino_guard.memory.profile), measured by the traced method.

    .venv/bin/python scripts/gen_backbones.py            # all entries
    .venv/bin/python scripts/gen_backbones.py resnet18   # just these (merged into the file)
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import torch

from dino_guard.backbones import TORCHVISION_PREFIX
from dino_guard.memory import profile
from dino_guard.models import backbone as models

TABLE = Path(__file__).resolve().parents[1] / "dino_guard" / "data" / "backbones.json"

TIMM = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d",
    "vit_tiny_patch16_224", "vit_small_patch16_224", "vit_base_patch16_224", "vit_large_patch16_224",
    "vit_small_patch8_224", "vit_base_patch8_224",
    "deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224",
    "deit3_small_patch16_224", "deit3_base_patch16_224", "deit3_large_patch16_224",
    "vit_small_patch14_dinov2", "vit_base_patch14_dinov2", "vit_large_patch14_dinov2", "vit_giant_patch14_dinov2",
    "vit_small_patch14_reg4_dinov2", "vit_base_patch14_reg4_dinov2", "vit_large_patch14_reg4_dinov2",
    "vit_giant_patch14_reg4_dinov2",
    "convnext_tiny", "convnext_small", "convnext_base",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "regnety_008", "regnety_016", "regnety_032", "regnety_040", "regnety_080", "regnety_160",
    "swin_tiny_patch4_window7_224", "swin_small_patch4_window7_224", "swin_base_patch4_window7_224",
    "mobilenetv3_large_100",
    "test_vit",  # timm's 64-wide, 6-block ViT/16: the backbone of the README's CPU example
]
TORCHVISION = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "resnext50_32x4d",
    "wide_resnet101_2", "resnext101_32x8d", "resnext101_64x4d",
    "vit_b_16", "vit_l_16", "convnext_tiny", "convnext_small", "convnext_base",
    "efficientnet_b0", "efficientnet_b1", "efficientnet_b2", "efficientnet_b3", "efficientnet_b4",
    "regnet_y_800mf", "regnet_y_1_6gf", "regnet_y_3_2gf", "regnet_y_8gf", "regnet_y_16gf",
    "swin_t", "swin_s", "swin_b", "mobilenet_v3_large",
]
FAMILIES = (("vit", "vit"), ("test_vit", "vit"), ("deit", "vit"), ("resnet", "resnet"), ("wide_resnet", "resnet"),
            ("resnext", "resnet"), ("convnext", "convnext"), ("efficientnet", "efficientnet"), ("regnet", "regnet"),
            ("swin", "swin"), ("mobilenet", "mobilenet"))


def family(name: str) -> str:
    base = name.removeprefix(TORCHVISION_PREFIX)
    return next(fam for prefix, fam in FAMILIES if base.startswith(prefix))


def accepts(model, size: int) -> bool:
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, size, size, device="meta"))
        return True
    except Exception:  # any refusal (assert, shape error) means "not this size"
        return False


def local_size(patch: int | None) -> int:
    """A DINO local crop size the patch divides (96, or 98 for patch 14)."""
    return 96 if not patch else -(-96 // patch) * patch


def timm_facts(name: str) -> tuple[dict, torch.nn.Module]:
    built = models.build_backbone(name)
    model = built.module
    embed = getattr(model, "patch_embed", None)
    patch = int(embed.patch_size[0]) if embed is not None else None
    entry = {
        "feature_dim": built.width,
        "patch_size": patch,
        "img_size": int(model.pretrained_cfg["input_size"][-1]),
        "params": sum(p.numel() for p in model.parameters()),
    }
    if accepts(model, local_size(patch)):
        entry["input_size"] = "any"
        return entry, model
    try:
        dynamic = models.build_backbone(name, dynamic_img_size=True).module
    except models.BackboneArgsError:
        dynamic = None
    if dynamic is not None and accepts(dynamic, local_size(patch)):
        entry["input_size"] = "dynamic_img_size"
        return entry, dynamic
    entry["input_size"] = "fixed"
    return entry, model


def torchvision_facts(name: str) -> tuple[dict, torch.nn.Module]:
    built = models.build_backbone(TORCHVISION_PREFIX + name)
    model, width = built.module, built.width
    patch = getattr(model, "patch_size", None)
    if name.startswith("swin"):
        patch = int(model.features[0][0].stride[0])  # the patch-embedding convolution
    img = int(getattr(model, "image_size", 224))
    entry = {"feature_dim": width, "patch_size": patch, "img_size": img,
             "params": sum(p.numel() for p in model.parameters()),
             "input_size": "any" if accepts(model, local_size(patch)) else "fixed"}
    return entry, model


def memory_facts(entry: dict, model) -> dict:
    patch = entry["patch_size"]
    if entry["input_size"] == "fixed":
        sizes = [entry["img_size"]]
    else:
        sizes = [local_size(patch), 160 if not patch else -(-160 // patch) * patch,
                 224 if not patch else -(-224 // patch) * patch]
    model.train()
    return {precision: profile.profile(model, precision, sizes) for precision in ("fp32", "bf16")}


def generate(key: str) -> dict:
    if key.startswith(TORCHVISION_PREFIX):
        entry, model = torchvision_facts(key.removeprefix(TORCHVISION_PREFIX))
    else:
        entry, model = timm_facts(key)
    entry["family"] = family(key)
    entry["memory"] = memory_facts(entry, model)
    return entry


def main(argv: list[str]) -> None:
    warnings.filterwarnings("ignore")
    keys = argv or TIMM + [TORCHVISION_PREFIX + n for n in TORCHVISION]
    table = json.loads(TABLE.read_text()) if argv else {}
    for key in keys:
        start = time.perf_counter()
        table[key] = generate(key)
        print(f"{key}: {time.perf_counter() - start:.1f}s", file=sys.stderr, flush=True)
        if argv:  # a partial run keeps what it has measured so far
            write(table)
    write(table)


def write(table: dict) -> None:
    TABLE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
