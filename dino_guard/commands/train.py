"""`dino-guard train SETUP`: check the setup, then train it.

This module imports torch only inside the command, so the CLI can list it
cheaply. Exit status: 0 trained, 1 the setup has error findings, 2 bad input
(unreadable setup, missing or empty data, a model that cannot be built, a
run folder in use or holding a run without --resume/--overwrite, a damaged
checkpoint or one of another setup, a full disk), 3 a loss-trend check
stopped the run (DG5xx), 130 / 143 SIGINT / SIGTERM (checkpoint saved;
continue with --resume; 130 also for Ctrl-C during start-up).
"""

from __future__ import annotations

import errno
import shlex
import sys
from pathlib import Path
from typing import Optional

import click

from dino_guard.findings import Severity, UnreadableInput


def preflight(setup_path: str):
    """Load and check the setup; exit 1 on an error finding, 2 on unreadable input."""
    from dino_guard.engine import check_loaded
    from dino_guard.loader import load_setup
    from dino_guard.report import format_text

    try:
        loaded = load_setup(setup_path)
    except UnreadableInput as exc:
        click.echo(f"dino-guard: error: {exc}", err=True)
        sys.exit(2)
    findings = check_loaded(loaded)
    shown = [f for f in findings if f.severity != Severity.INFO]
    if shown:
        click.echo(format_text(shown, 1), err=True)
    if loaded.setup is None or any(f.severity == Severity.ERROR for f in findings):
        click.echo("dino-guard train: the setup has errors (above); fix them, then train", err=True)
        sys.exit(1)
    return loaded


def event_printer(loaded):
    """Print a DG5xx event as a finding pointing at the setup field to change."""
    from dino_guard.report import format_text
    from dino_guard.codes import make_finding

    def show(event) -> None:
        finding = make_finding(event.code, loaded.path, loaded.locations.of(event.field), event.field,
                               event.message, event.help)
        click.echo("\n" + format_text([finding], 1).rsplit("\n", 1)[0], err=True)

    return show


def with_resolved_data_path(setup, setup_path: str):
    """data.path as `check` reads it: from the working directory, else next to the setup file."""
    from dino_guard.datafiles import resolve_data_path

    if not setup.data.path:
        return setup
    resolved = str(resolve_data_path(setup.data.path, setup_path))
    return setup.model_copy(update={"data": setup.data.model_copy(update={"path": resolved})})


@click.command("train")
@click.argument("setup_path", metavar="SETUP", type=click.Path(dir_okay=False))
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimizer steps.")
@click.option("--output-dir", type=click.Path(file_okay=False), help="Overrides train.output_dir.")
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT_DIR from checkpoints/last.pt (exactly).")
@click.option("--overwrite", is_flag=True, help="Delete the run already in OUTPUT_DIR and start over.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
def train(setup_path: str, max_steps: Optional[int], output_dir: Optional[str], resume: bool, overwrite: bool,
          device: str) -> None:
    """Check, then train the setup with the reference DINO trainer.

    Writes metrics.jsonl, summary.json, loss.png and checkpoints/last.pt to
    train.output_dir, which must not hold a run already unless --resume or
    --overwrite says what to do with it. Exit status: 0 done, 1 setup errors,
    2 bad input, 3 stopped by a loss-trend check (DG5xx), 130/143 interrupted.
    """
    try:
        run_command(setup_path, max_steps, output_dir, resume, overwrite, device)
    except KeyboardInterrupt:  # Ctrl-C before the loop's own handler is installed (start-up)
        click.echo("\ndino-guard train: interrupted during start-up; no training step was taken", err=True)
        sys.exit(130)


def command_line(setup_path: str, output_dir: Optional[str]) -> str:
    """The command a message tells the user to run next (with --resume or --overwrite appended)."""
    words = ["dino-guard", "train", setup_path] + (["--output-dir", output_dir] if output_dir else [])
    return " ".join(shlex.quote(w) for w in words)


def run_command(setup_path: str, max_steps: Optional[int], output_dir: Optional[str], resume: bool,
                overwrite: bool, device: str) -> None:
    loaded = preflight(setup_path)
    setup = with_resolved_data_path(loaded.setup, loaded.path)
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            click.echo("dino-guard train: --device cuda but no CUDA device is visible; use --device cpu", err=True)
            sys.exit(2)
    from dino_guard.trainer.build import BuildError
    from dino_guard.trainer.checkpoint import CheckpointError
    from dino_guard.trainer.data import DataError
    from dino_guard.trainer.loop import Options, train as run
    from dino_guard.trainer.runfolder import RunFolderError

    out = Path(output_dir or setup.train.output_dir)
    opts = Options(output_dir=out, max_steps=max_steps, resume=resume, overwrite=overwrite,
                   command=command_line(setup_path, output_dir), device=device,
                   log=lambda s: click.echo(s), on_event=event_printer(loaded))
    try:
        result = run(setup, opts)
    except (DataError, BuildError, CheckpointError, RunFolderError) as exc:
        click.echo(f"dino-guard train: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # an output_dir that cannot be written, a full disk
        fix = (f"free space, then continue with `{opts.command} --resume`" if exc.errno == errno.ENOSPC
               else "choose a writable train.output_dir (or --output-dir)")
        click.echo(f"dino-guard train: error: {exc.filename or out}: {exc.strerror or exc}; {fix}", err=True)
        sys.exit(2)
    s = result.summary
    if s["knn_top1"] is not None and s["knn_top1_init"] is not None:
        click.echo(f"kNN top-1 (teacher backbone, k={setup.eval.knn_k}): {s['knn_top1']:.1f}% after training, "
                   f"{s['knn_top1_init']:.1f}% at random init ({s['knn_top1'] - s['knn_top1_init']:+.1f} points)")
    if s["skipped_files"]:
        click.echo(f"skipped {s['skipped_files']} unreadable image loads (see summary.json)")
    final_loss = "none" if s["final_loss"] is None else f"{s['final_loss']:.4f}"
    curve = f"loss curve: {out / 'loss.png'}; " if (out / "loss.png").exists() else ""
    click.echo(f"{s['steps']} steps, final loss {final_loss}, {s['images_per_s'] or 0:.1f} images/s; "
               f"{curve}summary: {out / 'summary.json'}")
    if (s["stopped_by"] or "").startswith("DG"):
        click.echo(f"stopped by {s['stopped_by']} (`dino-guard rule {s['stopped_by']}` explains it); "
                   f"{saved_state(out, result.checkpoint_step)}", err=True)
    sys.exit(result.exit_code)


def saved_state(out: Path, step: Optional[int]) -> str:
    """Exactly what a stopped run leaves to resume from."""
    last = out / "checkpoints" / "last.pt"
    if step is None:
        return f"no checkpoint was written ({last} does not exist)"
    where = "the start of the run, before any step" if step == 0 else f"step {step}"
    return f"{last} holds {where}, the last state whose checks passed"
