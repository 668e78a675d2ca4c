"""`dino-guard check PATH...`: findings for setup files and lightly scripts.

Exit status: 0 no errors, 1 at least one error, 2 usage or unreadable input.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from dino_guard.check import plugins
from dino_guard.commands import config as cfg
from dino_guard.findings import Severity, UnreadableInput
from dino_guard.terminal import printable

# --fail-on: the severities that make check exit 1
FAILING = {"error": (Severity.ERROR,), "warning": (Severity.ERROR, Severity.WARNING)}


@click.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "github", "sarif"]), default="text",
              show_default=True)
@click.option("--select", multiple=True, help="Only these codes or prefixes (comma-separated), e.g. DG2,DG401.")
@click.option("--ignore", multiple=True, help="Skip these codes or prefixes (comma-separated).")
@click.option("--gpu", help="GPU to check memory against, overriding hardware.gpu (e.g. H100-80GB).")
@click.option("--show-info", is_flag=True,
              help="Also list info findings in text/github output (json and sarif always have them).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Read [tool.dino-guard] from this TOML file instead of the nearest pyproject.toml.")
@click.option("--warn-unused-ignores", is_flag=True, help="Report suppression comments that suppress nothing (DG008).")
@click.option("--show-settings", is_flag=True,
              help="Print which settings file each path uses and the resolved settings, then exit.")
@click.option("--force-exclude", is_flag=True,
              help="Leave out excluded files even when named on the command line (the pre-commit hook passes it).")
@click.option("--fail-on", type=click.Choice(cfg.FAIL_ON), default=None,
              help="The least severity that fails the check (exit 1). Default: error, or fail-on in [tool.dino-guard].")
@click.option("--fix", is_flag=True,
              help="Apply safe fixes in place (comments and untouched bytes kept), then report what remains.")
@click.option("--unsafe-fixes", is_flag=True,
              help="With --fix or --diff: also apply fixes that change the recipe (lr, momentum, K, ...).")
@click.option("--diff", is_flag=True,
              help="Print the fixes as a unified diff and write nothing; exit 1 when there are any.")
def check(paths, fmt, select, ignore, gpu, show_info, config_file, warn_unused_ignores, show_settings,
          force_exclude, fail_on, fix, unsafe_fixes, diff) -> None:
    """Check setup files (*.dino.yaml) and lightly scripts (*.py) for DINO mistakes.

    With no PATH, checks the current folder (as ruff does). Settings come from
    the nearest pyproject.toml with a [tool.dino-guard] table above each file
    (or --config FILE); options override them.

    --fix applies the safe fixes (`dino-guard rule CODE` says which are) and
    prints `Fixed N findings (M remaining)`; --unsafe-fixes adds those that
    change the recipe; --diff shows the changes without writing them.

    Exit status: 0 no errors (no warnings with --fail-on warning), 1 at least
    one error (or warning with --fail-on warning; --diff: changes to make), 2
    usage error or unreadable input.
    """
    plugins.skip_plugin_search()  # before the first pydantic model is built: see dino_guard/check/plugins.py
    from dino_guard.check import inputs

    paths = paths or (".",)
    select, ignore = cfg.split_codes(select), cfg.split_codes(ignore)
    _check_gpu_name(gpu)
    config_file = cfg.explicit_config(config_file) if config_file is not None else None

    @functools.cache  # asked once when a file is walked and again when it is checked
    def settings_of(path: Path) -> cfg.Settings:
        source = config_file or cfg.find_config(path)
        return cfg.resolve(cfg.load_settings(source), select, ignore, gpu, warn_unused_ignores, fail_on)

    walk = inputs.expand(list(paths), lambda p, named: cfg.excluded(p, settings_of(p), ancestors=named), force_exclude)
    plan = [(path, settings_of(path)) for path in walk]
    if show_settings:
        groups: dict[cfg.Settings, list[Path]] = {}
        for path, settings in plan:
            groups.setdefault(settings, []).append(path)
        click.echo("\n".join(cfg.describe(s, files) for s, files in groups.items()) or "no files to check")
        return
    if diff:
        _diff(plan, unsafe_fixes)
    fixed = _fix(plan, unsafe_fixes) if fix else None
    _run(plan, paths, fmt, show_info, fixed)


def _options(settings: cfg.Settings, path: Path):
    from dino_guard.check.engine import Options

    return Options(select=settings.select, ignore=settings.ignores_for(path), gpu=settings.gpu,
                   warn_unused_ignores=settings.warn_unused_ignores, src=settings.src)


def _fixes(plan: list, unsafe: bool) -> tuple[list, list[str]]:
    """Each readable file before and after its fixes, and why the others could not be read."""
    from dino_guard.check.fix.apply import fix_file

    results, unreadable = [], []
    for path, settings in plan:
        _check_gpu_name(settings.gpu, settings.source)
        if cfg.skipped_test_file(path, settings):  # not a training script: nothing to fix
            continue
        try:
            results.append(fix_file(path, _options(settings, path), unsafe))
        except UnreadableInput as exc:
            unreadable.append(str(exc))
    return results, unreadable


def _diff(plan: list, unsafe: bool) -> None:
    """--diff: the unified diff of every fix, nothing written; exit 1 when there is one (as ruff)."""
    results, unreadable = _fixes(plan, unsafe)
    changed = [r for r in results if r.changed]
    for result in changed:
        for line in result.diff().splitlines():  # a diff shows file content: escaped as every printed value
            click.echo(printable(line))
    count = sum(r.applied for r in changed)
    click.echo(f"Would fix {count} finding{'s' * (count != 1)}" if count else "No fixes to apply", err=True)
    for message in unreadable:
        click.echo(f"dino-guard: error: {printable(message)}", err=True)
    sys.exit(2 if unreadable else 1 if changed else 0)


def _fix(plan: list, unsafe: bool) -> int:
    """--fix: write each changed file; the number of findings fixed."""
    from dino_guard.check.fix.apply import write

    count = 0
    for result in _fixes(plan, unsafe)[0]:  # the unreadable ones are reported by the check that follows
        if result.changed:
            try:
                write(result)
            except UnreadableInput as exc:  # a file it may read but not replace: one line, exit 2
                click.echo(f"dino-guard: error: {printable(str(exc))}", err=True)
                sys.exit(2)
            count += result.applied
    return count


def _run(plan: list, paths: tuple, fmt: str, show_info: bool, fixed: int | None = None) -> None:
    from dino_guard.check import inputs
    from dino_guard.check.report import FORMATTERS

    findings, unreadable, files, failing = [], False, 0, False
    for path, settings in plan:
        _check_gpu_name(settings.gpu, settings.source)
        if cfg.skipped_test_file(path, settings):  # not a training script: counted, not read
            files += 1
            continue
        try:
            found = inputs.check_path(path, _options(settings, path))
        except UnreadableInput as exc:
            click.echo(f"dino-guard: error: {printable(str(exc))}", err=True)
            unreadable = True
            continue
        findings.extend(found)
        failing = failing or any(f.severity in FAILING[settings.fail_on] for f in found)
        files += 1
    if files == 0 and not unreadable:
        click.echo(f"dino-guard: warning: no setup files (*.dino.yaml, *.py) found in {printable(', '.join(paths))}",
                   err=True)
    if fmt in ("text", "github") and not show_info:
        findings = [f for f in findings if f.severity != Severity.INFO]
    # machine formats always print a document (an empty list); text says nothing about no files
    output = FORMATTERS[fmt](findings, files) if files or fmt in ("json", "sarif") else ""
    if output:
        click.echo(output)
    if fixed is not None:  # machine formats keep stdout one document: the count goes to stderr
        click.echo(f"Fixed {fixed} finding{'s' * (fixed != 1)} ({len(findings)} remaining)", err=fmt != "text")
    sys.exit(2 if unreadable else 1 if failing else 0)


def _check_gpu_name(name: str | None, source: Path | None = None) -> None:
    """A --gpu (or pyproject gpu) that names no known card is a usage error, not a finding."""
    if not name:
        return
    from dino_guard import gpus

    try:
        gpus.resolve(name)
    except gpus.GpuError as exc:
        raise click.UsageError(f"{source}: [tool.dino-guard] gpu: {exc}" if source else f"--gpu: {exc}") from exc
