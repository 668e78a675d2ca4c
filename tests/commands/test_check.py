"""The CLI contracts of design.md: output formats, exit codes, options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest

from tests.helpers import EXAMPLES, REPO

FINDING_KEYS = {"path", "line", "column", "code", "name", "severity", "message", "help", "field", "fix",
                "end_line", "end_column", "related", "edit"}


def test_good_setup_passes(cli, good_setup):
    result = cli("check", good_setup)
    assert result.exit_code == 0, result.output
    assert "All checks passed (1 file)." in result.output


def test_text_output_is_path_line_col_code_then_help(cli):
    path = EXAMPLES / "broken" / "head_input_dim_2048_on_vit_small.dino.yaml"
    result = cli("check", path)
    assert result.exit_code == 1
    first, help_line = result.output.splitlines()[:2]
    assert first.startswith(f"{path}:5:10: DG201 DINOProjectionHead(input_dim=2048)")
    assert "(384)" in first
    assert help_line.startswith("    help: set model.head.input_dim: 384")


def test_json_output_has_the_contract_fields(cli):
    result = cli("check", EXAMPLES / "broken" / "loss_output_dim_not_head.dino.yaml", "--format", "json")
    assert result.exit_code == 1
    findings = json.loads(result.output)
    assert all(set(f) == FINDING_KEYS for f in findings)
    (error,) = [f for f in findings if f["severity"] == "error"]
    assert error["code"] == "DG401" and error["field"] == "loss.output_dim" and error["line"] == 6
    assert "65536" in error["message"] and "4096" in error["message"]
    assert error["fix"] == {"loss.output_dim": 4096}


def test_info_findings_show_only_on_request_in_text(cli, good_setup):
    assert "DG412" not in cli("check", good_setup).output
    assert "DG412" in cli("check", good_setup, "--show-info").output
    assert "DG412" in cli("check", good_setup, "--format", "json").output


def test_github_annotations(cli):
    result = cli("check", EXAMPLES / "broken" / "no_transform.dino.yaml", "--format", "github")
    assert result.output.startswith("::error file=")
    assert ",line=3,col=1,title=DG101 missing-transform::" in result.output


def test_sarif_validates_against_its_schema_shape(cli):
    result = cli("check", EXAMPLES / "broken", "--format", "sarif")
    sarif = json.loads(result.output)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in run["results"]} <= rule_ids
    assert all(r["locations"][0]["physicalLocation"]["region"]["startLine"] >= 1 for r in run["results"])


def test_folders_are_searched_and_every_broken_example_fails(cli):
    result = cli("check", EXAMPLES / "broken", "--format", "json")
    assert result.exit_code == 1
    paths = {f["path"] for f in json.loads(result.output) if f["severity"] == "error"}
    assert len(paths) == len(list((EXAMPLES / "broken").glob("*.dino.yaml")))


def test_good_examples_pass(cli):
    result = cli("check", *sorted(EXAMPLES.glob("*.dino.yaml")))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("option, value, kept", [
    ("--select", "DG4", {"DG401"}),
    ("--ignore", "DG401,DG41", set()),
])
def test_select_and_ignore_by_prefix(cli, option, value, kept):
    result = cli("check", EXAMPLES / "broken" / "loss_output_dim_not_head.dino.yaml", option, value, "--format", "json")
    assert {f["code"] for f in json.loads(result.output) if f["severity"] != "info"} == kept


def test_pyproject_config_is_read(cli, tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.dino-guard]\nignore = ["DG401"]\n')
    setup = tmp_path / "s.dino.yaml"
    setup.write_text((EXAMPLES / "broken" / "loss_output_dim_not_head.dino.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert cli("check", setup).exit_code == 0


def test_bad_pyproject_config_is_a_usage_error(cli, tmp_path, monkeypatch, good_setup):
    (tmp_path / "pyproject.toml").write_text('[tool.dino-guard]\nignore = 401\n')
    monkeypatch.chdir(tmp_path)
    result = cli("check", good_setup)
    assert result.exit_code == 2 and "must be a list of code prefixes" in result.output


def test_unreadable_input_exits_2_with_one_line(cli, tmp_path):
    result = cli("check", tmp_path / "missing.dino.yaml")
    assert result.exit_code == 2
    assert result.output.strip() == f"dino-guard: error: {tmp_path / 'missing.dino.yaml'}: no such file"


def test_invalid_input_exits_1(cli, write_setup):
    assert cli("check", write_setup("model: {backbone: {name: resnet50}\n")).exit_code == 1


def test_rule_prints_its_documentation(cli):
    result = cli("rule", "dg201")
    assert result.exit_code == 0
    assert result.output.startswith("DG201 head-input-dim-mismatch (error)")
    for section in ("What it checks", "Why it matters", "Example", "Use instead", "References"):
        assert section in result.output


def test_unknown_rule_suggests(cli):
    result = cli("rule", "DG2011")
    assert result.exit_code == 2 and "Did you mean DG201" in result.output


def test_rules_lists_every_code(cli):
    from dino_guard.rules.registry import all_rules

    listed = json.loads(cli("rules", "--format", "json").output)
    assert [r["code"] for r in listed] == [r.code for r in all_rules()]


def test_schema_matches_the_committed_copy_and_validates_examples(cli):
    import yaml

    from tests.helpers import REPO

    printed = json.loads(cli("schema").output)
    committed = json.loads((REPO / "dino_guard" / "schemas" / "dino-guard.schema.json").read_text())
    assert printed == committed, "run `dino-guard schema -o dino_guard/schemas/dino-guard.schema.json`"
    jsonschema.Draft7Validator.check_schema(printed)
    validator = jsonschema.Draft7Validator(printed)
    for example in EXAMPLES.glob("*.dino.yaml"):
        assert not list(validator.iter_errors(yaml.safe_load(example.read_text()))), example
    bad = yaml.safe_load((EXAMPLES / "broken" / "misspelt_hidden_dim.dino.yaml").read_text())
    assert list(validator.iter_errors(bad))


@pytest.mark.parametrize("config, message", [
    ('[tool]\n"dino-guard" = 5\n', "[tool.dino-guard] must be a table"),
    ('[tool.dino-guard]\ngpu = 5\n', "gpu must be a GPU name"),
])
def test_bad_pyproject_values_are_usage_errors_not_tracebacks(cli, tmp_path, monkeypatch, good_setup, config, message):
    (tmp_path / "pyproject.toml").write_text(config)
    monkeypatch.chdir(tmp_path)
    result = cli("check", good_setup)
    assert result.exit_code == 2 and message in result.output


def test_unknown_gpu_option_is_a_usage_error(cli, good_setup):
    result = cli("check", good_setup, "--gpu", "FOO")
    assert result.exit_code == 2 and "--gpu: unknown GPU 'FOO'" in result.output


def test_json_output_is_a_list_even_when_no_file_was_read(cli, tmp_path):
    result = cli("check", tmp_path, "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_schema_to_an_unwritable_path_is_a_usage_error(cli, tmp_path):
    result = cli("schema", "-o", tmp_path / "missing" / "schema.json")
    assert result.exit_code == 2 and "cannot write" in result.output


def _copy_fixture(tmp_path, name: str) -> Path:
    target = tmp_path / name
    shutil.copy(REPO / "tests" / "rules" / "fixtures" / name, target)
    return target


def test_fail_on_warning_makes_a_warning_fail(cli, tmp_path):
    setup = _copy_fixture(tmp_path, "DG402_slightly_high_bad.dino.yaml")  # DG402 as a warning only
    assert cli("check", setup).exit_code == 0
    assert cli("check", setup, "--fail-on", "warning").exit_code == 1
    assert cli("check", setup, "--fail-on", "error").exit_code == 0


def test_fail_on_warning_from_the_config(cli, tmp_path):
    setup = _copy_fixture(tmp_path, "DG402_slightly_high_bad.dino.yaml")
    (tmp_path / "pyproject.toml").write_text('[tool.dino-guard]\nfail-on = "warning"\n')
    assert cli("check", setup).exit_code == 1
    assert cli("check", setup, "--fail-on", "error").exit_code == 0  # the option wins over the file


def test_fail_on_with_an_unknown_value_in_the_config_is_a_usage_error(cli, tmp_path):
    setup = _copy_fixture(tmp_path, "DG402_slightly_high_bad.dino.yaml")
    (tmp_path / "pyproject.toml").write_text('[tool.dino-guard]\nfail-on = "info"\n')
    result = cli("check", setup)
    assert result.exit_code == 2 and "fail-on must be" in result.output


def test_teacher_temp_at_the_student_temp_fails_the_check(cli, tmp_path):
    assert cli("check", _copy_fixture(tmp_path, "DG402_bad.dino.yaml")).exit_code == 1  # error-grade DG402


def test_check_with_no_path_checks_the_current_folder(cli, tmp_path, monkeypatch):
    _copy_fixture(tmp_path, "DG402_bad.dino.yaml")
    monkeypatch.chdir(tmp_path)
    result = cli("check")
    assert result.exit_code == 1 and "DG402_bad.dino.yaml:5:3: DG402" in result.output


def test_a_script_finding_points_at_the_literal_to_edit_with_the_use_related(cli):
    """`input_dim = 2048` at module level, used inside __init__: the finding is at the 2048 (issue 25)."""
    script = REPO / "tests" / "sources" / "fixtures" / "bad_head_input_resnet18.py"
    (found,) = [f for f in json.loads(cli("check", script, "--format", "json").output) if f["code"] == "DG201"]
    lines = script.read_text().splitlines()
    assert lines[found["line"] - 1][found["column"] - 1:found["end_column"] - 1] == "2048"
    assert found["edit"] == {"line": found["line"], "column": found["column"], "end_line": found["line"],
                             "end_column": found["end_column"], "replacement": "512"}
    assert found["help"] == (f"change line {found['line']} to `input_dim = 512` "
                             "(used at lines 19 and 21: each takes the new value)")  # the student's and teacher's head
    # one finding for both uses: the teacher head's (line 21) is judged too, and the same edit fixes it
    assert [(r["line"], r["message"]) for r in found["related"]] == [(19, "the value is used here"),
                                                                     (21, "the value is used here")]
