"""`dino-guard export RUN_DIR`: the trained backbone of a run (or any checkpoint) as backbone.pt + backbone.json.

torch is imported only inside the command. Exit status: 0 written (and
read back: it loads with strict=True into the model backbone.json names), 2
no checkpoint, one that cannot be read or exported, or an -o that would
replace the run's own files (one line naming the file).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click


def checkpoint_of(target: Path) -> Path:
    """A run folder's checkpoints/last.pt, or the checkpoint file given."""
    return target / "checkpoints" / "last.pt" if target.is_dir() else target


@click.command("export")
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(exists=True))
@click.option("--which", type=click.Choice(["teacher", "student"]), default="teacher", show_default=True,
              help="Whose backbone: DINO evaluates and exports the teacher.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="The .pt to write (backbone.json goes next to it). Default: RUN_DIR/backbone.pt "
                   "(backbone.student.pt for --which student).")
def export(run_dir: str, which: str, output: str | None) -> None:
    """Write the backbone of RUN_DIR's last checkpoint (or of a checkpoint file) for downstream use.

    backbone.pt is a state dict that loads with strict=True into the model
    backbone.json describes (timm.create_model(name, **kwargs), or the
    torchvision model with its classifier replaced by Identity).
    """
    import pickle

    from pydantic import ValidationError

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
