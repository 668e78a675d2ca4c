"""The code registry refuses what would confuse users' --ignore lists."""

from __future__ import annotations

import re

import pytest

from dino_guard.findings import Severity
from dino_guard.rules import registry


@pytest.fixture
def scratch_registry(monkeypatch):
    registry.all_rules()  # load the real rules first
    monkeypatch.setattr(registry, "RULES", dict(registry.RULES))
    monkeypatch.setattr(registry, "RETIRED", {"DG999": "merged into DG201"})
    return registry


def _doc_rule(code: str, name: str):
    @registry.rule(code, name, Severity.WARNING)
    def check(ctx):
        """Summary.

        What it checks: x. Why it matters: y. Example: z. Use instead: w. References: r.
        """
        return iter(())

    return check


def test_duplicate_code_is_refused(scratch_registry):
    with pytest.raises(registry.RegistryError, match="DG201 is registered twice"):
        _doc_rule("DG201", "another-name")


def test_duplicate_name_is_refused(scratch_registry):
    with pytest.raises(registry.RegistryError, match="registered twice"):
        _doc_rule("DG998", "head-input-dim-mismatch")


def test_retired_code_is_never_reused(scratch_registry):
    with pytest.raises(registry.RegistryError):
        _doc_rule("DG999", "brand-new")


@pytest.mark.parametrize("code, name", [("X201", "fine-name"), ("DG1", "fine-name"), ("DG997", "Not_Kebab")])
def test_malformed_codes_and_names_are_refused(scratch_registry, code, name):
    with pytest.raises(registry.RegistryError):
        _doc_rule(code, name)


def test_retired_code_is_explained_by_the_cli(scratch_registry, cli):
    result = cli("rule", "DG999")
    assert result.exit_code == 0 and "retired: merged into DG201" in result.output


def test_code_missing_from_the_code_table_is_refused(scratch_registry):
    with pytest.raises(registry.RegistryError, match="code table"):
        _doc_rule("DG998", "brand-new-rule")


def test_name_or_severity_other_than_the_code_tables_is_refused(scratch_registry):
    del scratch_registry.RULES["DG203"]
    with pytest.raises(registry.RegistryError, match="code table"):
        _doc_rule("DG203", "batch-norm-on-a-vit")
    with pytest.raises(registry.RegistryError, match="code table"):
        registry.documented("DG203", "batch-norm-with-vit", Severity.ERROR, "Summary.", "setup")


def test_every_code_in_the_table_is_documented_by_a_rule():
    from dino_guard import codes

    registry.all_rules()
    assert sorted(codes.CODES) == sorted(registry.RULES)


def test_findings_are_made_without_loading_any_rule():
    import subprocess
    import sys

    probe = ("import sys; from dino_guard.setupfile.loader import load_setup; "
             "from dino_guard.codes import make_finding; "
             "make_finding('DG201', 'x', (1, 1), '', 'm', 'h'); "
             "print(sorted(m for m in sys.modules if m.startswith('dino_guard.rules')))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_rule_doc_uses_the_headed_format():
    """One format for every code (the DG5xx layout): `Section:` alone on its line, the text indented below."""
    import re

    from dino_guard.rules.registry import DOC_SECTIONS, all_rules

    for entry in all_rules():
        lines = entry.doc.splitlines()
        for section in DOC_SECTIONS:
            heads = [i for i, line in enumerate(lines) if line.startswith(f"{section}:")]
            assert heads, f"{entry.code} lacks '{section}:'"
            assert lines[heads[0]] == f"{section}:", f"{entry.code}: '{section}:' must stand alone on its line"
            assert re.match(r" {4}\S", lines[heads[0] + 1]), f"{entry.code}: '{section}:' text must follow, indented"


OUTSIDE_REFERENCES = re.compile(r"\.\./|design\.md|(?<![\w#/])issue \d")


def test_rule_docs_and_help_never_point_outside_the_repository():
    from click.testing import CliRunner

    from dino_guard.cli import main
    from dino_guard.rules.registry import all_rules

    for entry in all_rules():
        assert not OUTSIDE_REFERENCES.search(entry.doc), f"{entry.code}: {OUTSIDE_REFERENCES.search(entry.doc)[0]!r}"
    runner = CliRunner()
    for command in ([], ["check"], ["estimate"], ["train"], ["rules"], ["rule"], ["schema"]):
        text = runner.invoke(main, [*command, "--help"]).output
        assert not OUTSIDE_REFERENCES.search(text), (command, text)
