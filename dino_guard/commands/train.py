"""`dino-guard train SETUP`: check the setup, then train it.

This module imports torch only inside the command, so the CLI can list it
cheaply. Exit status: 0 trained, 1 the setup has error findings, 2 bad input
(the train extra not installed, unreadable setup, missing or empty data, a model that cannot be built, a
run folder in use or holding a run without --resume/--overwrite, a damaged
checkpoint or one of another setup, a full disk), 3 a loss-trend check
stopped the run (DG5xx), 130 / 143 SIGINT / SIGTERM (checkpoint saved;
continue with --resume; 130 also for Ctrl-C during start-up).
"""

from __future__ import annotations

import errno
import math
import os
import shlex
import sys
from pathlib import Path

import click

from dino_guard.findings import Severity, UnreadableInput

LAUNCHED = "DINO_GUARD_LAUNCHED"  # set for the workers `train` starts: it has checked the setup already


def main_process() -> bool:
    """False in the workers of a distributed run other than rank 0 (they train, rank 0 speaks)."""
    return os.environ.get("RANK", "0") == "0"


def preflight(setup_path: str):
    """Load and check the setup; exit 1 on an error finding, 2 on unreadable input."""
    from dino_guard.check.inputs import findings_of
    from dino_guard.check.report import format_text
    from dino_guard.setupfile.loader import load_setup

    if Path(setup_path).suffix == ".py":  # read as YAML it would be "a str at the top level"
        click.echo(f"dino-guard: error: {setup_path}: train takes a setup file (*.dino.yaml), not a Python script; "
                   f"`dino-guard check {setup_path}` checks a lightly script", err=True)
        sys.exit(2)
    try:
        loaded = load_setup(setup_path)
    except UnreadableInput as exc:
        from dino_guard.terminal import printable

        click.echo(f"dino-guard: error: {printable(str(exc))}", err=True)
        sys.exit(2)
    findings = findings_of(Path(setup_path), loaded, _check_options(Path(setup_path)))  # suppressions apply too
    shown = [f for f in findings if f.severity != Severity.INFO]
    if shown and main_process() and LAUNCHED not in os.environ:  # once per run: not again in our workers
        click.echo(format_text(shown, 1), err=True)
    if loaded.setup is None or any(f.severity == Severity.ERROR for f in findings):
        click.echo("dino-guard train: the setup has errors (above); fix them, then train", err=True)
        sys.exit(1)
    return loaded


def _check_options(path: Path):
    """The [tool.dino-guard] settings `check` would judge this setup with (select, ignore, per-file-ignores, gpu)."""
    from dino_guard.check.engine import Options
    from dino_guard.commands import config as cfg

    settings = cfg.load_settings(cfg.find_config(path))
    return Options(select=settings.select, ignore=settings.ignores_for(path), gpu=settings.gpu, src=settings.src)


def event_printer(loaded):
    """Print a DG5xx event as a finding pointing at the setup field to change."""
    from dino_guard.check.report import format_text
    from dino_guard.codes import make_finding

    def show(event) -> None:
        finding = make_finding(event.code, loaded.path, loaded.locations.of(event.field), event.field,
                               event.message, event.help)
        click.echo("\n" + format_text([finding], 1).rsplit("\n", 1)[0], err=True)

    return show


def with_resolved_data_path(setup, setup_path: str):
    """data.path and eval.path as `check` reads them: from the working directory, else next to the setup file."""
    from dino_guard.datafiles import resolve_data_path

    if setup.data.path:
        resolved = str(resolve_data_path(setup.data.path, setup_path))
        setup = setup.model_copy(update={"data": setup.data.model_copy(update={"path": resolved})})
    if setup.eval.path:
        resolved = str(resolve_data_path(setup.eval.path, setup_path))
        setup = setup.model_copy(update={"eval": setup.eval.model_copy(update={"path": resolved})})
    if setup.model.init:
        resolved = str(resolve_data_path(setup.model.init, setup_path))
        setup = setup.model_copy(update={"model": setup.model.model_copy(update={"init": resolved})})
    return setup


def with_init(setup, init: str | None):
    """--init PATH replaces model.init (a path from the working directory)."""
    if init is None:
        return setup
    return setup.model_copy(update={"model": setup.model.model_copy(update={"init": init})})


