"""The trained backbone, ready for the next step: backbone.pt + backbone.json.

backbone.pt is the backbone's state dict (the teacher's by default: DINO
evaluates and exports the teacher), without the DINO head. backbone.json
says how to build the model it loads into with `strict=True`:

    {"library": "timm", "name": "vit_small_patch16_224",
     "kwargs": {"num_classes": 0, "dynamic_img_size": true}, "feature_dim": 384, ...}

timm: `timm.create_model(name, **kwargs)`. torchvision:
`torchvision.models.get_model(name, **kwargs)` with the submodule named by
`classifier` replaced by `torch.nn.Identity()` (`load_backbone` does both).

Nothing is reported written that does not load: the state is checked against
that model (on the meta device: keys and shapes, no memory) before writing,
and the written file is read back and checked again before it is renamed into
place. `output_problem` keeps export off the run's own files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from dino_guard.trainer.runfolder import CHECKPOINTS, RUN_FILES, replaced, write_text

PREFIX = "backbone."  # the backbone's keys in a MultiCrop (student or teacher) state dict


class ExportError(Exception):
    """A checkpoint that holds no backbone to export; the message names the file."""


def setup_hash(setup) -> str:
    """sha256 of the resolved setup (canonical JSON): which setup trained these weights."""
    text = json.dumps(setup.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


DINOV2_PREFIX = "backbone.vit."  # DINOv2: the timm ViT in lightly's MaskedVisionTransformerTIMM, not its mask token


def output_problem(out: Path, checkpoint: Path) -> str:
    """Why writing `out` (and the .json next to it) would destroy something ('' when it would not)."""
    if out.suffix == ".json":
        return (f"-o {out}: give the .pt to write; backbone.json goes next to it with the same stem, "
                "so a .json name would hold both and lose the weights")
    run_files = set(RUN_FILES) - {"backbone.pt", "backbone.json"}
    for path in (out, out.with_suffix(".json")):
        if path.exists() and checkpoint.exists() and path.samefile(checkpoint):
            return f"-o {out}: {path} is the checkpoint being exported; write the backbone to another name"
        if path.parent.name == CHECKPOINTS and path.suffix == ".pt":
            return f"-o {out}: {path} is in a run's {CHECKPOINTS}/ folder, where training checkpoints live"
        if path.name in run_files:
            return f"-o {out}: {path} is a file dino-guard train writes ({path.name}); choose another name"
    return ""


def backbone_state(model_state: dict, prefix: str = PREFIX) -> dict:
    """The backbone's entries of a student or teacher state dict, with the `prefix` removed."""
    odd = next((k for k in model_state if not isinstance(k, str)), None)
    if odd is not None:
        raise ExportError(f"the state dict has a key that is not a name ({type(odd).__name__} {odd!r}); "
                          "it is not a model's state dict")
    return {k[len(prefix):]: v for k, v in model_state.items() if k.startswith(prefix)}


def check_loads(state: dict, meta: dict) -> None:
    """ExportError unless `state` loads with strict=True into the model backbone.json describes."""
    try:
        with torch.device("meta"):
            model = build_from_meta(meta)
    except Exception as exc:  # noqa: BLE001 -- any failure to build is this environment's, said in one line
        raise ExportError(f"{meta['library']} cannot build {meta['name']} here "
                          f"({type(exc).__name__}: {_first_line(exc)})") from None
    try:
        model.load_state_dict(state, strict=True, assign=True)  # assign: a meta model holds no copy
    except RuntimeError as exc:
        raise ExportError(f"the backbone weights do not load with strict=True into {meta['library']} "
                          f"{meta['name']}: {_first_line(exc, 2)}") from None


def _first_line(exc: Exception, skip: int = 0) -> str:
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    return (lines[skip] if len(lines) > skip else lines[0] if lines else "")[:200]


def _save_verified(state: dict, meta: dict, tmp: Path) -> None:
    torch.save(state, tmp)
    check_loads(torch.load(tmp, map_location="cpu", weights_only=True, mmap=True), meta)


def write_backbone(setup, model_state: dict, out: Path, which: str = "teacher", step=None) -> tuple[Path, Path]:
    """backbone.pt at `out` and backbone.json next to it (same stem); both written new and renamed into place."""
    from dino_guard.trainer import dinov2_step
    from dino_guard.trainer.build import create_backbone

    dinov2 = setup.method == "dinov2"
    args = dinov2_step.backbone_args(setup) if dinov2 else {}
    recipe = create_backbone(setup.model.backbone, meta=True, **args)  # the same builder that made the trained model
    state = backbone_state(model_state, DINOV2_PREFIX if dinov2 else PREFIX)
    if not state:
        raise ExportError(f"no `{which}` backbone weights to export")
    meta = {**recipe.recipe, "feature_dim": recipe.width, "which": which, "step": step,
            "setup_name": setup.model.backbone.name, "setup_hash": setup_hash(setup)}
    check_loads(state, meta)  # before anything is written
    out = Path(out)
    # a plain state dict (not a training checkpoint): it loads with strict=True into the bare model
    replaced(out, lambda tmp: _save_verified(state, meta, tmp))
    meta_path = out.with_suffix(".json")
    write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    return out, meta_path


def export_checkpoint(checkpoint_path: Path, out: Path, which: str = "teacher") -> tuple[Path, Path]:
    """backbone.pt/.json from a training checkpoint (last.pt or an epoch_NNNN.pt)."""
    from dino_guard.schemas import Setup
    from dino_guard.trainer import checkpoint

    state = checkpoint.load(checkpoint_path)
    if not isinstance(state, dict) or which not in state or "setup" not in state:
        raise ExportError(f"{checkpoint_path} is not a dino-guard training checkpoint (no `{which}` or `setup`)")
    return write_backbone(Setup.model_validate(state["setup"]), state[which], out, which, state.get("step"))


def build_from_meta(meta: dict) -> torch.nn.Module:
    """A fresh, randomly initialised model that backbone.pt loads into with strict=True."""
    if meta["library"] == "timm":
        import timm

        return timm.create_model(meta["name"], **meta["kwargs"])
    import torchvision

    model = torchvision.models.get_model(meta["name"], **meta["kwargs"])
    parent, _, child = meta["classifier"].rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, torch.nn.Identity())
    return model


def load_backbone(path) -> torch.nn.Module:
    """The exported backbone: `path` is backbone.pt, backbone.json or the run folder."""
    path = Path(path)
    pt = path / "backbone.pt" if path.is_dir() else path.with_suffix(".pt")
    model = build_from_meta(json.loads(pt.with_suffix(".json").read_text()))
    model.load_state_dict(torch.load(pt, map_location="cpu", weights_only=True), strict=True)
    return model
