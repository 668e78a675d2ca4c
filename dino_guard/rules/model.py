"""Rules about the backbone and the projection head (DG2xx)."""

from __future__ import annotations

from collections.abc import Iterator

from dino_guard import backbones
from dino_guard.findings import Severity
from dino_guard.rules.registry import Issue, rule


@rule("DG201", "head-input-dim-mismatch", Severity.ERROR, needs=("model.head.input_dim", "model.backbone"))
def head_input_dim_mismatch(ctx) -> Iterator[Issue]:
    """The projection head's input_dim is not the backbone's feature width.

    What it checks:
        `model.head.input_dim` against the pooled feature width of
        `model.backbone` (timm's `head_hidden_size`: ViT-S 384, ViT-B 768,
        ResNet-18 512, ResNet-50 2048), or `model.backbone.feature_dim` if
        given. In a script, every head call is checked, the teacher's too
        (against the teacher's own backbone when the script builds one).

    Why it matters:
        the first Linear of DINOProjectionHead cannot take the backbone's
        output; the first step fails with `mat1 and mat2 shapes cannot be
        multiplied (64x384 and 2048x2048)`. lightly's default input_dim is
        2048 (ResNet-50), so a ViT behind a default head always fails; the
        same holds for DINOv2ProjectionHead (`method: dinov2`), whose
        default is also 2048, in front of a 384-wide ViT-S/14.

    Example:
        `backbone: {name: vit_small_patch16_224}`, `head: {input_dim: 2048}`.

    Use instead:
        `head: {input_dim: 384}`, or leave input_dim out and dino-guard uses
        the backbone's width.

    References:
        lightly issue #1589; lightly DINOv2ProjectionHead; timm `head_hidden_size`.
    """
    head_dim = ctx.setup.model.head.input_dim
    width = ctx.feature_dim
    if head_dim is None or width is None or head_dim == width:
        return
    name = ctx.setup.model.backbone.name
    head = "DINOv2ProjectionHead" if ctx.setup.method == "dinov2" else "DINOProjectionHead"
    yield Issue("model.head.input_dim",
                f"{head}(input_dim={head_dim}) does not match {name}'s feature width ({width}): "
                f"the first step fails with `mat1 and mat2 shapes cannot be multiplied (Nx{width} and {head_dim}x...)`",
                f"set model.head.input_dim: {width} (or leave it out to use the backbone's width)",
                fix={"model.head.input_dim": width})


@rule("DG202", "unknown-backbone", Severity.ERROR, needs=("model.backbone", "model.backbone.name"))
def unknown_backbone(ctx) -> Iterator[Issue]:
    """A backbone dino-guard has no facts about, without a stated feature_dim.

    What it checks:
        that `model.backbone.name` is in dino-guard's backbone table (timm
        names, with or without a pretrained tag such as `.dino`, and
        `torchvision/<name>`), or that `model.backbone.feature_dim` is given.

    Why it matters:
        without the feature width nothing can check the head, the crops or the
        memory; a typo in a timm name fails only when the job starts (`Unknown
        model`).

    Example:
        `backbone: {name: vit_smal_patch16_224}`.

    Use instead:
        `backbone: {name: vit_small_patch16_224}`, or for a backbone not in
        the table `backbone: {name: my_net, feature_dim: 1024}`.

    References:
        `dino-guard rules`; timm.list_models().
    """
    backbone = ctx.setup.model.backbone
    if ctx.backbone is not None or backbone.feature_dim:
        return
    close = backbones.suggestions(backbone.name)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    yield Issue("model.backbone.name",
                f"unknown backbone '{backbone.name}': its feature width, patch size and memory are not known",
                f"{hint}if the name is right, set model.backbone.feature_dim (and patch_size for a ViT)",
                fix={"model.backbone.name": close[0]} if len(close) == 1 else None)


@rule("DG203", "batch-norm-with-vit", Severity.WARNING, needs=("model.head.batch_norm", "model.backbone"))
def batch_norm_with_vit(ctx) -> Iterator[Issue]:
    """Batch norm in the projection head of a ViT.

    What it checks:
        `model.head.batch_norm: true` with a ViT-like backbone.

    Why it matters:
        DINO's ViT recipe uses no batch norm in the head (it is what makes
        DINO work without batch statistics); batch norm couples samples, needs
        synchronised BN across GPUs, and costs speed. It is the ResNet recipe,
        not the ViT one.

    Example:
        `backbone: {name: vit_small_patch16_224}`, `head: {batch_norm: true}`.

    Use instead:
        `head: {batch_norm: false}`.

    References:
        facebookresearch/dino main_dino.py (`use_bn_in_head` False for ViTs).
    """
    if ctx.setup.model.head.batch_norm and ctx.patch_size is not None:
        yield Issue("model.head.batch_norm", f"batch_norm in the DINO head of {ctx.setup.model.backbone.name} (a ViT): "
                    "DINO's ViT recipe has none", "set model.head.batch_norm: false",
                    fix={"model.head.batch_norm": False})
