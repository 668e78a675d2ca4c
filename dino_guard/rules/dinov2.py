"""Rules about DINOv2 setups (`method: dinov2`): the iBOT part, KoLeo, registers, and the batch
a recipe was tuned for (DG204, DG418-DG422; DG420 covers DINO too)."""

from __future__ import annotations

import math
from collections.abc import Iterator

from dino_guard import backbones
from dino_guard.findings import Severity
from dino_guard.rules.registry import Issue, rule

# Below these effective batches a recipe runs far outside what it was tuned for. DINO: the paper's
# smallest ablated batch is 128 (Table 9); an eighth of that and below is where reports of collapse
# are (dino#110, batch 2). DINOv2: Meta's recipes train at 1024-3072 and the lr rule refers to 1024;
# an eighth of that (dinov2#298: batch 32 diverges; #479, #507).
RECIPE_MIN_BATCH = {"dino": 16, "dinov2": 128}
METHOD_NAMES = {"dino": "DINO", "dinov2": "DINOv2"}


def _ibot_head_width(setup) -> tuple[int, str]:
    """The output width of the head the masked patch tokens go through, and that head's field."""
    if setup.ibot.separate_head:
        return setup.ibot.head.output_dim, "ibot.head.output_dim"
    return setup.model.head.output_dim, "model.head.output_dim"


@rule("DG204", "register-tokens-in-masked-vit", Severity.ERROR, needs=("method", "model.backbone.name"))
def register_tokens_in_masked_vit(ctx) -> Iterator[Issue]:
    """A DINOv2 run on a ViT with register tokens.

    What it checks:
        `method: dinov2` with a timm backbone whose name says it has register
        tokens (`vit_small_patch14_reg4_dinov2`, `vit_base_patch16_reg4_gap_256`).

    Why it matters:
        DINOv2's student masks patch tokens through lightly's
        MaskedVisionTransformerTIMM, which adds the position embedding to every
        token but the class token; timm's register models keep registers out
        of the position embedding, so the first forward fails with `The size
        of tensor a (256) must match the size of tensor b (230)` (lightly
        1.6, ViT-S/14 reg4 at 224 px).

    Example:
        `method: dinov2`, `backbone: {name: vit_small_patch14_reg4_dinov2}`.

    Use instead:
        `backbone: {name: vit_small_patch14_dinov2}` (the same ViT without
        registers).

    References:
        Darcet et al. 2023, "Vision Transformers Need Registers"; lightly
        MaskedVisionTransformerTIMM; timm `reg_tokens`, `no_embed_class`.
    """
    name = ctx.setup.model.backbone.name
    registers = backbones.register_tokens(name)
    if ctx.setup.method != "dinov2" or not registers:
        return
    plain = backbones.without_registers(name)
    yield Issue("model.backbone.name", f"{name} has {registers} register tokens: lightly's "
                "MaskedVisionTransformerTIMM, which masks DINOv2's student tokens, adds position embeddings to "
                "them and fails on the first step",
                f"use {plain} (the same ViT without registers)" if plain else "use a ViT without register tokens",
                fix={"model.backbone.name": plain} if plain else None)


