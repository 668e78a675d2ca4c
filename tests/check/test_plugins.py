"""check skips pydantic's plugin search (importlib.metadata) unless the user enabled plugins (issue 25, speed)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import EXAMPLES, REPO

GOOD_SETUP = str(EXAMPLES / "synthetic_small.dino.yaml")

PROBE = """
import sys
from dino_guard.cli import main
sys.argv = ['dino-guard', 'check', {setup!r}]
try:
    main()
except SystemExit as exit:
    print('EXIT', exit.code)
print('METADATA', 'importlib.metadata' in sys.modules)
print('LOADER', type(sys.modules['pydantic.plugin._loader']).__name__)
"""


def run_check(plugins: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    if plugins is not None:
        env["PYDANTIC_DISABLE_PLUGINS"] = plugins
    result = subprocess.run([sys.executable, "-c", PROBE.format(setup=GOOD_SETUP)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.split(" ")[0].isupper())


@pytest.mark.parametrize("plugins", [None, "__all__", "true"])
def test_check_builds_the_schema_without_reading_distribution_metadata(plugins):
    seen = run_check(plugins)
    assert seen == {"EXIT": "0", "METADATA": "False", "LOADER": "NoPluginLoader"}


def test_plugins_the_user_enabled_are_searched_as_pydantic_does():
    seen = run_check("some_other_plugin")  # disables one plugin by name: the others still load
    assert seen == {"EXIT": "0", "METADATA": "True", "LOADER": "module"}


def test_the_stand_in_answers_as_pydantics_loader_with_plugins_disabled(monkeypatch):
    from pydantic.plugin import _loader

    from dino_guard.check.plugins import LOADER, NoPluginLoader

    monkeypatch.setenv("PYDANTIC_DISABLE_PLUGINS", "__all__")
    assert list(NoPluginLoader(LOADER).get_plugins()) == list(_loader.get_plugins()) == []


def test_any_other_name_comes_from_the_real_loader():
    code = ("import sys; from dino_guard.check import plugins; assert plugins.skip_plugin_search(); "
            "from pydantic.plugin._loader import PYDANTIC_ENTRY_POINT_GROUP as group; "
            "print(group, type(sys.modules['pydantic.plugin._loader']).__name__)")
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.split() == ["pydantic", "module"], result.stderr
