"""Pre-flight on live objects: the user's DINOLoss, heads, backbones and DataLoader.

Before the first step, the runtime guard (guard.py, lightning.py) looks at
what the user really built instead of at a setup file: the first item of the
data set, the heads' real Linear layers, the backbone's real output width (one
forward of a small batch on meta-device copies: no memory, no compute) and
the traced memory estimate of the user's own modules, and the DINOLoss's own
temperatures (DINOv2: the IBOTPatchLoss's too). The setup rules themselves
then run on a Setup made of these measured values, so the codes and messages
are those of `dino-guard check`, the help written as the user's code
(`DINOProjectionHead(input_dim=384, ...)`); a finding's path is the module
path (`model.student_head.layer.0`), its line and column 0 (printed as the
path alone).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from dino_guard import gpus
from dino_guard.codes import make_finding
from dino_guard.findings import Finding

RULE_CODES = ("DG201", "DG401", "DG301", "DG418", "DG419")  # setup rules that run unchanged on the measured values
LOSS_CODES = ("DG402",)  # setup rules that run on the live DINOLoss's (and IBOTPatchLoss's) own numbers
DATA_PATH = "dataloader.dataset"


def live_finding(code: str, path: str, field: str, message: str, help: str) -> Finding:
    """A finding about a live object: its module path instead of a file, line and column 0."""
    return make_finding(code, path, (0, 0), field, message, help)


# -------------------------------------------------------------------- what the user built


@dataclass
class Located:
    path: str  # module path as the user would write it: model.student_head
    module: nn.Module


@dataclass
class Parts:
    """The DINO pieces found by type in the user's modules (None: not found)."""

    criterion: Located
    student_head: Located | None = None
    student_backbone: Located | None = None
    teacher_head: Located | None = None
    teacher_backbone: Located | None = None
    terms: dict = field(default_factory=dict)  # DINOv2: "iBOT" -> IBOTPatchLoss, "KoLeo" -> KoLeoLoss
    ibot_head: Located | None = None  # DINOv2: the student's separate iBOT head (None: shared with DINO)


def head_types() -> tuple:
    from lightly.models.modules import DINOProjectionHead, DINOv2ProjectionHead

    return DINOProjectionHead, DINOv2ProjectionHead


def find_parts(criterion: Located, roots: dict, terms: dict | None = None) -> Parts:
    """Heads are lightly DINOProjectionHeads or DINOv2ProjectionHeads (the student's has
    trainable weights; one whose path names iBOT is a separate iBOT head); a head's backbone
    is its sibling named like it (student_head -> student_backbone), its only other sibling
    with weights (backbone + head in one module), or a sibling so named of a module above it
    (lightly's DINOv2 example: student_head.dino_head -> student_backbone)."""
    parts, seen = Parts(criterion, terms=terms or {}), set()
    for root_name, root in roots.items():
        for path, module in root.named_modules():
            if not isinstance(module, head_types()) or id(module) in seen:
                continue
            seen.add(id(module))
            head = Located(_join(root_name, path), module)
            trainable = any(p.requires_grad for p in module.parameters())
            if "ibot" in path.lower():
                if trainable and parts.ibot_head is None:
                    parts.ibot_head = head
                continue
            backbone = _backbone_of(root, root_name, path)
            if trainable and parts.student_head is None:
                parts.student_head, parts.student_backbone = head, backbone
            elif parts.teacher_head is None:
                parts.teacher_head, parts.teacher_backbone = head, backbone
    return parts


def _join(root_name: str, path: str) -> str:
    return f"{root_name}.{path}" if path else root_name


def _backbone_of(root: nn.Module, root_name: str, head_path: str) -> Located | None:
    path, first = head_path, True
    while path:
        found = _sibling_backbone(root, root_name, path, only_named=not first)
        if found is not None:
            return found
        path, first = path.rpartition(".")[0], False
    return None