@rule("DG418", "ibot-output-dim-mismatch", Severity.ERROR, needs=("method", "ibot.output_dim"))
def ibot_output_dim_mismatch(ctx) -> Iterator[Issue]:
    """IBOTPatchLoss's output_dim is not the width of the head the patch tokens go through.

    What it checks:
        `ibot.output_dim` against `ibot.head.output_dim` (with
        `ibot.separate_head: true`) or `model.head.output_dim` (the shared
        DINO head), for `method: dinov2`.

    Why it matters:
        IBOTPatchLoss keeps a center of shape (1, output_dim) and subtracts it
        from the teacher's patch outputs; another width fails on the first
        step with `The size of tensor a (...) must match the size of tensor b`.
        It happens when one head is shrunk and the loss left at 65536.

    Example:
        `ibot: {separate_head: true, head: {output_dim: 8192}, output_dim:
        65536}`.

    Use instead:
        `ibot: {output_dim: 8192}`, or leave ibot.output_dim out.

    References:
        lightly.loss.IBOTPatchLoss; facebookresearch/dinov2 ssl_meta_arch.py.
    """
    setup = ctx.setup
    if setup.method != "dinov2" or setup.ibot.output_dim is None:
        return
    width, field = _ibot_head_width(setup)
    if setup.ibot.output_dim != width:
        yield Issue("ibot.output_dim", f"IBOTPatchLoss(output_dim={setup.ibot.output_dim}) must equal the "
                    f"output_dim of the head the masked patch tokens go through ({field}: {width})",
                    f"set ibot.output_dim: {width} (or leave it out)", fix={"ibot.output_dim": width})


@rule("DG419", "koleo-single-image", Severity.WARNING, needs=("method", "koleo.weight", "train.batch_size"))
def koleo_single_image(ctx) -> Iterator[Issue]:
    """KoLeo over a single image per device.

    What it checks:
        `method: dinov2` with `koleo.weight` above 0 and `train.batch_size:
        1` (KoLeo runs per device, on each global crop's class tokens).

    Why it matters:
        KoLeo pushes every image away from its nearest neighbour in the
        batch; with one image the nearest neighbour is the image itself. The
        distance is 0 and the loss is -log(eps): about 17 with no gradient in
        float32 (the term does nothing), infinite in float16 (dinov2#307
        `current_batch_size: 1`, #143, #101).

    Example:
        `method: dinov2`, `train: {batch_size: 1}`, `koleo: {weight: 0.1}`.

    Use instead:
        at least 2 images per device, or `koleo: {weight: 0}`.

    References:
        lightly.loss.KoLeoLoss; Sablayrolles et al. 2019; dinov2 issue #307.
    """
    setup = ctx.setup
    if setup.method == "dinov2" and setup.koleo.weight > 0 and setup.train.batch_size == 1:
        yield Issue("koleo.weight", f"KoLeo (weight {setup.koleo.weight:g}) over 1 image per device: each image is its "
                    "own nearest neighbour, so the term is a constant -log(eps) without gradient (infinite in float16)",
                    "train with at least 2 images per device, or set koleo.weight: 0", fix={"koleo.weight": 0.0})


@rule("DG420", "batch-below-recipe", Severity.WARNING, needs=("train.batch_size", "train.devices"))
def batch_below_recipe(ctx) -> Iterator[Issue]:
    """An effective batch far below the one the recipe was tuned for.

    What it checks:
        the effective batch (batch_size x accumulate x devices x nodes)
        against 16 for DINO and 128 for DINOv2.

    Why it matters:
        the recipes' temperatures, centering momentum, teacher momentum and
        lr were tuned at 1024 (DINO) and 1024-3072 (DINOv2) images a step;
        far below, the center and KoLeo see a handful of images and runs
        collapse or diverge (dino#110 at batch 2, dinov2#298 at batch 32,
        #479, #507). The lr rule does not rescue them: it scales the lr,
        not the statistics.

    Example:
        `method: dinov2`, `train: {batch_size: 32}` on one GPU.

    Use instead:
        `train: {accumulate_grad_batches: 4}` (or more devices) so the
        optimizer sees the recipe's batch; or a larger per-device batch.

    References:
        Caron et al. 2021, Table 9; dinov2 issues #298, #479, #507; dino #110.
    """
    plan, method = ctx.run_plan, ctx.setup.method
    floor = RECIPE_MIN_BATCH.get(method, RECIPE_MIN_BATCH["dino"])
    if plan.effective_batch >= floor:
        return
    accumulate = ctx.setup.train.accumulate_grad_batches * math.ceil(floor / plan.effective_batch)
    recipe = METHOD_NAMES.get(method, method)
    yield Issue("train.batch_size", f"effective batch {plan.effective_batch}: the {recipe} recipe is tuned for "
                f"1024 images a step and is not known to train below {floor}",
                f"set train.accumulate_grad_batches: {accumulate} (an effective batch of "
                f"{plan.effective_batch // ctx.setup.train.accumulate_grad_batches * accumulate}), or use more devices",
                fix={"train.accumulate_grad_batches": accumulate})


