"""Help texts in script terms for findings on *.py files.

A setup rule states its help as setup-file keys (`set loss.output_dim: 2048`)
and its fix as data ({"loss.output_dim": 2048}). On a script the same fix is
written as the lightly call's keyword argument (`DINOLoss(output_dim=2048)`):
`rephrase` renders a finding's structured fix in Python. A setup finding with
no fix, or a field with no Python spelling, keeps its original help.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable

from dino_guard.codes import get
from dino_guard.findings import Finding
from dino_guard.sources.call_edit import source_lines
from dino_guard.sources.origin_edit import sole_uses

# Setup sections that are one lightly constructor's keyword arguments (check --fix edits them there too).
CALLS = {"model.head": "DINOProjectionHead", "loss": "DINOLoss", "transform": "DINOTransform",
         "ibot": "IBOTPatchLoss"}

# Sections that more than one lightly class sets: DINOv2ProjectionHead takes the head's fields too (DG201 names it).
_ALSO = {"model.head": ("DINOv2ProjectionHead",)}


def calls_of(section: str) -> tuple[str, ...]:
    """The lightly classes whose keyword arguments are the section's fields (none for a section of no call)."""
    return (CALLS[section], *_ALSO.get(section, ())) if section in CALLS else ()


def named_call(section: str, message: str) -> str | None:
    """The class of the section that a finding's message is about (`DINOv2ProjectionHead(input_dim=2048) does
    not match ...`), else the section's usual one."""
    names = calls_of(section)
    return next((name for name in names if message.startswith(f"{name}(")), names[0] if names else None)


# Whole-sentence help for findings whose fix is no single keyword argument in a script.
_FIXED = {
    "DG101": "pass the transform to the data set: LightlyDataset(path, transform=DINOTransform()) "
             "or ImageFolder(path, transform=DINOTransform())",
}


def _batch(fix: dict) -> str:
    batch, steps = fix.get("train.batch_size"), fix.get("train.accumulate_grad_batches", 1)
    loader = f"use DataLoader(batch_size={batch}) and step" if batch is not None else "step"
    return (f"{loader} the optimizer every {steps} batches "
            f"(Lightning: Trainer(accumulate_grad_batches={steps}))")


def _momentum(fix: dict) -> str:
    start = fix.get("teacher_momentum.start", "start")
    end = fix.get("teacher_momentum.end", "end")
    return f"update the teacher with momentum = cosine_schedule(step, total_steps, {start!r}, {end!r})"


# Fields spelled as a statement rather than a constructor argument; each renders its whole group.
_STATEMENTS: dict[str, Callable[[dict], str]] = {
    "train.batch_size": _batch,
    "train.accumulate_grad_batches": _batch,
    "teacher_momentum.start": _momentum,
    "teacher_momentum.end": _momentum,
    "train.precision": lambda fix: (f"train in {fix['train.precision']}: torch.autocast(device_type='cuda', "
                                    "dtype=torch.bfloat16) (Lightning: Trainer(precision='bf16-mixed'))"),
    "optimizer.lr": lambda fix: (f"create the optimizer with lr={fix['optimizer.lr']!r} "
                                 "(per 256 images, scaled to your batch)"),
    "optimizer.warmup_epochs": lambda fix: f"warm the learning rate up over {fix['optimizer.warmup_epochs']:g} epochs",
    "data.num_workers": lambda fix: (f"raise DataLoader(num_workers={fix['data.num_workers']}) if the machine has that "
                                     "many free cores, or run the augmentations on the GPU (dino-guard's trainer does: "
                                     "`dino-guard train` with transform.backend: device)"),
    "model.backbone.dynamic_img_size": lambda fix: ("create the ViT with timm.create_model(..., dynamic_img_size=True) "
                                                    "(timm interpolates the position embeddings per crop size)"),
    "ibot.mask_ratio_min_max": lambda fix: ("call random_block_mask(..., min_image_mask_ratio={!r}, "
                                            "max_image_mask_ratio={!r})".format(*fix["ibot.mask_ratio_min_max"])),
    "ibot.mask_sample_probability": lambda fix: (f"call random_block_mask(..., "
                                                 f"batch_mask_ratio={fix['ibot.mask_sample_probability']!r})"),
    "koleo.weight": lambda fix: f"weigh the KoLeo term by {fix['koleo.weight']!r} (or leave KoLeoLoss out)",
    "model.backbone.name": lambda fix: f"timm.create_model({fix['model.backbone.name']!r}, num_classes=0)",
}


