"""`model.init`: start the student and teacher backbones from weights trained elsewhere.

Reads, without downloading anything:

- a dino-guard export (backbone.pt with backbone.json next to it, or the run folder holding them);
- a dino-guard training checkpoint (checkpoints/last.pt, best.pt): the teacher or student part;
- a timm state dict;
- a Meta DINO / DINOv2 / DINOv3 hub checkpoint (`mask_token`, `register_tokens` / `storage_tokens`,
  `pos_embed` on the pre-training grid): timm's own `checkpoint_filter_fn` of the backbone's model
  module converts the layout and resamples the position embedding to the backbone's grid
  (`resample_abs_pos_embed`); crops of another size go through `dynamic_img_size`;
- a lightly / Lightning checkpoint (`state_dict` with `teacher_backbone.` / `student_backbone.` keys,
  lightly's MaskedVisionTransformerTIMM `vit.` inside) or a Meta training checkpoint (`teacher` /
  `student` dicts with `backbone.` keys): `model.init_part` picks the part, the teacher by default.

Loading is strict: every tensor of the backbone must come from the file with its shape (after the
conversion above), or the run refuses to start with one line (InitError, exit 2). `describe` says
what matched, what was remapped or interpolated, what the file held that the backbone does not use,
and that the DINO heads are new.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dino_guard.trainer.build import BuildError

WRAPPERS = ("module.", "_orig_mod.", "backbone.", "vit.", "model.")  # prefixes around a backbone's own keys
PARTS = ("teacher", "student")


class InitError(BuildError):
    """model.init cannot start this backbone; the message names the file and what to do."""


@dataclass
class InitReport:
    path: Path
    layout: str
    part: str | None = None  # teacher | student when the file held both
    part_defaulted: bool = False
    matched: int = 0
    remapped: list = field(default_factory=list)  # "old -> new" (prefixes, timm's conversion)
    interpolated: list = field(default_factory=list)  # "pos_embed 37x37 -> 14x14"
    unused: list = field(default_factory=list)  # tensors of the file the backbone has no place for

    def describe(self) -> str:
        """What the run prints before step one."""
        part = ""
        if self.part:
            part = f", {self.part} part" + (" (the default; model.init_part: student takes the other)"
                                            if self.part_defaulted else "")
        lines = [f"model.init: {self.path} ({self.layout}{part}): {self.matched} backbone tensors loaded strictly"]
        if self.remapped:
            lines.append(f"  remapped: {_some(self.remapped)}")
        if self.interpolated:
            lines.append(f"  interpolated: {_some(self.interpolated)}")
        if self.unused:
            lines.append(f"  not used (no place in the backbone): {_some(self.unused)}")
        lines.append("  new: the DINO heads of student and teacher (initialised fresh; the file holds no DINO head "
                     "for this setup)")
        return "\n".join(lines)


def _some(items: list, n: int = 6) -> str:
    shown = ", ".join(items[:n])
    return f"{shown} and {len(items) - n} more" if len(items) > n else shown


# -------------------------------------------------------------------- reading the file


def resolve(path: str) -> Path:
    """backbone.pt of a run folder, or the file itself."""
    p = Path(path)
    return p / "backbone.pt" if p.is_dir() else p


def read(path: Path) -> object:
    """torch.load with weights_only=True, or one line saying why not."""
    if not path.is_file():
        raise InitError(f"model.init: {path} does not exist; give a backbone.pt (dino-guard export), a timm or Meta "
                        "checkpoint, or a lightly/Lightning checkpoint")
    if path.stat().st_size == 0:
        raise InitError(f"model.init: {path} is empty (0 bytes)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged zip or pickle
        first = (str(exc).splitlines() or [""])[0][:160]
        raise InitError(f"model.init: {path} is not a readable checkpoint, truncated or damaged "
                        f"({type(exc).__name__}: {first})") from None


def export_meta(path: Path) -> dict | None:
    """backbone.json next to backbone.pt (a dino-guard export), or None."""
    meta = path.with_suffix(".json")
    if not meta.is_file():
        return None
    try:
        data = json.loads(meta.read_text())
    except (OSError, ValueError) as exc:
        raise InitError(f"model.init: {meta} cannot be read ({exc})") from None
    return data if isinstance(data, dict) else None


def _is_flat(state) -> bool:
    return isinstance(state, dict) and bool(state) and all(isinstance(v, torch.Tensor) for v in state.values())


def unwrap(state, part: str | None) -> tuple[dict, str, str | None, bool]:
    """(flat state dict, layout name, part taken, part defaulted) from whatever container the file is."""
    chosen = part or "teacher"
    if _is_flat(state):
        flat, layout = state, "state dict"
    elif isinstance(state, dict) and isinstance(state.get(chosen), dict):  # dino-guard or Meta training checkpoint
        flat = state[chosen]
        layout = "dino-guard checkpoint" if "format_version" in state else "training checkpoint"
        return _flat_or_fail(flat), layout, chosen, part is None
    elif isinstance(state, dict) and isinstance(state.get("state_dict"), dict):  # Lightning
        flat, layout = state["state_dict"], "Lightning checkpoint"
    elif isinstance(state, dict) and isinstance(state.get("model"), dict):
        flat, layout = state["model"], "checkpoint ('model')"
    else:
        raise InitError(f"holds a {type(state).__name__} with no tensors the trainer knows how to read "
                        "(a state dict, `teacher`/`student`, `state_dict` or `model`)")
    flat = _flat_or_fail(flat)
    if any(p in k.split(".")[0] for k in flat for p in PARTS):  # student and teacher side by side (lightly)
        ours = [k for k in flat if chosen in k.split(".")[0] and "." in k]
        if any("backbone" in k.split(".")[0] for k in ours):  # teacher_backbone.*, not teacher_head.*
            ours = [k for k in ours if "backbone" in k.split(".")[0]]
        kept = {k.split(".", 1)[1]: flat[k] for k in ours}
        if not kept:
            raise InitError(f"holds no `{chosen}` part (keys start with {sorted({k.split('.')[0] for k in flat})[:4]})")
        return kept, layout, chosen, part is None
    return flat, layout, None, False


def _flat_or_fail(state) -> dict:
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)} if isinstance(state, dict) else {}
    if not tensors:
        raise InitError("holds no tensors")
    return tensors


def strip_wrappers(state: dict, report: InitReport) -> dict:
    """Remove DDP / compile / lightly / training-checkpoint prefixes; drop heads beside a `backbone.`."""
    if any(k.startswith("backbone.") for k in state) and not all(k.startswith("backbone.") for k in state):
        heads = [k for k in state if not k.startswith("backbone.")]
        report.unused += heads  # the DINO head of another run: this run's heads are new
        state = {k: v for k, v in state.items() if k.startswith("backbone.")}
    changed = True
    while changed:
        changed = False
        for prefix in WRAPPERS:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix):]: v for k, v in state.items()}
                report.remapped.append(f"{prefix}* -> *")
                changed = True
    return state


# -------------------------------------------------------------------- fitting it to the backbone


def timm_filter(model: torch.nn.Module):
    """The checkpoint_filter_fn of the model's timm module (layout conversion, pos-embed resampling)."""
    module = sys.modules.get(type(model).__module__)
    if not type(model).__module__.startswith("timm.") or module is None:
        return None
    return getattr(module, "checkpoint_filter_fn", None)


