"""`[tool.dino-guard]` in pyproject.toml: the project's own settings for `check`."""

from __future__ import annotations

from pathlib import Path

import click


def split_codes(values: tuple) -> tuple:
    return tuple(code.strip().upper() for value in values for code in value.split(",") if code.strip())


def project_config(start: Path) -> dict:
    """[tool.dino-guard] from the nearest pyproject.toml, if any."""
    from dino_guard.loader import tomllib

    for folder in [start, *start.parents]:
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise click.UsageError(f"{candidate}: cannot read [tool.dino-guard]: {exc}")
            config = data.get("tool", {}).get("dino-guard", {}) if isinstance(data.get("tool"), dict) else {}
            if not isinstance(config, dict):
                raise click.UsageError(f"{candidate}: [tool.dino-guard] must be a table, e.g. ignore = [\"DG411\"]")
            if "gpu" in config and not isinstance(config["gpu"], str):
                raise click.UsageError(f"{candidate}: [tool.dino-guard] gpu must be a GPU name, e.g. gpu = \"H100-80GB\"")
            return config
    return {}


def config_codes(config: dict, key: str) -> tuple:
    value = config.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise click.UsageError(f"pyproject.toml [tool.dino-guard] {key} must be a list of code prefixes, e.g. [\"DG4\"]")
    return split_codes(tuple(value))
