"""`[tool.dino-guard]` in pyproject.toml: the project's own settings for `check`.

Found as ruff finds its settings: from each checked file upwards, the nearest
pyproject.toml that has a [tool.dino-guard] table wins (`--config FILE`
overrides the search). Settings are strict: an unknown key, code or prefix
is a usage error with a did-you-mean, never silently ignored.
"""

from __future__ import annotations

import dataclasses
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
    "exclude": "glob patterns of files and folders not to check, replacing the defaults (.git, .venv, build, ...)",
    "extend-exclude": "glob patterns of files and folders not to check, on top of the defaults",
    "per-file-ignores": "a table: glob pattern -> codes dropped for the files it matches, e.g. \"docs/*\" = [\"DG7\"]",
    "src": "folders that hold the project's own packages (default [\".\", \"src\"]): a lightly there is first-party",
    "check-tests": "true: also read test files (test_*.py, *_test.py, conftest.py, tests/) as training scripts",
    "fail-on": "the least severity that fails the check (exit 1): \"error\" (default) or \"warning\"",
}
FAIL_ON = ("error", "warning")
PYPROJECT_BYTES = 1_000_000  # a pyproject.toml is a few KB: read at most this much
_CODE_SHAPE = re.compile(r"DG\d{0,3}")


@dataclass(frozen=True)
class Settings:
    """The resolved settings one checked file is judged with."""

    source: Path | None  # the pyproject.toml (or --config file) they came from; None: defaults
    select: tuple = ()
    ignore: tuple = ()
    gpu: str | None = None
    warn_unused_ignores: bool = False
    exclude: tuple | None = None  # None: the default exclusions
    extend_exclude: tuple = ()
    per_file_ignores: tuple = ()  # (pattern, codes) pairs
    src: tuple = ()  # folders (absolute) that hold first-party packages, beyond the project root and src/
    check_tests: bool = False
    fail_on: str = "error"  # error | warning: the least severity that makes check exit 1

    @property
    def root(self) -> Path | None:
        """The folder patterns are relative to: the one that holds the settings file."""
        return self.source.parent if self.source else None

    def ignores_for(self, path: Path) -> tuple:
        """--ignore and ignore, plus the per-file-ignores whose pattern matches `path`."""
        from dino_guard.check.exclude import matches

        extra = tuple(code for pattern, codes in self.per_file_ignores if matches(path, (pattern,), self.root, False)
                      for code in codes)
        return (*self.ignore, *extra)


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


_LOOK_ALIKES = str.maketrans("OIL", "011")  # letters typed for the digits they look like


def _did_you_mean(word: str, choices) -> str:
    choices = list(choices)
    digits = word[:2] + word[2:].translate(_LOOK_ALIKES)  # DG2O1 -> DG201, before guessing by similarity
    if digits != word and digits in choices:
        return f". Did you mean {digits}?"
    near = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f". Did you mean {near[0]}?" if near else ""


def find_config(path: Path) -> Path | None:
    """The nearest pyproject.toml above `path` with a [tool.dino-guard] table, or None."""
    start = Path(os.path.abspath(path))  # a symlinked setup takes the settings of the folder holding the link
    return _search(start if start.is_dir() else start.parent)


_FOUND: dict[Path, Path | None] = {}  # folder -> its settings file: a walk asks once per folder, not per file


def _search(folder: Path) -> Path | None:
    """A loop, not recursion: a path 500 folders deep is an ordinary input."""
    visited = []
    for current in (folder, *folder.parents):
        if current in _FOUND:
            found = _FOUND[current]
            break
        visited.append(current)
        candidate = current / "pyproject.toml"
        if candidate.is_file() and "dino-guard" in _read(candidate).get("tool", {}):
            found = candidate
            break
    else:
        found = None
    _FOUND.update(dict.fromkeys(visited, found))
    return found


def explicit_config(file: Path) -> Path:
    """A --config FILE: it must exist and hold a [tool.dino-guard] table."""
    if not file.is_file():
        raise click.UsageError(f"--config: {file}: no such file")
    if "dino-guard" not in _read(file.resolve()).get("tool", {}):
        raise click.UsageError(f"--config: {file} has no [tool.dino-guard] table, "
                               "e.g. [tool.dino-guard] ignore = [\"DG411\"]")
    return file.resolve()


