"""Script rules about the run: schedules, learning rate, batch, backbone output and data (DG712-DG716).

Each reads what the script reader saw (dino_guard.sources.evidence) and, like
every script finding, is an error only when every value it uses is certain.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from dino_guard import backbones, plan
from dino_guard.findings import Severity
from dino_guard.rules.registry import ScriptIssue, script_rule
from dino_guard.sources.interp.values import Obj, Scaled

# DINO's base learning rate (facebookresearch/dino main_dino.py), scaled by dino_guard.plan's linear rule.
DINO_BASE_LR = {"adamw": 0.0005, "adam": 0.0005, "sgd": 0.03}
LR_TOO_HIGH = 4.0  # how far above DINO's scaled lr a script's scaled lr must be to warn
LR_WRITTEN_TOO_HIGH = 50.0  # the same for an lr written as a number (lightly's examples use 8x with Adam: quiet)
TINY_BATCH = 64
MAX_FOLDER_ENTRIES = 50_000  # a flat folder larger than this is not scanned to the end
# torchvision's IMG_EXTENSIONS
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _epoch_unit(step, epoch_loops: set) -> bool:
    """The step argument counts epochs: Lightning's current_epoch, or the training loop's range(N) variable."""
    if isinstance(step, Obj) and step.kind == "epoch":
        return bool(step.fact("lightning"))
    return isinstance(step, Obj) and step.kind == "range_index" and step.fact("range") in epoch_loops


@script_rule("DG712", "momentum-schedule-shorter-than-run", Severity.WARNING)
def momentum_schedule_shorter_than_run(evidence) -> Iterator[ScriptIssue]:
    """The teacher-momentum cosine schedule ends before the run does.

    What it checks:
        `cosine_schedule(epoch, N, start, end)` used as the `m` of
        `update_momentum`, stepped by epochs (the training loop's `range`
        variable or Lightning's `self.current_epoch`), with N smaller than the
        epochs the script trains; or `cosine_schedule(step, len(loader), ...)`
        stepped once per batch in a run of more than one epoch.

    Why it matters:
        after N epochs lightly's cosine_schedule returns `end_value` (1.0): the
        teacher stops following the student for the rest of the run and training
        stalls. Seen in several public repositories that copied
        `cosine_schedule(self.current_epoch, 10, 0.996, 1)` from lightly's
        10-epoch example into longer runs.

    Example:
        `cosine_schedule(self.current_epoch, 10, 0.996, 1)` with
        `Trainer(max_epochs=100)`.

    Use instead:
        `cosine_schedule(self.current_epoch, self.trainer.max_epochs, 0.996,
        1)`.

    References:
        lightly.utils.scheduler.cosine_schedule; lightly
        examples/pytorch_lightning/dino.py.
    """
    epochs = evidence.built.epochs
    if not _int(epochs):
        return
    loops = {pos for _, pos in evidence.trace.epochs}
    used = {id(c.m) for c in evidence.pair.only(evidence.trace.momentum_calls)}
    for schedule in evidence.trace.schedules:
        max_steps = schedule.fact("max_steps")
        if id(schedule) not in used or schedule.fact("period") is not None:
            continue
        if _one_epoch_of_steps(schedule, evidence.trace) and epochs > 1:
            yield ScriptIssue(schedule.facts["max_steps"][1], "teacher_momentum",
                              f"the teacher momentum schedule runs over len(loader), the steps of one epoch, but "
                              f"{evidence.built.trained_by} trains {epochs} epochs: "
                              "the teacher is frozen after the first",
                              "schedule over every step of the run: "
                              f"cosine_schedule(step, len(loader) * {epochs}, ...)")
            continue
        if not _int(max_steps):
            continue
        if _epoch_unit(schedule.fact("step"), loops) and 0 < max_steps < epochs:
            end = schedule.fact("end")
            yield ScriptIssue(schedule.facts["max_steps"][1], "teacher_momentum",
                              f"the teacher momentum schedule reaches its end ({end}) after {max_steps} epochs but "
                              f"{evidence.built.trained_by} trains {epochs}: the teacher is frozen for the last "
                              f"{epochs - max_steps}",
                              f"schedule over the whole run: cosine_schedule(epoch, {epochs}, ...)")


def _one_epoch_of_steps(schedule: Obj, trace) -> bool:
    """cosine_schedule(step, len(loader), ...) stepped once per batch of a training loader."""
    length = schedule.fact("max_steps")
    if not (isinstance(length, Obj) and length.kind == "length" and schedule.fact("per_batch")):
        return False
    loader = length.fact("of")
    return any(loader is train for train in trace.train_loaders)


def effective_batch(evidence) -> int | None:
    """Images per optimizer step, when the script determines the batch and the devices."""
    setup = evidence.setup
    if setup is None or not (evidence.known("train.batch_size") and evidence.known("train.devices")):
        return None
    t = setup.train
    return plan.effective_batch(t.batch_size, t.accumulate_grad_batches, plan.setup_processes(setup))


@script_rule("DG713", "lr-scaled-too-high", Severity.WARNING)
def lr_scaled_too_high(evidence) -> Iterator[ScriptIssue]:
    """The script's learning rate is far more than DINO's for its batch.

    What it checks:
        an optimizer lr the script computes from a batch size (a linear `base_lr
        * batch_size / 256` or square-root rule) against DINO's linear rule
        `0.0005 * batch / 256` (AdamW; 0.03 for SGD) at the effective batch the
        script determines (batch per device x devices x nodes x accumulation):
        more than 4x warns. An lr written as a number (`AdamW(lr=1e-1)`) is
        the lr used; more than 50x DINO's at that batch (the run plan's lr
        rule) warns.

    Why it matters:
        a base lr meant for another reference batch, a batch counted twice (per
        device and total), or a square-root rule on top of a linear one give an
        lr several times DINO's: the loss spikes in the first epochs and the
        features collapse.

    Example:
        `lr = 0.0005 * batch_size * world_size / 256 * 8` with batch_size 64 on
        one GPU.

    Use instead:
        `lr = 0.0005 * total_batch / 256` for AdamW.

    References:
        facebookresearch/dino main_dino.py (`args.lr * batch_size_per_gpu *
        world_size / 256`); Goyal et al. 2017.
    """
    batch = effective_batch(evidence)
    if batch is None or evidence.value("method") == "dinov2":
        return  # DINOv2's lr follows the square-root rule against 1024 (DG723), not DINO's linear one
    for optimizer in evidence.pair.only(evidence.trace.of_kind("optimizer")):
        lr, name = optimizer.fact("lr"), optimizer.fact("name")
        if name not in DINO_BASE_LR or isinstance(lr, bool) or not isinstance(lr, int | float):
            continue
        reference = plan.lr_used(DINO_BASE_LR[name], batch, "dino")
        if isinstance(lr, Scaled) and lr > LR_TOO_HIGH * reference:
            yield ScriptIssue(optimizer.facts["lr"][1], "optimizer.lr",
                              f"the script scales the lr to {lr:.3g}, {lr / reference:.0f}x DINO's {reference:.3g} "
                              f"for {name} at an effective batch of {batch}",
                              f"use lr={DINO_BASE_LR[name]} * batch / {plan.LR_REFERENCE_BATCH} = {reference:.3g}")
        elif not isinstance(lr, Scaled) and lr > LR_WRITTEN_TOO_HIGH * reference:
            yield ScriptIssue(optimizer.facts["lr"][1], "optimizer.lr",
                              f"lr={lr:g} is {lr / reference:.0f}x what DINO uses for {name} at an effective batch "
                              f"of {batch} ({DINO_BASE_LR[name]:g} per {plan.LR_REFERENCE_BATCH} images: "
                              f"{plan.lr_rule('dino')} = {reference:.3g})",
                              f"use lr={reference:.3g} ({DINO_BASE_LR[name]:g} * {batch} / {plan.LR_REFERENCE_BATCH})")


@script_rule("DG714", "tiny-batch-large-momentum", Severity.WARNING)
def tiny_batch_large_momentum(evidence) -> Iterator[ScriptIssue]:
    """A ViT trained from scratch on a tiny batch with DINO's large-batch teacher momentum.

    What it checks:
        an effective batch under 64 images, a ViT backbone (a patch size)
        created without pretrained weights, and a teacher momentum that starts
        at 0.996.

    Why it matters:
        0.996 was tuned for batches of 1024; with a few dozen images per step
        the teacher averages over too few updates, its targets are noisy, and
        ViTs from scratch collapse or stall (DINO's paper and follow-ups raise
        the momentum towards 0.9995 for small batches). DG411 notes the momentum
        for any small batch; this is the case that usually fails.

    Example:
        `DataLoader(batch_size=32)` with
        `timm.create_model("vit_small_patch16_224")` and `cosine_schedule(epoch,
        epochs, 0.996, 1)`.

    Use instead:
        a larger batch (gradient accumulation does not help the teacher), or
        `cosine_schedule(epoch, epochs, 0.9995, 1)`, or start from pretrained
        weights.

    References:
        Caron et al. 2021, appendix (batch size ablation); lightly issue #1274.
    """
    batch = effective_batch(evidence)
    start = evidence.value("teacher_momentum.start")
    if batch is None or batch >= TINY_BATCH or start != 0.996 or not evidence.known("model.backbone"):
        return
    if evidence.value("model.backbone.pretrained") is not False:
        return
    setup = evidence.setup
    info = backbones.lookup(setup.model.backbone.name)
    patch = setup.model.backbone.patch_size or (info.patch_size if info else None)
    if patch:
        yield ScriptIssue(evidence.built.positions.get(("teacher_momentum", "start"), (1, 1)), "teacher_momentum.start",
                          f"teacher momentum 0.996 (tuned for batch 1024) with an effective batch of {batch} for a ViT "
                          "trained from scratch: the teacher's targets are too noisy to learn from",
                          "start the teacher momentum at 0.9995, or train with a larger batch or pretrained weights")


@script_rule("DG715", "backbone-output-not-flat", Severity.ERROR)
def backbone_output_not_flat(evidence) -> Iterator[ScriptIssue]:
    """A feature map, not a feature vector, is fed to the DINO head.

    What it checks:
        the input of a `DINOProjectionHead` call when it is the direct output of
        a module known to return a feature map: a ResNet without its average
        pooling (`children()[:-2]`), torchvision's `vgg16().features` (and the
        other `.features` trunks), timm's `features_only=True` or
        `global_pool=""`; also when such a map is flattened first
        (`backbone(x).flatten(start_dim=1)`, lightly's usual code): the head
        then sees channels x H x W values (512·7·7 = 25088 for a ResNet-18 on
        224 px crops), not the pooled width.

    Why it matters:
        the head's first Linear acts on the last axis of a (batch, channels,
        height, width) map: the first step fails with `mat1 and mat2 shapes
        cannot be multiplied`, or with a list of maps, with a type error.

    Example:
        `backbone = nn.Sequential(*list(resnet.children())[:-2])`;
        `head(backbone(x))`.

    Use instead:
        keep the pooling (`children()[:-1]`) and flatten
        (`backbone(x).flatten(start_dim=1)`), or `timm.create_model(name,
        num_classes=0)`.

    References:
        lightly examples/pytorch/dino.py; timm feature extraction docs.
    """
    reported = set()
    for _, value, _ in evidence.trace.head_inputs:
        if not (isinstance(value, Obj) and value.kind == "tensor"):
            continue
        if value.fact("spatial"):
            where = value.facts["spatial"][1]  # one finding per backbone (its deepcopy shares the position)
            if where not in reported:
                reported.add(where)
                yield ScriptIssue(where, "model.head.input_dim", f"the DINO head gets {value.fact('spatial')}, not a "
                                  "flat feature vector: the first step fails with `mat1 and mat2 shapes cannot be "
                                  "multiplied`", _POOL_FIRST)
        elif value.fact("flattened_map"):
            where = value.facts["flattened_map"][1]
            if where not in reported:
                reported.add(where)
                yield ScriptIssue(where, "model.head.input_dim", _flattened_message(evidence, value), _POOL_FIRST)


_POOL_FIRST = ("pool and flatten first: backbone(x).flatten(start_dim=1) after an average pooling "
               "(nn.Sequential(*list(resnet.children())[:-1])), or timm.create_model(name, num_classes=0)")
_RESNET_STRIDE = 32  # a torchvision ResNet's last map is the input downsampled 32 times (224 px -> 7 x 7)


def _map_side(crop: int) -> int:
    return -(-crop // _RESNET_STRIDE)  # ceil: the strided convolutions pad


def _flattened_message(evidence, value: Obj) -> str:
    """The width the head really sees: channels x H x W of the flattened map, at the script's crop sizes."""
    what, channels = value.fact("flattened_map"), value.fact("map_channels")
    if not isinstance(channels, int):
        return (f"the DINO head gets {what} flattened with .flatten(start_dim=1): channels x height x width values, "
                "not the pooled feature vector; the first step fails with `mat1 and mat2 shapes cannot be multiplied`")
    sizes = [evidence.value(f"transform.{name}_crop_size") for name in ("global", "local")]
    sizes = [s for s in sizes if isinstance(s, int)] or [224]
    widths = ", ".join(f"{channels * _map_side(s) ** 2} for {s} px crops" for s in sizes)
    return (f"the DINO head gets {what} flattened with .flatten(start_dim=1): {channels}·H·W values ({widths}), "
            f"not a {channels}-wide feature vector; the first step fails with `mat1 and mat2 shapes cannot be "
            "multiplied`")