def _sibling_backbone(root: nn.Module, root_name: str, head_path: str, only_named: bool) -> Located | None:
    from lightly.loss import DINOLoss

    heads = head_types()
    parent_path, _, head_name = head_path.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    siblings = [(name, m) for name, m in parent.named_children() if name != head_name
                and not isinstance(m, (DINOLoss, *heads))
                and not any(isinstance(sub, heads) for sub in m.modules())
                and any(True for _ in m.parameters())]
    named = [s for s in siblings if s[0] == head_name.replace("head", "backbone")]
    chosen = named or (siblings if len(siblings) == 1 and not only_named else [])
    if not chosen:
        return None
    name, module = chosen[0]
    return Located(_join(root_name, f"{parent_path}.{name}" if parent_path else name), module)


def linears(head: Located) -> list[tuple[str, nn.Linear]]:
    return [(_join(head.path, p), m) for p, m in head.module.named_modules() if isinstance(m, nn.Linear)]


# -------------------------------------------------------------------- the data


@dataclass
class FirstItem:
    """The data set's first item: crop sizes of its views, or what it holds instead."""

    sizes: list | None  # [224, 224, 96, ...]; None: not DINO views
    holds: str  # type name of what came instead of the views
    batch_size: int | None


def first_item(dataloader) -> FirstItem | None:
    """None when the first item cannot be read without running the user's loop (iterable data sets)."""
    dataset = getattr(dataloader, "dataset", None)
    if dataset is None or isinstance(dataset, torch.utils.data.IterableDataset):
        return None
    try:
        item = dataset[0]
    except (TypeError, IndexError, KeyError, NotImplementedError):
        return None
    if isinstance(item, dict):
        return None  # a dict of fields: which one holds the views is not knowable
    sampler = getattr(dataloader, "batch_sampler", None)
    batch = getattr(dataloader, "batch_size", None) or getattr(sampler, "batch_size", None)
    views = _views(item)
    if views is not None:
        return FirstItem([int(v.shape[-1]) for v in views], "", batch)
    if not _cannot_be_batched(dataloader, item):
        return None  # views may be built later: in a collate_fn, or batched on the GPU in the loop
    shown = item[0] if isinstance(item, (tuple, list)) and item else item
    return FirstItem(None, f"{type(shown).__module__}.{type(shown).__qualname__}", batch)


def _cannot_be_batched(dataloader, item) -> bool:
    """True only when the DataLoader is certain to fail on the item: torch's own collate refuses it
    (a PIL image). A collate_fn of the user's may build the views itself, and items torch batches
    (image tensors) may get their views from batched augmentation in the loop: neither is certain."""
    from torch.utils.data import default_collate

    if getattr(dataloader, "collate_fn", default_collate) is not default_collate:
        return False
    try:
        default_collate([item])
    except (TypeError, RuntimeError):
        return True
    return False


def _views(item) -> list | None:
    """lightly's DINOTransform output (a list of C x H x W tensors), alone or first in (views, label, ...)."""
    if isinstance(item, (list, tuple)) and len(item) >= 2 and all(
            isinstance(v, torch.Tensor) and v.ndim == 3 for v in item):
        return list(item)
    if isinstance(item, (list, tuple)) and item and isinstance(item[0], (list, tuple)):
        return _views(item[0])
    return None


def missing_transform(item: FirstItem) -> Finding:
    return live_finding("DG101", DATA_PATH, "transform",
                        f"the data set has no DINO transform: its first item holds a {item.holds} instead of "
                        "2 global + N local views (a list of image tensors); the DataLoader fails or DINO gets "
                        "one view",
                        "build the data set with transform=DINOTransform(global_crop_size=224, local_crop_size=96, "
                        "n_local_views=6) (lightly.transforms)")


# -------------------------------------------------------------------- the backbone, on the meta device