@lru_cache(maxsize=64)
def _read(file: Path) -> dict:
    from dino_guard.findings import UnreadableInput
    from dino_guard.setupfile.loader import read_bounded, tomllib

    try:
        data = tomllib.loads(read_bounded(file, PYPROJECT_BYTES, "a pyproject.toml", "").decode("utf-8"))
    except UnreadableInput as exc:
        raise click.UsageError(f"cannot read settings: {printable(str(exc))}") from None
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
    fail_on = config.get("fail-on", "error")
    if fail_on not in FAIL_ON:
        raise click.UsageError(f"{file}: [tool.dino-guard] fail-on must be \"error\" or \"warning\", not {fail_on!r}")
    exclude = _patterns(config, "exclude", file) if "exclude" in config else None
    src = tuple((file.parent / folder).resolve() for folder in _patterns(config, "src", file))
    return Settings(file, _codes(config, "select", file), _codes(config, "ignore", file), gpu, warn, exclude,
                    _patterns(config, "extend-exclude", file), _per_file_ignores(config, file), src,
                    _flag(config, "check-tests", file), fail_on)


def _flag(config: dict, key: str, file: Path) -> bool:
    value = config.get(key, False)
    if not isinstance(value, bool):
        raise click.UsageError(f"{file}: [tool.dino-guard] {key} must be true or false")
    return value


def _patterns(config: dict, key: str, file: Path) -> tuple:
    value = config.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise click.UsageError(f"{file}: [tool.dino-guard] {key} must be a list of glob patterns, e.g. [\"docs/*\"]")
    return tuple(value)


def _per_file_ignores(config: dict, file: Path) -> tuple:
    table = config.get("per-file-ignores", {})
    if not isinstance(table, dict):
        raise click.UsageError(f"{file}: [tool.dino-guard] per-file-ignores must be a table, "
                               f"e.g. [tool.dino-guard.per-file-ignores] \"docs/*\" = [\"DG7\"]")
    return tuple((pattern, _codes(table, pattern, file, f"per-file-ignores.{pattern!r}")) for pattern in table)


def _codes(config: dict, key: str, file: Path, name: str | None = None) -> tuple:
    value, name = config.get(key, []), name or key
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise click.UsageError(f"{printable(str(file))}: [tool.dino-guard] {printable(name)} must be a list of code "
                               f"prefixes, e.g. [\"DG4\"]")
    return split_codes(tuple(value), f"{printable(str(file))}: [tool.dino-guard] {printable(name)}")


def resolve(file_settings: Settings, select: tuple, ignore: tuple, gpu: str | None, warn_unused: bool,
            fail_on: str | None = None) -> Settings:
    """Command-line options over the file: --select replaces, --ignore adds, --gpu and --fail-on replace."""
    return dataclasses.replace(file_settings, select=select or file_settings.select,
                               ignore=(*file_settings.ignore, *ignore), gpu=gpu or file_settings.gpu,
                               warn_unused_ignores=warn_unused or file_settings.warn_unused_ignores,
                               fail_on=fail_on or file_settings.fail_on)


def excluded(path: Path, settings: Settings, ancestors: bool) -> bool:
    """The settings leave `path` out (exclude or the defaults, then extend-exclude).

    ancestors: also when a folder above it (below the project root) is excluded; a walk
    checks each folder as it enters it instead.
    """
    from dino_guard.check.exclude import DEFAULT_EXCLUDE, matches
    from dino_guard.datafiles import project_root

    patterns = (*(settings.exclude if settings.exclude is not None else DEFAULT_EXCLUDE), *settings.extend_exclude)
    return matches(path, patterns, settings.root or project_root(path), ancestors)


def skipped_test_file(path: Path, settings: Settings) -> bool:
    """A Python test file is not a training script unless check-tests opts in."""
    from dino_guard.check.exclude import is_test_file
    from dino_guard.datafiles import project_root

    return path.suffix == ".py" and not settings.check_tests and is_test_file(path, settings.root or project_root(path))


def describe(settings: Settings, files: list[Path]) -> str:
    """The --show-settings block for one group of files that share their settings."""
    lines = [f"Settings file: {printable(str(settings.source)) if settings.source else '(none: defaults)'}",
             f"  select = {list(settings.select) or 'all codes'}",
             f"  ignore = {list(settings.ignore)}",
             f"  gpu = {settings.gpu!r}",
             f"  warn-unused-ignores = {str(settings.warn_unused_ignores).lower()}",
             f"  exclude = {list(settings.exclude) if settings.exclude is not None else 'the defaults'}",
             f"  extend-exclude = {list(settings.extend_exclude)}",
             f"  per-file-ignores = {dict((p, list(c)) for p, c in settings.per_file_ignores)}",
             f"  src = {[str(s) for s in settings.src]}",
             f"  check-tests = {str(settings.check_tests).lower()}",
             f"  fail-on = {settings.fail_on!r}",
             "  files:"]
    lines.extend(f"    {printable(str(f))}" for f in files)
    return "\n".join(lines)