def convert(state: dict, model: torch.nn.Module, report: InitReport) -> dict:
    """timm's conversion when the keys do not already fit; what it renamed and resampled goes in the report."""
    own = model.state_dict()
    convert_fn = timm_filter(model)
    if convert_fn is None or (state.keys() == own.keys() and all(v.shape == own[k].shape for k, v in state.items())):
        return state
    before = {k: tuple(v.shape) for k, v in state.items()}
    try:
        out = convert_fn(dict(state), model)
    except Exception as exc:  # a checkpoint of another width or depth breaks the conversion itself
        raise InitError(f"holds weights that timm's {type(model).__module__}.checkpoint_filter_fn cannot fit to "
                        f"{type(model).__name__} ({type(exc).__name__}: {str(exc)[:120]}): a checkpoint for "
                        "another architecture?") from None
    gone, new = sorted(set(before) - set(out)), sorted(set(out) - set(before))
    dropped = [k for k in gone if k not in own]
    if new or gone:
        report.remapped.append(f"{', '.join(gone) or '-'} -> {', '.join(new) or '-'} (timm's checkpoint_filter_fn)")
    for k, v in out.items():
        if k in before and before[k] != tuple(v.shape):
            what = f"{_grid(before[k])} -> {_grid(tuple(v.shape))}"
            if k == "pos_embed":
                what = f"grid {_patch_grid(before[k])} -> {_patch_grid(tuple(v.shape))} (timm's resample_abs_pos_embed)"
            report.interpolated.append(f"{k} {what}")
    report.unused += [k for k in dropped if k not in new]
    return out


