"""Rules about `model.init`, the weights a warm start begins from (DG110-DG112).

What can be known without torch: the file exists; a dino-guard export's
backbone.json names the architecture it loads into; Meta's released files
name their width and patch (dinov2_vitb14_reg4_pretrain.pth). Whether the
tensors fit is decided when `train` loads them, strictly, before step one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from dino_guard.backbones import canonical_name
from dino_guard.datafiles import resolve_data_path
from dino_guard.findings import Severity
from dino_guard.rules.registry import Issue, rule

# Meta's release names: dino_deitsmall16, dino_vitbase8, dinov2_vits14_reg4, dinov3_vitl16, dinov3_vith16plus
META_NAME = re.compile(r"(dinov3|dinov2|dino)_(?:vit|deit)(small|base|7b|s|b|l|g|h)(\d+)(plus)?(_reg4)?")
META_WIDTH = {"s": 384, "small": 384, "b": 768, "base": 768, "l": 1024, "g": 1536, "h": 1280, "7b": 4096}
TIMM_SIZE = {"s": "small", "small": "small", "b": "base", "base": "base", "l": "large", "g": "giant"}


def init_file(ctx) -> Path | None:
    """backbone.pt of a run folder, or the file model.init names (None: no model.init)."""
    if not ctx.setup.model.init:
        return None
    path = resolve_data_path(ctx.setup.model.init, ctx.path)
    return path / "backbone.pt" if path.is_dir() else path


@rule("DG110", "init-file-missing", Severity.ERROR, needs=("model.init",))
def init_file_missing(ctx) -> Iterator[Issue]:
    """The weights `model.init` names do not exist.

    What it checks:
        that `model.init` is an existing file, or a run folder holding
        backbone.pt (relative paths: from the working directory, else next to
        the setup file, as `data.path`).

    Why it matters:
        the warm start cannot begin; `train` would refuse at start-up, after
        the job waited in a queue.

    Example:
        `model: {init: runs/old/backbone.pt}` where runs/old has no backbone.pt.

    Use instead:
        the run folder of an earlier run (`dino-guard export RUN_DIR` writes
        its backbone.pt), or the path of a downloaded checkpoint.

    References:
        README.md, "Warm starts".
    """
    path = init_file(ctx)
    if path is not None and not path.is_file():
        yield Issue("model.init", f"model.init: {path} does not exist",
                    "give a backbone.pt (`dino-guard export RUN_DIR` writes one), its run folder, or a timm, Meta, "
                    "lightly or Lightning checkpoint")


@rule("DG111", "init-other-architecture", Severity.ERROR, needs=("model.init", "model.backbone"))
def init_other_architecture(ctx) -> Iterator[Issue]:
    """The dino-guard export in `model.init` is of another backbone than `model.backbone.name`.

    What it checks:
        the `name` and `feature_dim` of the backbone.json next to the
        backbone.pt that `model.init` names, against `model.backbone`.

    Why it matters:
        the weights of one architecture do not load into another: `train`
        would stop at start-up (strict loading), or, loaded loosely as many
        scripts do, most of the backbone would silently stay random.

    Example:
        `backbone: {name: vit_small_patch16_224}` with `init:` an export whose
        backbone.json says `"name": "test_vit"`.

    Use instead:
        `backbone: {name: test_vit}`: the architecture the weights were trained in.

    References:
        README.md, "Warm starts"; dinov2#339 (warm starts that load partly).
    """
    path = init_file(ctx)
    meta = path.with_suffix(".json") if path is not None else None
    if meta is None or not path.is_file() or not meta.is_file():
        return
    try:
        data = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # unreadable: train says so when it loads the weights
    name, width = (data.get("name"), data.get("feature_dim")) if isinstance(data, dict) else (None, None)
    setup_name = ctx.setup.model.backbone.name
    if isinstance(name, str) and canonical_name(name) != canonical_name(setup_name.removeprefix("torchvision/")):
        yield Issue("model.backbone.name", f"model.init {path} is an export of {name} ({meta.name}), "
                    f"not of {setup_name}", f"set model.backbone.name: {name}, or give the weights of {setup_name}",
                    fix={"model.backbone.name": name})
    elif isinstance(width, int) and ctx.feature_dim and width != ctx.feature_dim:
        yield Issue("model.backbone", f"model.init {path} holds a backbone {width} wide ({meta.name}), "
                    f"{setup_name} is {ctx.feature_dim} wide",
                    f"set model.backbone.feature_dim: {width} or give weights {ctx.feature_dim} wide",
                    fix={"model.backbone.feature_dim": width})


def meta_release(name: str) -> tuple[int, int, str | None] | None:
    """(width, patch, timm name or None) that a Meta release's file name states."""
    m = META_NAME.search(name.lower())
    if not m:
        return None
    family, size, patch, plus, reg = m.groups()
    width = 1280 if size == "h" else META_WIDTH[size]
    timm = None
    if size in TIMM_SIZE and not plus:
        if family == "dinov2":
            timm = f"vit_{TIMM_SIZE[size]}_patch{patch}{'_reg4' if reg else ''}_dinov2"
        elif family == "dinov3" and size != "g":
            timm = f"vit_{TIMM_SIZE[size]}_patch{patch}_dinov3"
        elif family == "dino" and size in ("s", "small", "b", "base"):
            timm = f"vit_{TIMM_SIZE[size]}_patch{patch}_224"
    return width, int(patch), timm


@rule("DG112", "init-name-disagrees", Severity.WARNING, needs=("model.init", "model.backbone"))
def init_name_disagrees(ctx) -> Iterator[Issue]:
    """The file name of `model.init` states another width or patch than the backbone's.

    What it checks:
        Meta's released checkpoints name their architecture
        (`dinov2_vitb14_reg4_pretrain.pth`: ViT-B, 768 wide, patch 14): that
        width and patch against `model.backbone`'s.

    Why it matters:
        a ViT-B/14 checkpoint does not load into a ViT-S/16; the mismatch is
        found at start-up at the latest, but the file name already says so.
        A warning only: a renamed file may hold anything.

    Example:
        `backbone: {name: vit_small_patch14_dinov2}`, `init: dinov2_vitb14_pretrain.pth`.

    Use instead:
        `backbone: {name: vit_base_patch14_dinov2}`.

    References:
        facebookresearch/dinov2 and dinov3 MODEL_CARD (release names);
        timm's vit_*_dinov2 / vit_*_dinov3 models.
    """
    if not ctx.setup.model.init:
        return
    stated = meta_release(Path(ctx.setup.model.init).name)
    if stated is None:
        return
    width, patch, timm = stated
    wrong = []
    if ctx.feature_dim and ctx.feature_dim != width:
        wrong.append(f"width {width} (the backbone's is {ctx.feature_dim})")
    if ctx.patch_size and ctx.patch_size != patch:
        wrong.append(f"patch {patch} (the backbone's is {ctx.patch_size})")
    if wrong:
        fix = {"model.backbone.name": timm} if timm else None
        yield Issue("model.init", f"model.init {Path(ctx.setup.model.init).name} names {' and '.join(wrong)}",
                    f"set model.backbone.name: {timm}" if timm else
                    f"use a backbone {width} wide with patch {patch}", fix=fix)
