"""`check` is strict about its own settings and finds them as ruff does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import EXAMPLES

LOSS_MISMATCH = EXAMPLES / "broken" / "loss_output_dim_not_head.dino.yaml"  # DG401


@pytest.mark.parametrize("option, value, suggestion", [
    ("--select", "XYZ", "unknown code or prefix 'XYZ'"),
    ("--ignore", "DG2O1", "Did you mean DG201?"),
    ("--select", "DG9", "unknown code or prefix 'DG9'"),
    ("--ignore", "DG4011", "Did you mean DG4"),
])
def test_unknown_codes_on_the_command_line_are_usage_errors(cli, good_setup, option, value, suggestion):
    result = cli("check", good_setup, option, value)
    assert result.exit_code == 2 and suggestion in result.output


@pytest.mark.parametrize("config, message", [
    ('[tool.dino-guard]\nignor = ["DG401"]\n', "unknown key 'ignor'. Did you mean ignore?"),
    ('[tool.dino-guard]\nselect = ["DG2O1"]\n',
     "[tool.dino-guard] select: unknown code or prefix 'DG2O1'. Did you mean DG201?"),
    ('[tool.dino-guard]\ngpu = "H100-8OGB"\n', "[tool.dino-guard] gpu: unknown GPU"),
    ('[tool.dino-guard]\nwarn-unused-ignores = "yes"\n', "warn-unused-ignores must be true or false"),
])
def test_unknown_config_keys_and_codes_are_usage_errors(cli, tmp_path, good_setup, config, message):
    (tmp_path / "pyproject.toml").write_text(config)
    result = cli("check", good_setup)
    assert result.exit_code == 2 and message in result.output


def _project(root, config: str):
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(config)
    setup = root / "sub" / "s.dino.yaml"
    setup.parent.mkdir(exist_ok=True)
    shutil.copy(LOSS_MISMATCH, setup)
    return setup


def test_the_nearest_pyproject_above_each_file_wins(cli, tmp_path, monkeypatch):
    quiet = _project(tmp_path / "quiet", '[tool.dino-guard]\nignore = ["DG401"]\n')
    loud = _project(tmp_path / "loud", '[tool.dino-guard]\nselect = ["DG4"]\n')
    (tmp_path / "pyproject.toml").write_text('[tool.dino-guard]\nignore = ["DG4"]\n')  # farther away: loses
    monkeypatch.chdir(tmp_path)
    found = json.loads(cli("check", quiet, loud, "--format", "json").output)
    assert {(f["path"], f["code"]) for f in found if f["severity"] == "error"} == {(str(loud), "DG401")}


def test_a_pyproject_without_the_table_is_skipped(cli, tmp_path):
    setup = _project(tmp_path / "p", '[project]\nname = "x"\n')
    (tmp_path / "pyproject.toml").write_text('[tool.dino-guard]\nignore = ["DG401"]\n')
    assert cli("check", setup).exit_code == 0


def test_config_option_overrides_the_search(cli, tmp_path):
    setup = _project(tmp_path / "p", '[tool.dino-guard]\nignore = ["DG401"]\n')
    other = tmp_path / "strict.toml"
    other.write_text('[tool.dino-guard]\nselect = ["DG4"]\n')
    assert cli("check", setup).exit_code == 0
    assert cli("check", setup, "--config", other).exit_code == 1
    assert cli("check", setup, "--config", tmp_path / "none.toml").exit_code == 2
    (tmp_path / "empty.toml").write_text('[tool.ruff]\nline-length = 100\n')
    result = cli("check", setup, "--config", tmp_path / "empty.toml")
    assert result.exit_code == 2 and "has no [tool.dino-guard] table" in result.output


def test_show_settings_names_the_file_and_the_resolved_settings(cli, tmp_path):
    setup = _project(tmp_path / "p", '[tool.dino-guard]\nignore = ["DG411"]\ngpu = "H100-80GB"\n')
    result = cli("check", setup, "--show-settings", "--ignore", "DG2")
    assert result.exit_code == 0
    assert f"Settings file: {tmp_path / 'p' / 'pyproject.toml'}" in result.output
    assert "ignore = ['DG411', 'DG2']" in result.output and "gpu = 'H100-80GB'" in result.output
    assert str(setup) in result.output and "DG401" not in result.output  # nothing is checked


def test_show_settings_without_a_file_says_defaults(cli, good_setup):
    assert "Settings file: (none: defaults)" in cli("check", good_setup, "--show-settings").output


def test_warn_unused_ignores_from_the_config(cli, tmp_path):
    setup = _project(tmp_path / "p", '[tool.dino-guard]\nwarn-unused-ignores = true\n')
    setup.write_text(setup.read_text() + "# dino-guard: ignore-file[DG203]\n")
    assert "DG008" in cli("check", setup).output


def test_settings_search_from_a_symlink_loop_does_not_crash(tmp_path):
    from dino_guard.commands.config import find_config

    loop = tmp_path / "a.dino.yaml"
    loop.symlink_to(tmp_path / "b.dino.yaml")
    (tmp_path / "b.dino.yaml").symlink_to(loop)
    (tmp_path / "pyproject.toml").write_text("[tool.dino-guard]\nignore = [\"DG411\"]\n")
    assert find_config(loop) == tmp_path / "pyproject.toml"


def test_a_symlinked_setup_takes_the_settings_of_the_folder_holding_the_link(cli, tmp_path):
    real = _project(tmp_path / "shared", '[project]\nname = "shared"\n')
    quiet = tmp_path / "quiet"
    quiet.mkdir()
    (quiet / "pyproject.toml").write_text('[tool.dino-guard]\nignore = ["DG401"]\n')
    (quiet / "s.dino.yaml").symlink_to(real)
    assert cli("check", real).exit_code == 1
    assert cli("check", quiet / "s.dino.yaml").exit_code == 0


def test_show_settings_escapes_control_characters_in_file_names(cli, tmp_path):
    setup = _project(tmp_path / "p", "[tool.dino-guard]\n")
    odd = setup.with_name("s\x1b[31m.dino.yaml")
    setup.rename(odd)
    result = cli("check", odd.parent, "--show-settings")
    assert result.exit_code == 0 and "\x1b" not in result.output and "\\x1b" in result.output


def test_train_honours_tool_dino_guard_as_check_does(tmp_path):
    from dino_guard.commands.train import preflight

    setup = _project(tmp_path / "p", '[tool.dino-guard]\nignore = ["DG401"]\n')
    assert preflight(str(setup)).setup is not None  # DG401 ignored: no refusal
    strict = _project(tmp_path / "q", '[tool.dino-guard]\nselect = ["DG4"]\n')
    with pytest.raises(SystemExit) as exited:
        preflight(str(strict))
    assert exited.value.code == 1


def test_a_path_500_folders_deep_is_checked_not_a_recursionerror(cli, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.dino-guard]\nignore = ["DG401"]\n')
    deep = tmp_path.joinpath(*["d"] * 500)
    deep.mkdir(parents=True)
    shutil.copy(LOSS_MISMATCH, deep / "s.dino.yaml")
    monkeypatch.chdir(tmp_path)
    named = Path(*["d"] * 500) / "s.dino.yaml"
    assert cli("check", named, "--force-exclude").exit_code == 0
    assert cli("check", ".").exit_code == 0


def test_an_oversized_pyproject_is_one_usage_error(cli, tmp_path, good_setup):
    (tmp_path / "pyproject.toml").write_text("[tool.dino-guard]\n" + "# padding\n" * 200_000)
    result = cli("check", good_setup)
    assert result.exit_code == 2 and "too large" in result.output and "Traceback" not in result.output