@rule("DG421", "mask-ratio-invalid", Severity.ERROR, needs=("method", "ibot.mask_ratio_min_max"))
def mask_ratio_invalid(ctx) -> Iterator[Issue]:
    """iBOT's mask ratio range has its minimum above its maximum.

    What it checks:
        `ibot.mask_ratio_min_max: [min, max]` with min > max, for `method:
        dinov2`.

    Why it matters:
        lightly's random_block_mask refuses it on the first step:
        `max_image_mask_ratio must be greater or equal to
        min_image_mask_ratio`.

    Example:
        `ibot: {mask_ratio_min_max: [0.5, 0.1]}`.

    Use instead:
        `ibot: {mask_ratio_min_max: [0.1, 0.5]}` (Meta's values).

    References:
        lightly.models.utils.random_block_mask; dinov2 `mask_ratio_min_max`.
    """
    low, high = ctx.setup.ibot.mask_ratio_min_max
    if ctx.setup.method == "dinov2" and low > high:
        yield Issue("ibot.mask_ratio_min_max", f"mask_ratio_min_max [{low:g}, {high:g}]: the minimum is above the "
                    "maximum and random_block_mask fails with `max_image_mask_ratio must be greater or equal to "
                    "min_image_mask_ratio`", f"use {[high, low]}", fix={"ibot.mask_ratio_min_max": [high, low]})


@rule("DG422", "mask-ratio-out-of-range", Severity.WARNING,
      needs=("method", "ibot.mask_ratio_min_max", "ibot.mask_sample_probability"))
def mask_ratio_out_of_range(ctx) -> Iterator[Issue]:
    """An iBOT mask ratio or masking probability outside [0, 1].

    What it checks:
        both ends of `ibot.mask_ratio_min_max` and
        `ibot.mask_sample_probability`, for `method: dinov2`.

    Why it matters:
        they are shares of patches and of crops. random_block_mask does not
        refuse every such value: a maximum of 1.5 silently masks whole crops,
        a negative minimum or a probability above 1 fails only with some
        draws (`max_num_masks_per_block must be greater or equal to
        min_num_masks_per_block`), mid-run.

    Example:
        `ibot: {mask_ratio_min_max: [0.1, 1.5]}` or
        `mask_sample_probability: 50` (a percentage).

    Use instead:
        values between 0 and 1: Meta's `[0.1, 0.5]` and `0.5`.

    References:
        lightly.models.utils.random_block_mask; dinov2 ssl_default_config.yaml.
    """
    ibot = ctx.setup.ibot
    if ctx.setup.method != "dinov2":
        return
    low, high = ibot.mask_ratio_min_max
    if not (0 <= low <= 1 and 0 <= high <= 1):
        fixed = [min(max(low, 0.0), 1.0), min(max(high, 0.0), 1.0)]
        yield Issue("ibot.mask_ratio_min_max", f"mask_ratio_min_max [{low:g}, {high:g}] is not a share of the patches "
                    "(between 0 and 1)", f"use {fixed} (Meta: [0.1, 0.5])",
                    fix={"ibot.mask_ratio_min_max": fixed})
    probability = ibot.mask_sample_probability
    if not 0 <= probability <= 1:
        fixed_p = probability / 100 if 1 < probability <= 100 else 0.5
        yield Issue("ibot.mask_sample_probability", f"mask_sample_probability {probability:g} is not a share of the "
                    "global crops (between 0 and 1)", f"use {fixed_p:g} (Meta: 0.5)",
                    fix={"ibot.mask_sample_probability": fixed_p})