def python_fix(fix: dict, message: str = "") -> str | None:
    """The fix as Python, or None when a field has no Python spelling (message: the finding's, which may name
    the class, see named_call)."""
    calls: dict[str, list[str]] = {}
    sentences: list[str] = []
    for dotted, value in fix.items():
        section, _, leaf = dotted.rpartition(".")
        if dotted in _STATEMENTS:
            sentence = _STATEMENTS[dotted](fix)
            if sentence not in sentences:
                sentences.append(sentence)
        elif section in CALLS and value is not None:
            calls.setdefault(named_call(section, message), []).append(f"{leaf}={value!r}")
        else:
            return None
    written = [f"{name}({', '.join(args)}, ...)" for name, args in calls.items()]
    return "; ".join(([f"write {' and '.join(written)}"] if written else []) + sentences)


def rephrase(finding: Finding) -> Finding:
    """The same finding with its help written for a Python script."""
    try:
        origin = get(finding.code).origin
    except KeyError:
        return finding
    if origin != "setup":
        return finding  # script and loader codes already speak Python
    text = _FIXED.get(finding.code) or (python_fix(finding.fix, finding.message) if finding.fix else None)
    return dataclasses.replace(finding, help=text) if text else finding


def at_origin(finding: Finding, origins: dict, text: str, tree: ast.Module) -> Finding:
    """A finding on a name moved to the literal its value was written as (`input_dim = 2048`).

    The use stays as a related location. When the fix is that one value and
    the literal feeds nothing else (sources/origin_edit.py), the help says how
    to edit the line and the finding carries the edit (with its end) for
    editors, which `check --fix` writes too. Findings whose position is no
    name read are unchanged.
    """
    lines = [line.rstrip("\r\n") for line in source_lines(text)]
    span = origins.get((finding.line, finding.column))
    if span is None or not 0 < span[0] <= len(lines) or span[0] != span[2]:
        return finding
    line, column, _, end_column = span
    moved = dataclasses.replace(finding, line=line, column=column, end_line=line, end_column=end_column,
                                related=(*finding.related, (finding.line, finding.column, "the value is used here")))
    fix = finding.fix or {}
    dotted, value = next(iter(fix.items())) if len(fix) == 1 else ("", None)
    section, _, keyword = dotted.rpartition(".")
    if dotted != finding.field or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return moved  # the fix sets another field (DG303: n_local_views) or is no literal
    callee = named_call(section, finding.message)
    uses = sole_uses(tree, text, origins, span, (finding.line, finding.column), callee, keyword)
    if uses is None:
        return dataclasses.replace(moved, help=f"{moved.help} (the value is written at line {line}, which may set "
                                               f"more than {keyword}: check --fix leaves it)")
    replacement = repr(value)
    edited = lines[line - 1][:column - 1] + replacement + lines[line - 1][end_column - 1:].split("#", 1)[0]
    where = f"line {uses[0]}" if len(uses) == 1 else \
        f"lines {', '.join(map(str, uses[:-1]))} and {uses[-1]}: each takes the new value"
    return dataclasses.replace(
        moved, help=f"change line {line} to `{edited.strip()}` (used at {where})",
        edit={"line": line, "column": column, "end_line": line, "end_column": end_column, "replacement": replacement})


def once_per_place(findings: list[Finding]) -> list[Finding]:
    """One finding per code and place: two uses of one wrong literal (student and teacher head) are one edit."""
    kept: dict[tuple, Finding] = {}
    for f in findings:
        key = (f.code, f.line, f.column)
        if key in kept:
            kept[key] = dataclasses.replace(kept[key], related=(*kept[key].related, *f.related))
        else:
            kept[key] = f
    return sorted(kept.values(), key=lambda f: f.sort_key)
