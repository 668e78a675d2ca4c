"""`dino-guard export RUN_DIR`: the trained backbone of a run (or any checkpoint) as backbone.pt + backbone.json.

torch is imported only inside the command. Exit status: 0 written (and
read back: it loads with strict=True into the model backbone.json names), 2
no checkpoint, one that cannot be read or exported, an -o that would
replace the run's own files (one line naming the file), or the train extra
is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


def checkpoint_of(target: Path) -> Path:
    """A run folder's checkpoints/last.pt (best.pt after a do-no-harm stop), or the checkpoint file given."""
    if not target.is_dir():
        return target
    best = target / "checkpoints" / "best.pt"
    return best if stopped_by_harm(target) and best.is_file() else target / "checkpoints" / "last.pt"


def stopped_by_harm(run_dir: Path) -> bool:
    """summary.json says DG513 stopped the run: its last state is worse than its start."""
    import json

    try:
        return json.loads((run_dir / "summary.json").read_text()).get("stopped_by") == "DG513"
    except (OSError, ValueError, AttributeError):
        return False


@click.command("export")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(exists=True))
@click.option("--which", type=click.Choice(["teacher", "student"]), default="teacher", show_default=True,
              help="Whose backbone: DINO evaluates and exports the teacher.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="The .pt to write; its description goes next to it with the same name and .json "
                   "(-o model.pt writes model.json). Default: RUN_DIR/backbone.pt + backbone.json "
                   "(backbone.student.pt + .json for --which student).")
def export(run_dir: str, which: str, output: str | None) -> None:
    """Write the backbone of RUN_DIR's last checkpoint (or of a checkpoint file) for downstream use.

    backbone.pt is a state dict that loads with strict=True into the model
    backbone.json describes (timm.create_model(name, **kwargs), or the
    torchvision model with its classifier replaced by Identity).
    """
    import pickle

    from pydantic import ValidationError

    from dino_guard.commands.extras import require_train_extra

    require_train_extra("export")
    from dino_guard.trainer.build import BuildError
    from dino_guard.trainer.checkpoint import TODO, CheckpointError
    from dino_guard.trainer.export import ExportError, export_checkpoint, output_problem

    target = Path(run_dir)
    ckpt = checkpoint_of(target)
    if not ckpt.is_file():
        click.echo(f"dino-guard export: error: {ckpt} does not exist; give a run folder that holds "
                   "checkpoints/last.pt, or a checkpoint file", err=True)
        sys.exit(2)
    folder = target if target.is_dir() else ckpt.parent
    if ckpt.name == "best.pt" and target.is_dir():
        click.echo(f"{target} was stopped by DG513 (kNN below its start): exporting {ckpt}, the best state measured, "
                   "not last.pt")
    out = Path(output) if output else folder / ("backbone.pt" if which == "teacher" else "backbone.student.pt")
    if problem := output_problem(out, ckpt):
        click.echo(f"dino-guard export: error: {problem}", err=True)
        sys.exit(2)
    try:
        pt, meta = export_checkpoint(ckpt, out, which)
    except CheckpointError as exc:  # names the file and what is wrong with it
        click.echo(f"dino-guard export: error: {str(exc).removesuffix('; ' + TODO)}", err=True)
        sys.exit(2)
    except (ExportError, BuildError, ValidationError) as exc:
        click.echo(f"dino-guard export: error: {ckpt}: {str(exc).splitlines()[0]}", err=True)
        sys.exit(2)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        click.echo(f"dino-guard export: error: {ckpt} cannot be read as a checkpoint "
                   f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"dino-guard export: error: {exc.filename or out}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    click.echo(f"wrote {pt} and {meta}")
