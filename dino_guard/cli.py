"""The `dino-guard` command: a click group that imports each command only when it runs.

Every command lives in dino_guard/commands/. Loading them lazily keeps
`dino-guard check` (a pre-commit hook, run on every commit) free of torch's
import, and `dino-guard --help` fast.
"""

from __future__ import annotations

import importlib

import click

from dino_guard import __version__

COMMANDS = {
    "check": ("dino_guard.commands.check:check",
              "Check setup files (*.dino.yaml) and lightly scripts (*.py) for DINO mistakes."),
    "estimate": ("dino_guard.commands.estimate:estimate",
                 "Predict peak GPU memory of a training step and fit the batch to a GPU."),
    "export": ("dino_guard.commands.export:export",
               "Write a run's trained backbone as backbone.pt + backbone.json (loads into timm or torchvision)."),
    "rescale": ("dino_guard.commands.rescale:rescale",
                "Rewrite a reference recipe for your GPUs and data set, explaining every change."),
    "rule": ("dino_guard.commands.rules:rule_command",
             "Print the documentation of one rule, e.g. `dino-guard rule DG201`."),
    "rules": ("dino_guard.commands.rules:rules_command", "List every rule: code, name, severity, summary."),
    "schema": ("dino_guard.commands.schema:schema_command",
               "Print the JSON Schema of setup files (draft-07, for editors' YAML servers)."),
    "train": ("dino_guard.commands.train:train", "Check, then train the setup with the reference DINO trainer."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module, attr = COMMANDS[name][0].split(":")
        return getattr(importlib.import_module(module), attr)

    def format_commands(self, ctx, formatter):
        # list commands without importing them (help must stay fast)
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dino-guard")
def main() -> None:
    """Catch broken DINO self-supervised training setups before they cost GPU hours."""


if __name__ == "__main__":  # pragma: no cover
    main()
