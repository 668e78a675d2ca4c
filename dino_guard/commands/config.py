"""`[tool.dino-guard]` in pyproject.toml: the project's own settings for `check`.

Found as ruff finds its settings: from each checked file upwards, the nearest
pyproject.toml that has a [tool.dino-guard] table wins (`--config FILE`
overrides the search). Settings are strict: an unknown key, code or prefix
is a usage error with a did-you-mean, never silently ignored.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import click

from dino_guard.codes import CODES, RETIRED, known_prefix
from dino_guard.terminal import printable

KEYS = {
    "select": "code prefixes to keep, e.g. [\"DG2\", \"DG401\"]",
    "ignore": "code prefixes to drop, e.g. [\"DG411\"]",
    "gpu": "GPU the batch is checked against, e.g. \"H100-80GB\"",
    "warn-unused-ignores": "true: report suppression comments that suppress nothing (DG008)",
}
_CODE_SHAPE = re.compile(r"DG\d{0,3}")


@dataclass(frozen=True)
class Settings:
    """The resolved settings one checked file is judged with."""

    source: Path | None  # the pyproject.toml (or --config file) they came from; None: defaults
    select: tuple = ()
    ignore: tuple = ()
    gpu: str | None = None
    warn_unused_ignores: bool = False


def split_codes(values: tuple, where: str = "--select/--ignore") -> tuple:
    """Comma-separated code prefixes, upper-cased and checked against the code table."""
    codes = tuple(code.strip().upper() for value in values for code in value.split(",") if code.strip())
    for code in codes:
        if not (_CODE_SHAPE.fullmatch(code) and known_prefix(code)):
            raise click.UsageError(f"{where}: unknown code or prefix {code!r}{_did_you_mean(code, _code_words())}")
    return codes


def _code_words() -> list[str]:
    prefixes = {code[:n] for code in (*CODES, *RETIRED) for n in (3, 4)}
    return sorted({*CODES, *RETIRED, *prefixes})


def _did_you_mean(word: str, choices) -> str:
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f". Did you mean {near[0]}?" if near else ""


def find_config(path: Path) -> Path | None:
    """The nearest pyproject.toml above `path` with a [tool.dino-guard] table, or None."""
    try:
        start = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop: search from where the link itself lies
        start = Path(os.path.abspath(path))
    return _search(start if start.is_dir() else start.parent)


@lru_cache(maxsize=256)
def _search(folder: Path) -> Path | None:
    candidate = folder / "pyproject.toml"
    if candidate.is_file() and "tool" in _read(candidate) and "dino-guard" in _read(candidate)["tool"]:
        return candidate
    return None if folder.parent == folder else _search(folder.parent)


def explicit_config(file: Path) -> Path:
    """A --config FILE: it must exist and hold a [tool.dino-guard] table."""
    if not file.is_file():
        raise click.UsageError(f"--config: {file}: no such file")
    if "dino-guard" not in _read(file.resolve()).get("tool", {}):
        raise click.UsageError(f"--config: {file} has no [tool.dino-guard] table, e.g. [tool.dino-guard] ignore = [\"DG411\"]")
    return file.resolve()


@lru_cache(maxsize=64)
def _read(file: Path) -> dict:
    from dino_guard.setupfile.loader import tomllib

    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except RecursionError:
        raise click.UsageError(f"{printable(str(file))}: cannot read it as TOML: nested too deeply to read") from None
    except (ValueError, OSError) as exc:  # bad TOML or UTF-8, a 5000-digit integer, no permission
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).split("; use sys.")[0]
        raise click.UsageError(f"{printable(str(file))}: cannot read it as TOML: {reason}") from exc
    return data if isinstance(data.get("tool"), dict) else {}


@lru_cache(maxsize=64)
def load_settings(file: Path | None) -> Settings:
    """[tool.dino-guard] of `file`, validated; Settings(None) when there is no file."""
    if file is None:
        return Settings(None)
    config = _read(file).get("tool", {}).get("dino-guard", {})
    if not isinstance(config, dict):
        raise click.UsageError(f"{file}: [tool.dino-guard] must be a table, e.g. ignore = [\"DG411\"]")
    for key in config:
        if key not in KEYS:
            raise click.UsageError(f"{file}: [tool.dino-guard] has an unknown key {key!r}{_did_you_mean(key, KEYS)} "
                                   f"(known: {', '.join(KEYS)})")
    gpu = config.get("gpu")
    if gpu is not None and not isinstance(gpu, str):
        raise click.UsageError(f"{file}: [tool.dino-guard] gpu must be a GPU name, e.g. gpu = \"H100-80GB\"")
    warn = config.get("warn-unused-ignores", False)
    if not isinstance(warn, bool):
        raise click.UsageError(f"{file}: [tool.dino-guard] warn-unused-ignores must be true or false")
    return Settings(file, _codes(config, "select", file), _codes(config, "ignore", file), gpu, warn)


def _codes(config: dict, key: str, file: Path) -> tuple:
    value = config.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise click.UsageError(f"{file}: [tool.dino-guard] {key} must be a list of code prefixes, e.g. [\"DG4\"]")
    return split_codes(tuple(value), f"{file}: [tool.dino-guard] {key}")


def resolve(file_settings: Settings, select: tuple, ignore: tuple, gpu: str | None, warn_unused: bool) -> Settings:
    """Command-line options over the file: --select replaces, --ignore adds, --gpu replaces."""
    return Settings(file_settings.source, select or file_settings.select, (*file_settings.ignore, *ignore),
                    gpu or file_settings.gpu, warn_unused or file_settings.warn_unused_ignores)


def describe(settings: Settings, files: list[Path]) -> str:
    """The --show-settings block for one group of files that share their settings."""
    lines = [f"Settings file: {settings.source if settings.source else '(none: defaults)'}",
             f"  select = {list(settings.select) or 'all codes'}",
             f"  ignore = {list(settings.ignore)}",
             f"  gpu = {settings.gpu!r}",
             f"  warn-unused-ignores = {str(settings.warn_unused_ignores).lower()}",
             "  files:"]
    lines.extend(f"    {f}" for f in files)
    return "\n".join(lines)
