"""The README is part of the product: its generated blocks stay in sync and
its two commands stay what CI and users run."""

from __future__ import annotations

import importlib.util

from dino_guard.rules.registry import all_rules
from tests.helpers import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
REFERENCE = (REPO / "docs" / "reference.md").read_text(encoding="utf-8")


def _update_readme():
    spec = importlib.util.spec_from_file_location("update_readme", REPO / "scripts" / "update_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_rule_code_is_in_the_readme_table():
    for entry in all_rules():
        assert f"| {entry.code} | {entry.name} |" in REFERENCE, f"{entry.code} missing: run scripts/update_readme.py"


def test_generated_blocks_are_current():
    for text in (README, REFERENCE):
        assert _update_readme().render(text) == text, "run .venv/bin/python scripts/update_readme.py"


def test_the_user_guide_points_at_the_reference_and_its_first_screen_shows_the_three_steps():
    first_screen = README[:README.index("## The two commands")]
    assert "docs/reference.md" in first_screen
    for step in ("dino-guard check examples/broken/", "pre-commit try-repo", "dino-guard train", "dino-guard export"):
        assert step in first_screen, step
    assert "<!-- rules:start -->" in REFERENCE and "<!-- reference:start -->" in REFERENCE


def test_the_quick_start_examples_exist_and_the_commit_example_is_an_error():
    import re

    from dino_guard.check.engine import Options, check_loaded
    from dino_guard.findings import Severity
    from dino_guard.setupfile.loader import load_setup

    first_screen = README[:README.index("## The two commands")]
    for path in re.findall(r"(examples/\S+\.dino\.yaml)", first_screen):
        assert (REPO / path).is_file(), path
    broken = REPO / "examples/broken/teacher_temp_0.5_collapses.dino.yaml"
    found = check_loaded(load_setup(broken), Options(count_images=False))
    assert [f.code for f in found if f.severity == Severity.ERROR] == ["DG402"]


def test_every_rule_is_documented_with_the_five_sections():
    from dino_guard.rules.registry import DOC_SECTIONS

    for entry in all_rules():
        for section in DOC_SECTIONS:
            assert f"{section}:" in entry.doc, f"{entry.code} lacks '{section}:' in its documentation"
        assert entry.summary and not entry.summary.startswith(DOC_SECTIONS)


def test_the_two_commands_are_the_scripts_ci_runs():
    assert "bash scripts/demo.sh" in README and "bash scripts/test.sh" in README
    assert "bash scripts/test.sh" in (REPO / ".ci" / "run").read_text()


def test_install_from_outside_is_a_valid_requirement_for_this_project():
    """`pip install "dino-guard[train] @ git+https://..."`: a PEP 508 direct reference with a real extra."""
    import re

    from packaging.requirements import Requirement

    from dino_guard.setupfile.loader import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = re.findall(r'pip install "([^"]+ @ git\+[^"]+)"', README)
    assert lines
    for line in lines:
        requirement = Requirement(line.replace("<commit>", "0123456789abcdef0123456789abcdef01234567"))
        assert requirement.name == project["name"] and requirement.url.startswith("git+https://")
        assert requirement.extras <= set(project["optional-dependencies"])


def test_precommit_rev_is_a_commit_placeholder_and_the_hook_id_exists():
    """The repository has no tags: the advice is a full commit SHA, never a tag."""
    import yaml

    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    assert "rev: <commit>" in README and "rev: v0." not in README and "<tag-or-commit>" not in README
    assert f"- id: {hooks[0]['id']}" in README


def test_editor_schema_advice_writes_the_file_the_modeline_names(tmp_path, cli):
    import json
    import re

    command = re.search(r"dino-guard schema -o (\S+)", README)[1]
    modeline = re.search(r"# yaml-language-server: \$schema=\./(\S+)", README)[1]
    assert command == modeline
    assert cli("schema", "-o", tmp_path / command).exit_code == 0
    assert json.loads((tmp_path / command).read_text())["$schema"].startswith("http://json-schema.org/draft-07")
