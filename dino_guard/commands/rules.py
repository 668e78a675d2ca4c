"""`dino-guard rules` and `dino-guard rule CODE`: the rule documentation."""

from __future__ import annotations

import json

import click

from dino_guard.terminal import printable

FIX_MEANING = {
    "safe": " (applied by `check --fix`: it makes the run possible and keeps the recipe)",
    "unsafe": " (applied only with `check --fix --unsafe-fixes`: it changes the recipe)",
    "none": " (`check --fix` leaves it to you)",
}


@click.command("rule")
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
        raise click.UsageError(f"no rule {printable(code)}.{hint} `dino-guard rules` lists them all.")
    from dino_guard.codes import fix_safety

    click.echo(f"{entry.code} {entry.name} ({entry.severity.value})\n")
    click.echo(entry.doc)
    click.echo(f"\nFix: {fix_safety(entry.code)}{FIX_MEANING[fix_safety(entry.code)]}")


@click.command("rules")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
def rules_command(fmt: str) -> None:
    """List every rule: code, name, severity, summary."""
    from dino_guard.rules.registry import all_rules

    entries = all_rules()
    if fmt == "json":
        from dino_guard.codes import fix_safety

        click.echo(json.dumps([{"code": r.code, "name": r.name, "severity": r.severity.value, "summary": r.summary,
                                "origin": r.origin, "fix": fix_safety(r.code)} for r in entries], indent=2))
    elif fmt == "markdown":
        click.echo("| code | name | severity | what it catches |\n|---|---|---|---|")
        for r in entries:
            click.echo(f"| {r.code} | {r.name} | {r.severity.value} | {r.summary} |")
    else:
        for r in entries:
            click.echo(f"{r.code}  {r.name:<34} {r.severity.value:<8} {r.summary}")
