"""What the torch-side commands (train, export) need installed, and the one line that says so when it is missing.

A checker-only install (pydantic, click, PyYAML) runs `check` and
`estimate --method analytic`; `train` and `export` need the train extra.
Without it they print the install hint and exit 2 (bad environment, like
bad input), never a ModuleNotFoundError traceback with exit 1 (which means
"the setup has errors").
"""

from __future__ import annotations

import importlib.util
import sys

import click

from dino_guard.memory.estimate import INSTALL_HINT

# Import names of the train extra's packages (pyproject.toml [project.optional-dependencies] train)
TRAIN_MODULES = ("torch", "torchvision", "timm", "lightly", "matplotlib", "tqdm", "PIL")


def missing_train_modules() -> list[str]:
    """The train extra's packages that cannot be imported here (found without importing them)."""
    missing = []
    for name in TRAIN_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a module set to None in sys.modules, a broken package
            found = False
        if not found:
            missing.append(name)
    return missing


def require_train_extra(command: str) -> None:
    """Exit 2 with the install hint when `command` cannot run for lack of the train extra."""
    missing = missing_train_modules()
    if missing:
        exit_without(command, missing)


def exit_without(command: str, missing: list[str]) -> None:
    click.echo(f"dino-guard {command}: error: needs the train extra ({', '.join(missing)} not installed): "
               f"{INSTALL_HINT}", err=True)
    sys.exit(2)