def drop_classifier(state: dict, model: torch.nn.Module, report: InitReport) -> dict:
    """A timm checkpoint's classifier (`head.*`, as pretrained_cfg names it): the backbone is built without one."""
    own = model.state_dict()
    name = (getattr(model, "pretrained_cfg", None) or {}).get("classifier", "head")
    names = name if isinstance(name, (list, tuple)) else [name]
    extra = [k for k in state if k not in own and any(k.startswith(f"{n}.") for n in names)]
    report.unused += extra
    return {k: v for k, v in state.items() if k not in extra}


def _grid(shape: tuple) -> str:
    return "x".join(str(s) for s in shape)


def _patch_grid(shape: tuple) -> str:
    """The patch grid of a position embedding (1, tokens, dim), with or without a class position."""
    tokens = shape[1] if len(shape) == 3 else shape[0]
    for prefix in (0, 1):
        side = round((tokens - prefix) ** 0.5)
        if side * side == tokens - prefix:
            return f"{side}x{side}"
    return f"{tokens} tokens"


def load_strict(model: torch.nn.Module, state: dict, name: str) -> int:
    """load_state_dict(strict=True) after naming every missing, unexpected or misshapen tensor."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {_grid(tuple(state[k].shape))} in the file, {_grid(tuple(own[k].shape))} in the model"
              for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = [f"{len(missing)} tensor(s) missing (e.g. {_some(missing, 2)})" if missing else "",
                 f"{len(unexpected)} unexpected (e.g. {_some(unexpected, 2)})" if unexpected else "",
                 f"{len(shapes)} of another shape (e.g. {shapes[0]})" if shapes else ""]
        raise InitError(f"holds weights for another architecture than model.backbone.name {name}: "
                        f"{'; '.join(p for p in parts if p)}")
    model.load_state_dict(state, strict=True)
    return len(own)


# -------------------------------------------------------------------- the entry point


def load_backbone_weights(path: str, model: torch.nn.Module, backbone_name: str, part: str | None = None) -> tuple:
    """(state dict that loads strictly into `model`, InitReport); InitError names the file on any problem."""
    file = resolve(path)
    state = read(file)
    try:
        meta = export_meta(file)
        if meta is not None:
            _same_architecture(meta, backbone_name, file)
        flat, layout, taken, defaulted = unwrap(state, part)
        report = InitReport(file, "dino-guard export" if meta is not None else layout, taken, defaulted)
        flat = strip_wrappers(flat, report)
        flat = drop_classifier(convert(flat, model, report), model, report)
        report.matched = load_strict(model, flat, backbone_name)
    except InitError as exc:
        text = str(exc)
        raise InitError(text if text.startswith("model.init:") else f"model.init: {file} {text}") from None
    if report.layout == "state dict":
        report.layout = _guess_layout(state)
    return model.state_dict(), report


def _same_architecture(meta: dict, backbone_name: str, file: Path) -> None:
    from dino_guard.backbones import canonical_name

    name = meta.get("name")
    if name and canonical_name(str(name)) != canonical_name(backbone_name.removeprefix("torchvision/")):
        raise InitError(f"model.init: {file} is an export of {name} ({file.with_suffix('.json').name}), "
                        f"not of model.backbone.name {backbone_name}; set model.backbone.name: {name}")


def _guess_layout(state: dict) -> str:
    if "storage_tokens" in state:
        return "Meta DINOv3 layout"
    if "mask_token" in state:
        return "Meta DINOv2 layout"
    return "timm state dict"


def timm_module(backbone: torch.nn.Module) -> torch.nn.Module:
    """The timm model itself: lightly's MaskedVisionTransformerTIMM (DINOv2) holds it as `.vit`."""
    inner = getattr(backbone, "vit", None)
    return inner if isinstance(inner, torch.nn.Module) else backbone


def apply(setup, student, teacher, log) -> InitReport | None:
    """Load model.init into the student's and the teacher's backbone (both the same weights); print the report."""
    m = setup.model
    if not m.init:
        return None
    state, report = load_backbone_weights(m.init, timm_module(student.backbone), m.backbone.name, m.init_part)
    timm_module(teacher.backbone).load_state_dict(state, strict=True)
    log(report.describe())
    return report


def recipe_text(setup, sched, freeze_steps: int, knn_every: int) -> str:
    """The warm-start recipe in use, one line (the defaults' sources are in the setup schema's docs)."""
    from dino_guard.plan import lr_factor

    knn = f"kNN every {knn_every} steps against the start (DG513)" if knn_every else "no kNN along the run"
    return (f"warm start: heads first for {freeze_steps} step(s) (train.freeze_backbone_steps), "
            f"lr x {lr_factor(setup):g} "
            f"(optimizer.warm_start_lr_factor), teacher momentum {sched.momentum_start:g} -> {sched.momentum_end:g} "
            f"(teacher_momentum.warm_start), {knn}")