@script_rule("DG716", "imagefolder-without-classes", Severity.ERROR)
def imagefolder_without_classes(evidence) -> Iterator[ScriptIssue]:
    """torchvision's ImageFolder on a folder that has no class subfolders.

    What it checks:
        `ImageFolder(root)` with a root written in the script that exists where
        dino-guard runs (relative to the current folder or to the script) and
        holds image files but no subfolder (an empty folder, data not fetched
        yet, says nothing).

    Why it matters:
        ImageFolder takes each subfolder as a class and raises
        `FileNotFoundError: Couldn't find any class folder` on a flat folder of
        images, when the job starts. Self-supervised data usually is a flat
        folder.

    Example:
        `ImageFolder("data/unlabeled", transform=DINOTransform())` on a folder
        of .jpg files.

    Use instead:
        `LightlyDataset("data/unlabeled", transform=DINOTransform())`, which
        reads a flat folder, or move the images into one subfolder.

    References:
        torchvision.datasets.ImageFolder (find_classes);
        lightly.data.LightlyDataset.
    """
    script_dir = Path(evidence.path).parent
    for root, pos in evidence.trace.image_folders:
        folder = _existing(root, script_dir)
        if folder is not None and _flat_image_folder(folder):
            yield ScriptIssue(pos, "data.path", f"ImageFolder({root!r}): {folder} has no class subfolders, so "
                              "torchvision raises `Couldn't find any class folder` when the job starts",
                              f"use LightlyDataset({root!r}, transform=...) for a flat folder of images")


def _existing(root: str, script_dir: Path) -> Path | None:
    path = Path(root).expanduser()
    for candidate in ([path] if path.is_absolute() else [path, script_dir / path]):
        if candidate.is_dir():
            return candidate
    return None


def _flat_image_folder(folder: Path) -> bool:
    """True when the folder holds images and surely no subfolder. An empty folder (data not
    fetched yet, a .gitkeep) says nothing; a huge one is not scanned to the end."""
    images = 0
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= MAX_FOLDER_ENTRIES or entry.is_dir():
                    return False
                images += entry.name.lower().endswith(IMAGE_SUFFIXES)
    except OSError:
        return False
    return images > 0