def meta_copy(module: nn.Module) -> nn.Module:
    """A copy on the meta device without copying any data. Every tensor is
    replaced through deepcopy's memo, including weight norm's computed `weight`
    that deepcopy itself refuses (lightly's DINOProjectionHead)."""
    memo = {}
    for m in module.modules():
        for p in m._parameters.values():
            if p is not None:
                memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
        for value in [*m._buffers.values(), *vars(m).values()]:
            if isinstance(value, torch.Tensor) and id(value) not in memo:
                memo[id(value)] = torch.empty_like(value, device="meta")
    return copy.deepcopy(module, memo)


def meta_forward(backbone: nn.Module, size: int) -> torch.Tensor:
    with torch.no_grad():
        return meta_copy(backbone)(torch.empty(2, 3, size, size, device="meta"))


def native_size(backbone: nn.Module) -> int | None:
    """The input size a timm model was built for, when it says so."""
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    if "input_size" in cfg:
        return int(cfg["input_size"][-1])
    img = getattr(getattr(backbone, "patch_embed", None), "img_size", None)
    return int(img[-1] if isinstance(img, (tuple, list)) else img) if img else None


def patch_size(backbone: nn.Module) -> int | None:
    patch = getattr(getattr(backbone, "patch_embed", None), "patch_size", None)
    return int(patch[0] if isinstance(patch, (tuple, list)) else patch) if patch else None


@dataclass
class Measured:
    width: int | None  # pooled output width; None: no forward succeeded
    refused: dict  # crop size -> the error of the forward at that size


def measure(backbone: nn.Module, sizes: list) -> Measured:
    """Forward each crop size once on the meta device; the width from the first that works."""
    width, refused = None, {}
    for size in sizes:
        try:
            out = meta_forward(backbone, size)
        except Exception as exc:  # noqa: BLE001 -- any refusal of a size is the finding's evidence
            refused[size] = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            continue
        width = width or out.flatten(1).shape[1]
    return Measured(width, refused)


def refused_crops(backbone: Located, item: FirstItem, measured: Measured) -> list[Finding]:
    """DG302 on the real model: crops its forward refuses while its own input size works."""
    native, patch = native_size(backbone.module), patch_size(backbone.module)
    # a size the patch does not divide is DG301's; a dynamic-size model refusing one is not this mistake
    refused = {size: error for size, error in measured.refused.items() if not (patch and size % patch)}
    if not refused or native is None or native in refused or getattr(backbone.module, "dynamic_img_size", False):
        return []
    try:
        meta_forward(backbone.module, native)
    except Exception:  # noqa: BLE001 -- the model fails at its own size too: nothing certain to say
        return []
    findings = []
    for size, error in refused.items():
        field = "transform.global_crop_size" if size == item.sizes[0] else "transform.local_crop_size"
        findings.append(live_finding("DG302", backbone.path, field,
                                     f"{size} px crops on {backbone.path}, which takes only {native} px input "
                                     f"without dynamic_img_size: `{error}`",
                                     "create the ViT with timm.create_model(..., dynamic_img_size=True)"))
    return findings


# -------------------------------------------------------------------- the checks


@dataclass
class RunFacts:
    """What the caller knows about the run besides the modules."""

    gpu: str | None = None
    precision: str = "fp32"  # fp32 | bf16 | fp16
    optimizer: str = "adamw"  # adamw | adam | sgd
    accumulate_grad_batches: int = 1
    world_size: int = 1


def preflight(parts: Parts, dataloader, facts: RunFacts) -> list[Finding]:
    """Every finding the live objects give, before the first step."""
    item = first_item(dataloader) if dataloader is not None else None
    if item is not None and item.sizes is None:
        return [missing_transform(item), *memory_findings(parts, None, facts)]
    findings, measured = [], None
    backbone = parts.student_backbone
    if backbone is not None:
        sizes = sorted(set(item.sizes), key=item.sizes.index) if item else []
        native = native_size(backbone.module) or 224
        measured = measure(backbone.module, sizes or [native])
        if item is not None:
            findings += refused_crops(backbone, item, measured)
    findings += loss_findings(parts)
    findings += rule_findings(parts, item, measured)
    findings += memory_findings(parts, item, facts)
    return [in_code_terms(f) for f in findings]