def launch_workers(setup, device: str, nnodes, node_rank: int, rdzv_endpoint) -> int:
    """Start train.devices workers on this node through torch.distributed.run; their exit status."""
    from dino_guard.trainer.launch import LaunchError, Nodes, launch

    params = click.get_current_context().params
    launcher_only = {"nnodes", "node_rank", "rdzv_endpoint", "setup_path"}
    worker_args = [params["setup_path"]]
    for name, value in params.items():  # every other option, as given, for each worker
        option = "--" + name.replace("_", "-")
        if name in launcher_only or value is None or value is False:
            continue
        worker_args += [option] if value is True else [option, str(value)]
    os.environ[LAUNCHED] = "1"  # the workers inherit it
    try:
        return launch(setup, device, Nodes(nnodes, node_rank, rdzv_endpoint), worker_args)
    except LaunchError as exc:
        click.echo(f"dino-guard train: error: {exc}", err=True)
        return 2


def os_error_advice(exc: OSError, output_dir: Path, data_path: str | None,
                    command: str = "dino-guard train SETUP") -> str:
    """The file, the reason and the setting to change: the output folder only when the file is in it."""
    from dino_guard.terminal import printable

    where = Path(exc.filename) if exc.filename else None
    reason = f"{printable(str(where or output_dir))}: {exc.strerror or exc}"
    if exc.errno == errno.ENOSPC:
        return f"{reason}; free space, then continue with `{command} --resume`"
    if where is None or _inside(where, output_dir):
        return f"{reason}; choose a writable train.output_dir (or --output-dir)"
    if data_path and _inside(where, Path(data_path)):
        return f"{reason}; data.path ({printable(data_path)}) must be a folder of images this user can read"
    return reason


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.absolute(), folder.absolute()
    return path == folder or folder in path.parents


@click.command("train")
@click.argument("setup_path", metavar="SETUP", type=click.Path(dir_okay=False))
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimizer steps.")
@click.option("--output-dir", type=click.Path(file_okay=False), help="Overrides train.output_dir.")
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT_DIR from checkpoints/last.pt (exactly).")
@click.option("--overwrite", is_flag=True,
              help="Start over: delete the previous run's files in OUTPUT_DIR (only what a run writes; "
                   "a symlinked checkpoints/ only as the link, never its target).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--init", "init", type=click.Path(), metavar="PATH",
              help="Start the backbones from these weights (overrides model.init): an export, a checkpoint.")
@click.option("--nnodes", type=click.IntRange(min=1), help="Nodes of a multi-node run (must equal train.num_nodes).")
@click.option("--node-rank", type=click.IntRange(min=0), default=0, show_default=True,
              help="This node's rank (0 on the node at --rdzv-endpoint).")
@click.option("--rdzv-endpoint", metavar="HOST:PORT", help="Rendezvous address of node 0 (multi-node runs).")
def train(setup_path: str, max_steps: int | None, output_dir: str | None, resume: bool, overwrite: bool,
          device: str, init: str | None, nnodes: int | None, node_rank: int, rdzv_endpoint: str | None) -> None:
    """Check, then train the setup with the reference DINO trainer.

    Writes metrics.jsonl, summary.json, loss.png and checkpoints/last.pt to
    train.output_dir, which must not hold a run already unless --resume or
    --overwrite says what to do with it, and the trained backbone as
    backbone.pt + backbone.json. With train.devices x num_nodes above 1 it
    starts the processes itself (torch.distributed.run); under torchrun it
    joins them. Exit status: 0 done, 1 setup errors, 2 bad input, 3 stopped
    by a loss-trend check (DG5xx), 130/143 interrupted.
    """
    from dino_guard.commands.extras import require_train_extra

    require_train_extra("train")
    try:
        run_command(setup_path, max_steps, output_dir, resume, overwrite, device, (nnodes, node_rank, rdzv_endpoint),
                    init)
    except KeyboardInterrupt:  # Ctrl-C before the loop's own handler is installed (start-up)
        click.echo("\ndino-guard train: interrupted during start-up; no training step was taken", err=True)
        sys.exit(130)


def command_line(setup_path: str, output_dir: str | None) -> str:
    """The command a message tells the user to run next (with --resume or --overwrite appended)."""
    words = ["dino-guard", "train", setup_path] + (["--output-dir", output_dir] if output_dir else [])
    return " ".join(shlex.quote(w) for w in words)


