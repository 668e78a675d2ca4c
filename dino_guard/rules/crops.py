"""Rules about crop sizes and scales against the backbone (DG3xx)."""

from __future__ import annotations

from collections.abc import Iterator

from dino_guard.findings import Severity
from dino_guard.rules.registry import Issue, rule


def _fixed_input_fix(field: str, img_size: int) -> dict:
    """Global crops at the model's size; local crops cannot exist on a fixed-size model."""
    if field == "transform.local_crop_size":
        return {"transform.n_local_views": 0}
    return {field: img_size}


def _local_size_for(global_size: int, patch) -> int:
    """DINO's local/global ratio (96/224), on the patch grid when the patch is known."""
    grid = patch or 8
    return max(grid, global_size * 96 // 224 // grid * grid) if global_size > grid else max(1, global_size // 2)


def _crop_sizes(transform, ctx=None) -> list[tuple[str, int]]:
    """The crop sizes to check; with ctx, only those the source determines (a script may write one of them)."""
    sizes = [("transform.global_crop_size", transform.global_crop_size)]
    if transform.n_local_views > 0:
        sizes.append(("transform.local_crop_size", transform.local_crop_size))
    return [(field, size) for field, size in sizes if ctx is None or ctx.is_known(field)]


# A script's backbone call with **kwargs the reader cannot see into leaves these open: it may set them.
_PATCH, _INPUT_SIZES = "model.backbone.patch_size", "model.backbone.dynamic_img_size"


@rule("DG301", "crop-not-divisible-by-patch", Severity.ERROR,
      needs=("transform.global_crop_size", "model.backbone", _PATCH))
def crop_not_divisible_by_patch(ctx) -> Iterator[Issue]:
    """A crop size that is not a multiple of the ViT's patch size.

    What it checks:
        global and local crop sizes against the patch size (16 for ViT-S/16, 8
        for ViT-S/8, 14 for DINOv2 models).

    Why it matters:
        timm's patch embedding either refuses the input or silently drops the
        border pixels that do not fill a patch; a 100 px local crop on a /16
        model loses 4 px rows and columns of every crop.

    Example:
        `local_crop_size: 100` with `vit_small_patch16_224`.

    Use instead:
        `local_crop_size: 96` (6 x 16).

    References:
        timm PatchEmbed (`strict_img_size`, `dynamic_img_pad`).
    """
    patch = ctx.patch_size
    if ctx.dino_transform is None or not patch:
        return
    for field, size in _crop_sizes(ctx.setup.transform, ctx):
        if size % patch:
            lower, upper = (size // patch) * patch, (size // patch + 1) * patch
            yield Issue(field, f"{field.split('.')[-1]}={size} is not a multiple of the patch size {patch} "
                        f"of {ctx.setup.model.backbone.name}", f"use {lower or upper} or {upper}", fix={field: upper})


@rule("DG302", "crops-on-fixed-size-vit", Severity.ERROR, needs=("transform", "model.backbone", _INPUT_SIZES))
def crops_on_fixed_size_vit(ctx) -> Iterator[Issue]:
    """Crops of another size fed to a timm ViT built for one input size.

    What it checks:
        a ViT whose table entry accepts other sizes only through
        `dynamic_img_size`, with crops (usually the 96 px local crops) that
        are not its `img_size`, while `model.backbone.dynamic_img_size` is not
        true. In a script, a timm call with `**cfg` the reader cannot see
        into may set it: silent (a dict the script spells out is read); a
        teacher built without it that only gets the global views
        (`teacher(v) for v in views[:2]`) never sees a local crop.

    Why it matters:
        the first local-crop forward fails with `AssertionError: Input height
        (96) doesn't match model (224)`.

    Example:
        `backbone: {name: vit_small_patch16_224}` with `local_crop_size: 96`.

    Use instead:
        `backbone: {name: vit_small_patch16_224, dynamic_img_size: true}`
        (timm interpolates the position embeddings per input size); in a
        script `timm.create_model(..., dynamic_img_size=True)`, where the
        finding is reported and `check --fix` writes it.

    References:
        facebookresearch/dino issue #246; timm
        VisionTransformer(dynamic_img_size=...).
    """
    info, backbone = ctx.backbone, ctx.setup.model.backbone
    if ctx.dino_transform is None or info is None or info.input_size != "dynamic_img_size":
        return
    if backbone.dynamic_img_size:
        return
    for field, size in _crop_sizes(ctx.setup.transform):
        if size != info.img_size:
            yield Issue(field, f"{size} px crops on {backbone.name}, which takes only {info.img_size} px input "
                        f"without dynamic_img_size: `Input height ({size}) doesn't match model ({info.img_size})`",
                        "set model.backbone.dynamic_img_size: true", fix={"model.backbone.dynamic_img_size": True})


@rule("DG303", "backbone-fixed-input-size", Severity.ERROR, needs=("transform", "model.backbone", _INPUT_SIZES))
def backbone_fixed_input_size(ctx) -> Iterator[Issue]:
    """A backbone that cannot take any input size but its own.

    What it checks:
        backbones whose table entry says `fixed` (torchvision's ViTs, built
        for one `image_size`) against crop sizes other than their `img_size`.
        (timm's ViTs and Swins take other sizes with `dynamic_img_size: true`;
        DG302 covers them.)

    Why it matters:
        multi-crop needs small local crops; torchvision's VisionTransformer
        fails on them (`Wrong image height! Expected 224 but got 96!`) and no
        keyword makes it work.

    Example:
        `backbone: {name: torchvision/vit_b_16}` with `local_crop_size: 96`.

    Use instead:
        timm's `vit_base_patch16_224` with `dynamic_img_size: true`, a conv
        net, or `n_local_views: 0` and `global_crop_size: 224` (no
        multi-crop).

    References:
        torchvision.models.VisionTransformer (`image_size`); Caron et al.
        2021, multi-crop.
    """
    info = ctx.backbone
    if ctx.dino_transform is None or info is None or info.input_size != "fixed":
        return
    for field, size in _crop_sizes(ctx.setup.transform):
        if size != info.img_size:
            yield Issue(field,
                        f"{ctx.setup.model.backbone.name} takes only {info.img_size} px input; "
                        f"{size} px crops cannot work",
                        "use a timm ViT with dynamic_img_size: true or a conv net, or n_local_views: 0",
                        fix=_fixed_input_fix(field, info.img_size))


@rule("DG304", "local-scale-overlaps-global", Severity.WARNING,
      needs=("transform.local_crop_scale", "transform.global_crop_scale"))
def local_scale_overlaps_global(ctx) -> Iterator[Issue]:
    """Local crops may cover more of the image than global crops.

    What it checks:
        `local_crop_scale` max <= `global_crop_scale` min; in a script also for
        a multi-crop transform written by hand with torchvision's
        `RandomResizedCrop` (the smaller crop size is the local one; its
        default scale (0.08, 1.0) covers the whole image).

    Why it matters:
        DINO learns local-to-global correspondence: small crops are matched to
        large ones. Overlapping ranges blur that split; DINO uses local (0.05,
        0.4) and global (0.4, 1.0) (and (0.05, 0.25)/(0.25, 1.0) in some
        runs).

    Example:
        `global_crop_scale: [0.3, 1.0]`, `local_crop_scale: [0.05, 0.5]`.

    Use instead:
        `global_crop_scale: [0.4, 1.0]`, `local_crop_scale: [0.05, 0.4]`.

    References:
        facebookresearch/dino main_dino.py (`global_crops_scale`,
        `local_crops_scale`).
    """
    t = ctx.dino_transform
    if t is None or t.n_local_views == 0:
        return
    if t.local_crop_scale[1] > t.global_crop_scale[0]:
        low = min(t.local_crop_scale[0], t.global_crop_scale[0])
        yield Issue("transform.local_crop_scale", f"local crops reach {t.local_crop_scale[1]} of the image, more than "
                    f"the smallest global crop ({t.global_crop_scale[0]})",
                    f"use local_crop_scale: [{low}, {t.global_crop_scale[0]}] or lower",
                    fix={"transform.local_crop_scale": [low, t.global_crop_scale[0]]})


@rule("DG305", "local-crop-not-smaller", Severity.WARNING, needs=("transform",))
def local_crop_not_smaller(ctx) -> Iterator[Issue]:
    """Local crops as large as or larger than the global crops.

    What it checks:
        `local_crop_size` < `global_crop_size` when local views are used.

    Why it matters:
        multi-crop's saving comes from small local crops (96 vs 224 px: about
        5x fewer pixels each); equal sizes multiply the cost of every local
        view for no gain, and usually mean the two were swapped.

    Example:
        `global_crop_size: 96`, `local_crop_size: 224`.

    Use instead:
        `global_crop_size: 224`, `local_crop_size: 96`.

    References:
        Caron et al. 2020 (SwAV), multi-crop.
    """
    t = ctx.dino_transform
    if t is not None and t.n_local_views > 0 and t.local_crop_size >= t.global_crop_size:
        smaller = _local_size_for(t.global_crop_size, ctx.patch_size)
        yield Issue("transform.local_crop_size", f"local_crop_size={t.local_crop_size} is not smaller than "
                    f"global_crop_size={t.global_crop_size}",
                    f"local crops are small views (96 with 224 global crops): e.g. local_crop_size: {smaller}",
                    fix={"transform.local_crop_size": smaller})
