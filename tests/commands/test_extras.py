"""A checker-only install: train and export say what to install and exit 2 (issue 25).

The install without the train extra is simulated in a fresh interpreter in
which `import torch` fails (sys.modules[name] = None is how Python marks a
module that must not be imported: import raises ModuleNotFoundError and
importlib.util.find_spec returns None).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import EXAMPLES

BLOCKED_RUN = ("import sys\n"
               "for name in sys.argv[1].split(','): sys.modules[name] = None\n"
               "from dino_guard.cli import main\n"
               "main(sys.argv[2:], prog_name='dino-guard')\n")


def without(modules: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCKED_RUN, modules, *args],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args", [("train", str(EXAMPLES / "synthetic_small.dino.yaml")), ("export", ".")])
def test_torch_side_commands_without_torch_give_the_install_hint_and_exit_2(args):
    result = without("torch", *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"dino-guard {args[0]}: error: needs the train extra (torch not installed)" in result.stderr
    assert "dino-guard[train]" in result.stderr


def test_the_check_still_runs_without_torch():
    result = without("torch,timm,lightly,torchvision", "check", str(EXAMPLES / "vit_s16_imagenet.dino.yaml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_export_help_names_the_json_it_writes(cli):
    help_text = " ".join(cli("export", "--help").output.split())
    assert "-o model.pt writes model.json" in help_text