def in_code_terms(finding: Finding) -> Finding:
    """The help as the user's own code (`DINOProjectionHead(input_dim=384, ...)`), not setup fields."""
    from dino_guard.sources.script_help import rephrase

    return rephrase(finding)


def loss_findings(parts: Parts) -> list[Finding]:
    """DG402 on the live DINOLoss's temperatures, and DINOv2's IBOTPatchLoss's, graded as `check` grades
    them (rules/loss.py), before the first step."""
    from dino_guard.check.engine import Context, run_rules
    from dino_guard.rules.registry import get
    from dino_guard.schemas import Setup

    setup, where = {"model": {"backbone": {"name": "backbone"}}}, {}
    for section, located in (("loss", parts.criterion), ("ibot", parts.terms.get("iBOT"))):
        temps = _temperatures(located.module) if located is not None else None
        if temps is not None:  # a loss that keeps them elsewhere: nothing certain to say
            setup[section] = temps
            where |= {f"{section}.{name}": located.path for name in temps}
    if "loss" not in setup:
        return []  # DG402 reads the DINO loss's temperatures first
    if "ibot" in setup:
        setup["method"] = "dinov2"
    ctx = Context("<live>", Setup.model_validate(setup), known=frozenset(where) | {"method"})
    return [replace(f, path=where[f.field], line=0, column=0) for f in run_rules(ctx, [get(c) for c in LOSS_CODES])]


def _temperatures(module) -> dict | None:
    """{teacher_temp, student_temp} of a lightly DINOLoss or IBOTPatchLoss, None when either is not a number."""
    temps = {name: getattr(module, name, None) for name in ("teacher_temp", "student_temp")}
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in temps.values()):
        return None
    return {name: float(value) for name, value in temps.items()}


def rule_findings(parts: Parts, item: FirstItem | None, measured: Measured | None) -> list[Finding]:
    """DG201, DG401 and DG301 exactly as `check` runs them, on the measured values."""
    from dino_guard.check.engine import Context, run_rules
    from dino_guard.rules.registry import get
    from dino_guard.schemas import Setup

    head, backbone = parts.student_head, parts.student_backbone
    if head is None or not linears(head):
        return []
    (first_path, first), (_, last) = linears(head)[0], linears(head)[-1]
    setup = {"model": {"head": {"input_dim": first.in_features, "output_dim": last.out_features},
                       "backbone": {"name": backbone.path if backbone else "backbone"}},
             "loss": {"output_dim": int(parts.criterion.module.center.shape[-1])}}
    known = {"model.head.output_dim", "loss.output_dim"}
    if measured is not None and measured.width:
        setup["model"]["backbone"].update(feature_dim=measured.width, patch_size=patch_size(backbone.module))
        known |= {"model.head.input_dim", "model.backbone"}
    if item is not None and measured is not None:
        local = item.sizes[2:]
        setup["transform"] = {"global_crop_size": item.sizes[0], "local_crop_size": max(local) if local else 96,
                              "n_local_views": len(local)}
        known.add("transform")
    where = {"model.head.input_dim": first_path, "loss.output_dim": parts.criterion.path,
             "transform.global_crop_size": DATA_PATH, "transform.local_crop_size": DATA_PATH,
             "ibot.output_dim": parts.terms["iBOT"].path if "iBOT" in parts.terms else "",
             "koleo.weight": parts.terms["KoLeo"].path if "KoLeo" in parts.terms else ""}
    known |= dinov2_facts(parts, item, setup)
    ctx = Context("<live>", Setup.model_validate(setup), known=frozenset(known))
    return [replace(f, path=where[f.field], line=0, column=0) for f in run_rules(ctx, [get(c) for c in RULE_CODES])]


