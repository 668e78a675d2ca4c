"""The `dino-guard` command: check, estimate, rule(s), schema, train.

`train` and `estimate` are loaded lazily, so that `dino-guard check` (a
pre-commit hook, run on every commit) never pays for torch's import.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Optional

import click

from dino_guard import __version__
from dino_guard.findings import Severity, UnreadableInput

LAZY_COMMANDS = {
    "estimate": "dino_guard.memory.cli_estimate:estimate",
    "train": "dino_guard.trainer.cli_train:train",
}
LAZY_HELP = {
    "estimate": "Predict peak GPU memory of a training step and fit the batch to a GPU.",
    "train": "Check, then train the setup with the reference DINO trainer.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(LAZY_COMMANDS))

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS:
            module, attr = LAZY_COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        # list lazy commands without importing them (help must stay fast)
        rows = [(name, LAZY_HELP.get(name) or self.commands[name].get_short_help_str(60)) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dino-guard")
def main() -> None:
    """Catch broken DINO self-supervised training setups before they cost GPU hours."""


def _split_codes(values: tuple) -> tuple:
    return tuple(code.strip().upper() for value in values for code in value.split(",") if code.strip())


def project_config(start: Path) -> dict:
    """[tool.dino-guard] from the nearest pyproject.toml, if any."""
    from dino_guard.loader import tomllib

    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except RecursionError:
                raise click.UsageError(f"{candidate}: cannot read [tool.dino-guard]: nested too deeply to read")
            except (ValueError, OSError) as exc:  # bad TOML or UTF-8, a 5000-digit integer, no permission
                reason = exc.strerror if isinstance(exc, OSError) else str(exc).split("; use sys.")[0]
                raise click.UsageError(f"{candidate}: cannot read [tool.dino-guard]: {reason}")
            config = data.get("tool", {}).get("dino-guard", {}) if isinstance(data.get("tool"), dict) else {}
            if not isinstance(config, dict):
                raise click.UsageError(f"{candidate}: [tool.dino-guard] must be a table, e.g. ignore = [\"DG411\"]")
            if "gpu" in config and not isinstance(config["gpu"], str):
                raise click.UsageError(f"{candidate}: [tool.dino-guard] gpu must be a GPU name, e.g. gpu = \"H100-80GB\"")
            return config
    return {}


def _config_codes(config: dict, key: str) -> tuple:
    value = config.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise click.UsageError(f"pyproject.toml [tool.dino-guard] {key} must be a list of code prefixes, e.g. [\"DG4\"]")
    return _split_codes(tuple(value))


@main.command()
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
    from dino_guard.terminal import printable

    config = project_config(Path.cwd())
    gpu = gpu or config.get("gpu")
    _check_gpu_name(gpu)
    options = Options(select=_split_codes(select) or _config_codes(config, "select"),
                      ignore=_split_codes(ignore) + _config_codes(config, "ignore"), gpu=gpu)
    findings, unreadable, files = [], False, 0
    for path in inputs.expand(list(paths)):
        try:
            findings.extend(inputs.check_path(path, options))
        except UnreadableInput as exc:
            click.echo(f"dino-guard: error: {printable(str(exc))}", err=True)
            unreadable = True
            continue
        files += 1
    if files == 0 and not unreadable:
        click.echo(f"dino-guard: warning: no setup files (*.dino.yaml, *.py) found in {printable(', '.join(paths))}", err=True)
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


@main.command("rule")
@click.argument("code")
def rule_command(code: str) -> None:
    """Print the documentation of one rule, e.g. `dino-guard rule DG201`."""
    from dino_guard.rules.registry import RETIRED, RULES, all_rules

    all_rules()
    code = code.strip().upper()
    if code in RETIRED:
        click.echo(f"{code} is retired: {RETIRED[code]}")
        return
    entry = RULES.get(code) or next((r for r in RULES.values() if r.name == code.lower()), None)
    if entry is None:
        import difflib

        close = difflib.get_close_matches(code, list(RULES) + [r.name.upper() for r in RULES.values()], n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        from dino_guard.terminal import printable

        raise click.UsageError(f"no rule {printable(code)}.{hint} `dino-guard rules` lists them all.")
    click.echo(f"{entry.code} {entry.name} ({entry.severity.value})\n")
    click.echo(entry.doc)


@main.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def rules_command(fmt: str) -> None:
    """List every rule: code, name, severity, summary."""
    from dino_guard.rules.registry import all_rules

    entries = all_rules()
    if fmt == "json":
        click.echo(json.dumps([{"code": r.code, "name": r.name, "severity": r.severity.value, "summary": r.summary,
                                "origin": r.origin} for r in entries], indent=2))
    elif fmt == "markdown":
        click.echo("| code | name | severity | what it catches |\n|---|---|---|---|")
        for r in entries:
            click.echo(f"| {r.code} | {r.name} | {r.severity.value} | {r.summary} |")
    else:
        for r in entries:
            click.echo(f"{r.code}  {r.name:<34} {r.severity.value:<8} {r.summary}")


@main.command("schema")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True,
              help="json: JSON Schema; markdown: the field reference tables of the README.")
def schema_command(output: Optional[str], fmt: str) -> None:
    """Print the JSON Schema of setup files (draft-07, for editors' YAML servers)."""
    from dino_guard.schemas.export import markdown_reference, schema_json

    text = schema_json() if fmt == "json" else markdown_reference().rstrip()
    if output:
        try:
            Path(output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            from dino_guard.terminal import printable

            raise click.UsageError(f"cannot write {printable(output)}: {exc.strerror or exc}")
    else:
        click.echo(text)


if __name__ == "__main__":  # pragma: no cover
    main()