def run_command(setup_path: str, max_steps: int | None, output_dir: str | None, resume: bool,
                overwrite: bool, device: str, nodes: tuple, init: str | None = None) -> None:
    loaded = preflight(setup_path)
    setup = with_init(with_resolved_data_path(loaded.setup, loaded.path), init)
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            click.echo("dino-guard train: --device cuda but no CUDA device is visible; use --device cpu", err=True)
            sys.exit(2)
    from dino_guard.trainer.launch import wants_launch

    if wants_launch(setup):
        sys.exit(launch_workers(setup, device, *nodes))
    from dino_guard.trainer.build import BuildError
    from dino_guard.trainer.checkpoint import CheckpointError
    from dino_guard.trainer.images import DataError
    from dino_guard.trainer.loop import Options, Terminated
    from dino_guard.trainer.loop import train as run
    from dino_guard.trainer.runfolder import RunFolderError

    out = Path(output_dir or setup.train.output_dir)
    opts = Options(output_dir=out, max_steps=max_steps, resume=resume, overwrite=overwrite,
                   command=command_line(setup_path, output_dir), device=device,
                   log=lambda s: click.echo(s), on_event=event_printer(loaded))
    try:
        result = run(setup, opts)
    except (DataError, BuildError, CheckpointError, RunFolderError) as exc:  # the same on every rank: rank 0 says it
        if main_process():
            click.echo(f"dino-guard train: error: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:  # an output_dir that cannot be written, a full disk, a data folder that cannot be read
        click.echo(f"dino-guard train: error: {os_error_advice(exc, out, setup.data.path, opts.command)}", err=True)
        sys.exit(2)
    except Terminated:  # SIGTERM before the first step (`timeout` during start-up); Ctrl-C: KeyboardInterrupt
        if main_process():
            click.echo("\ndino-guard train: terminated (SIGTERM) during start-up; no training step was taken", err=True)
        sys.exit(143)
    if not main_process():
        sys.exit(result.exit_code)
    report(result, setup, out)
    sys.exit(result.exit_code)


def report(result, setup, out: Path) -> None:
    """The run's last lines: kNN, steps and loss, where the files are, and what a stop left on disk."""
    s = result.summary
    start = "at the start (model.init)" if setup.model.init else "at random init"
    if s["knn_top1"] is not None and s["knn_top1_init"] is not None:
        click.echo(knn_line(s, setup.eval.knn_k, start))
    if s.get("knn_top1_best") is not None and (out / "checkpoints" / "best.pt").exists():
        click.echo(f"best kNN top-1 {s['knn_top1_best']:.1f}% at step {s['knn_top1_best_step']}: "
                   f"{out / 'checkpoints' / 'best.pt'}")
    if s["skipped_files"]:
        click.echo(f"skipped {s['skipped_files']} unreadable image loads (see summary.json)")
    final_loss = "none" if s["final_loss"] is None else f"{s['final_loss']:.4f}"
    curve = f"loss curve: {out / 'loss.png'}; " if (out / "loss.png").exists() else ""
    click.echo(f"{s['steps']} steps, final loss {final_loss}, {s['images_per_s'] or 0:.1f} images/s; "
               f"{curve}summary: {out / 'summary.json'}")
    if (s["stopped_by"] or "").startswith("DG"):
        click.echo(f"stopped by {s['stopped_by']} (`dino-guard rule {s['stopped_by']}` explains it); "
                   f"{saved_state(out, result.checkpoint_step)}", err=True)


TINY_EVAL_SET = 100  # below this, one query image moves top-1 by more than a point


def knn_line(summary: dict, k: int, start: str = "at random init") -> str:
    """kNN top-1 with its sample size: the 95% margin of a top-1 measured on n images, and a caveat when n is tiny."""
    top1, init, n = summary["knn_top1"], summary["knn_top1_init"], summary.get("knn_queries")
    line = (f"kNN top-1 (teacher backbone, k={k}): {top1:.1f}% after training, {init:.1f}% {start} "
            f"({top1 - init:+.1f} points")
    if not n:
        return line + ")"
    p = top1 / 100
    margin = 100 * 1.96 * math.sqrt(max(p * (1 - p), 1 / n) / n)  # normal approximation; never 0 at 0% or 100%
    line += f", on {n} query image{'s' if n != 1 else ''}, +/-{margin:.1f} points at 95%)"
    if n < TINY_EVAL_SET:
        line += (f"; a tiny evaluation set: one image is {100 / n:.1f} points, so the gain says little; "
                 "give eval.path a labelled folder of a few hundred images or more")
    return line


def saved_state(out: Path, step: int | None) -> str:
    """Exactly what a stopped run leaves to resume from."""
    last = out / "checkpoints" / "last.pt"
    if step is None:
        return f"no checkpoint was written ({last} does not exist)"
    where = "the start of the run, before any step" if step == 0 else f"step {step}"
    return f"{last} holds {where}, the last state whose checks passed"