def dinov2_facts(parts: Parts, item: FirstItem | None, setup: dict) -> set:
    """DINOv2's measured values (method, the iBOT loss and head widths, KoLeo over the per-device batch)
    into the setup the rules read; the fields they make known."""
    if not parts.terms:
        return set()
    setup["method"], known = "dinov2", {"method"}
    if "iBOT" in parts.terms:
        head = parts.ibot_head
        setup["ibot"] = {"output_dim": int(parts.terms["iBOT"].module.center.value.shape[-1]),
                         "separate_head": head is not None}
        if head is not None and linears(head):
            setup["ibot"]["head"] = {"output_dim": linears(head)[-1][1].out_features}
        known.add("ibot.output_dim")
    if "KoLeo" in parts.terms and item is not None and item.batch_size:
        setup["koleo"] = {"weight": 1.0}  # the user's weight is not knowable; any positive one counts
        setup["train"] = {"batch_size": item.batch_size}
        known |= {"koleo.weight", "train.batch_size"}
    return known


def memory_findings(parts: Parts, item: FirstItem | None, facts: RunFacts) -> list[Finding]:
    """DG603 for a GPU name the catalog lacks; DG601/DG602 from the traced estimate of the user's modules."""
    from dino_guard.rules.memory import exceeds_issue, near_issue

    if facts.gpu is None:
        return []
    try:
        gpu = gpus.resolve(facts.gpu)
    except gpus.GpuError as exc:
        return [live_finding("DG603", "gpu", "hardware.gpu", str(exc),
                             "pass gpu= a catalog name such as H100-80GB (`dino-guard estimate --help` lists them)")]
    modules = _step_modules(parts)
    if modules is None or item is None or item.sizes is None or not item.batch_size:
        return []
    spec = _memory_spec(parts, item, facts)
    peak_of = functools.lru_cache(maxsize=None)(lambda batch: _traced_peak(spec.with_batch(batch), modules))
    issues = [("DG601", exceeds_issue(gpu, item.batch_size, facts.accumulate_grad_batches, peak_of)),
              ("DG602", near_issue(gpu, item.batch_size, facts.accumulate_grad_batches, peak_of))]
    return [live_finding(code, "dataloader.batch_size", issue.field, issue.message, issue.help)
            for code, issue in issues if issue is not None]


def _step_modules(parts: Parts) -> tuple | None:
    pieces = (parts.student_backbone, parts.student_head, parts.teacher_backbone, parts.teacher_head)
    if any(p is None for p in pieces):
        return None
    return tuple(p.module for p in pieces) + (parts.criterion.module,)


def _memory_spec(parts: Parts, item: FirstItem, facts: RunFacts):
    from dino_guard.memory.spec import MemorySpec

    sizes = item.sizes
    n_global = 2 if len(sizes) >= 2 else len(sizes)
    local = sizes[n_global:]
    return MemorySpec(backbone=parts.student_backbone.path, batch_size=item.batch_size, precision=facts.precision,
                      n_global_views=n_global, global_crop_size=sizes[0], n_local_views=len(local),
                      local_crop_size=max(local) if local else sizes[0],
                      output_dim=int(parts.criterion.module.center.shape[-1]), optimizer=facts.optimizer,
                      fused_optimizer=False, forward_style="per_view", ddp=facts.world_size > 1)


def _traced_peak(spec, modules: tuple) -> int:
    """Two real training steps of meta copies of the user's modules (fresh copies: the
    optimizer state of one estimate must not leak into the next)."""
    from dino_guard.memory import traced

    student, student_head, teacher, teacher_head, criterion = (meta_copy(m) for m in modules)
    flat = lambda backbone: nn.Sequential(backbone, nn.Flatten(1))  # noqa: E731 -- lightly's examples flatten the pooled map
    copies = (flat(student), student_head, flat(teacher), teacher_head, criterion)
    return traced.estimate_modules(spec, copies).peak_allocated_bytes
