"""`dino-guard check PATH...`: findings for setup files and lightly scripts.

Exit status: 0 no errors, 1 at least one error, 2 usage or unreadable input.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import click

from dino_guard.commands.config import config_codes, split_codes, project_config
from dino_guard.findings import Severity, UnreadableInput


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "sarif"]), default="text", show_default=True)
@click.option("--select", multiple=True, help="Only these codes or prefixes (comma-separated), e.g. DG2,DG401.")
@click.option("--ignore", multiple=True, help="Skip these codes or prefixes (comma-separated).")
@click.option("--gpu", help="GPU to check memory against, overriding hardware.gpu (e.g. H100-80GB).")
@click.option("--show-info", is_flag=True, help="Also list info findings in text/github output (json and sarif always have them).")
def check(paths, fmt, select, ignore, gpu, show_info) -> None:
    """Check setup files (*.dino.yaml) and lightly scripts (*.py) for DINO mistakes.

    Exit status: 0 no errors, 1 at least one error, 2 unreadable input.
    """
    from dino_guard import inputs
    from dino_guard.engine import Options
    from dino_guard.report import FORMATTERS

    config = project_config(Path.cwd())
    gpu = gpu or config.get("gpu")
    _check_gpu_name(gpu)
    options = Options(select=split_codes(select) or config_codes(config, "select"),
                      ignore=split_codes(ignore) + config_codes(config, "ignore"), gpu=gpu)
    findings, unreadable, files = [], False, 0
    for path in inputs.expand(list(paths)):
        try:
            findings.extend(inputs.check_path(path, options))
        except UnreadableInput as exc:
            click.echo(f"dino-guard: error: {exc}", err=True)
            unreadable = True
            continue
        files += 1
    if files == 0 and not unreadable:
        click.echo(f"dino-guard: warning: no setup files (*.dino.yaml, *.py) found in {', '.join(paths)}", err=True)
    if fmt in ("text", "github") and not show_info:
        findings = [f for f in findings if f.severity != Severity.INFO]
    # machine formats always print a document (an empty list); text says nothing about no files
    output = FORMATTERS[fmt](findings, files) if files or fmt in ("json", "sarif") else ""
    if output:
        click.echo(output)
    sys.exit(2 if unreadable else 1 if any(f.severity == Severity.ERROR for f in findings) else 0)


def _check_gpu_name(name: Optional[str]) -> None:
    """A --gpu (or pyproject gpu) that names no known card is a usage error, not a finding."""
    if not name:
        return
    from dino_guard import gpus

    try:
        gpus.resolve(name)
    except gpus.GpuError as exc:
        raise click.UsageError(f"--gpu: {exc}")
