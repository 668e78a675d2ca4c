"""`dino-guard rescale SETUP --gpus 1xT4-16GB --dataset-size N --output OUT`: a recipe for your GPUs and data.

Exit status: 0 the rescaled setup checks clean on the target GPU, 1 it still
has findings (they are printed), 2 bad input (one line).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from dino_guard.terminal import printable


def _fail(message: str) -> None:
    click.echo(f"dino-guard: error: {printable(message)}", err=True)
    sys.exit(2)


@click.command()
@click.argument("setup_file", metavar="SETUP", type=click.Path(path_type=Path))
@click.option("--gpus", required=True, help="The GPUs to run on, COUNTxNAME: 1xT4-16GB, 8xH100-80GB.")
@click.option("--dataset-size", required=True, type=int, help="Training images in your data set.")
@click.option("--epochs", type=int, help="Train for this many epochs (default: the recipe's).")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="Where to write the rescaled setup (same format as SETUP); SETUP itself is never changed.")
def rescale(setup_file: Path, gpus: str, dataset_size: int, epochs: int | None, output: Path) -> None:
    """Rewrite a reference recipe (e.g. the DINO paper's 16-GPU ViT-S/16) for your GPUs and data set.

    The per-device batch that fits (analytic memory estimate), gradient
    accumulation or a smaller effective batch, the lr by the method's rule,
    the teacher momentum by the EMA scaling rule, K for the data set's size,
    warm-ups as the same share of the run. Comments and everything unchanged
    are kept; each change is printed with its reason and source.
    """
    from dino_guard.rescale.recipe import RescaleError, Target, parse_gpus
    from dino_guard.rescale.recipe import rescale as rescale_recipe

    if dataset_size < 1:
        _fail(f"--dataset-size {dataset_size}: give the number of training images (at least 1)")
    if epochs is not None and epochs < 1:
        _fail(f"--epochs {epochs}: at least 1")
    if output.suffix != setup_file.suffix:
        _fail(f"--output {output}: write the same format as {setup_file} (*{setup_file.suffix})")
    try:
        devices, gpu = parse_gpus(gpus)
        setup, text = _read(setup_file)
        result = rescale_recipe(setup, Target(gpu, devices, dataset_size, epochs))
    except RescaleError as exc:
        _fail(f"{setup_file}: {exc}")
    new_text = _write(setup_file, text, result.fix, output)
    _explain(setup_file, output, result, f"{devices}x {gpu.name}", dataset_size)
    sys.exit(_verdict(output, new_text, gpu.name))


def _read(path: Path):
    from dino_guard.check.inputs import load
    from dino_guard.findings import UnreadableInput

    if path.suffix == ".py":
        _fail(f"{path}: rescale reads setup files (*.dino.yaml, *.dino.toml, *.dino.json), not scripts")
    try:
        loaded = load(path)
    except UnreadableInput as exc:
        _fail(str(exc))
    if loaded.setup is None:
        first = loaded.findings[0] if loaded.findings else None
        where = f":{first.line}:{first.column}: {first.code} {first.message}" if first else ": not a setup"
        _fail(f"{path}{where} (`dino-guard check {path}` lists every problem)")
    return loaded.setup, loaded.text


def _write(source: Path, text: str, fields: dict, output: Path) -> str:
    from dino_guard.check.fix.apply import apply_fields
    from dino_guard.check.fix.errors import NotFixable

    try:
        new_text = apply_fields(source.suffix, text, fields)
    except NotFixable as exc:
        _fail(f"{source}: the changes cannot be written into this file: {exc}")
    try:
        output.write_text(new_text, encoding="utf-8")
    except OSError as exc:
        _fail(f"--output {output}: cannot be written ({exc.strerror or exc})")
    return new_text


def _explain(source: Path, output: Path, result, gpus: str, images: int) -> None:
    click.echo(f"{printable(str(source))} -> {printable(str(output))} for {gpus} and {images:,} images:")
    for change in [*result.changes, *result.notes]:
        old = "(unset)" if change.old is None else _value(change.old)
        new = "(removed)" if change.new is None else _value(change.new)
        click.echo(f"  {change.field}: {old} -> {new}")
        click.echo(f"      {change.reason} [{change.source}]")


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _verdict(output: Path, text: str, gpu: str) -> int:
    from dino_guard.check.engine import Options
    from dino_guard.check.inputs import findings_of, load_text
    from dino_guard.check.report import FORMATTERS
    from dino_guard.findings import Severity

    findings = [f for f in findings_of(output, load_text(output, text), Options(count_images=False))
                if f.severity != Severity.INFO]
    if not findings:
        click.echo(f"{printable(str(output))} checks clean on {gpu} (dino-guard check)")
        return 0
    click.echo(FORMATTERS["text"](findings, 1))
    return 1
