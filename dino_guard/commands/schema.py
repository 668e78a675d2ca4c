"""`dino-guard schema`: the setup's JSON Schema (or the README's field tables)."""

from __future__ import annotations

from pathlib import Path

import click

from dino_guard.terminal import printable


@click.command("schema")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@click.option("--format", "fmt", type=click.Choice(["json", "markdown"]), default="json", show_default=True,
              help="json: JSON Schema; markdown: the field reference tables of the README.")
def schema_command(output: str | None, fmt: str) -> None:
    """Print the JSON Schema of setup files (draft-07, for editors' YAML servers)."""
    from dino_guard.schemas.export import markdown_reference, schema_json

    text = schema_json() if fmt == "json" else markdown_reference().rstrip()
    if output:
        try:
            Path(output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise click.UsageError(f"cannot write {printable(output)}: {exc.strerror or exc}") from exc
    else:
        click.echo(text)
