"""Inline suppression: every fixture states with `# expect:` what still shows
once its own comments are applied (with --warn-unused-ignores: DG008)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dino_guard.check.engine import Options
from dino_guard.check.inputs import check_path
from dino_guard.findings import Severity
from dino_guard.setupfile import suppress

FIXTURES = Path(__file__).parent / "suppression_fixtures"
EXPECT = re.compile(r"#\s*expect:\s*([A-Z0-9, ]+)")


def expectations(path: Path) -> set[tuple[int, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {(n, code.strip()) for n, line in enumerate(lines, start=1) if (m := EXPECT.search(line))
            for code in m.group(1).split(",") if code.strip()}


def shown(path: Path, **options) -> set[tuple[int, str]]:
    findings = check_path(path, Options(count_images=False, **options))
    return {(f.line, f.code) for f in findings if f.severity != Severity.INFO}


@pytest.mark.parametrize("path", sorted(FIXTURES.iterdir()), ids=lambda p: p.name)
def test_fixture_shows_exactly_what_it_expects(path):
    assert shown(path, warn_unused_ignores=True) == expectations(path)


@pytest.mark.parametrize("path", sorted(FIXTURES.iterdir()), ids=lambda p: p.name)
def test_unused_ignores_are_reported_only_on_request(path):
    assert shown(path) == {e for e in expectations(path) if e[1] != "DG008"}


def test_a_yaml_section_comment_covers_its_indented_lines_only():
    text = "model:  # dino-guard: ignore[DG203]\n  backbone: {}\n\n  head: {}\nloss: {}\n"
    [directive] = suppress.directives(Path("s.dino.yaml"), text)
    assert (directive.first, directive.last, directive.codes) == (1, 4, ("DG203",))


def test_a_toml_table_comment_covers_the_table_up_to_the_next_header():
    text = "[model.head]  # dino-guard: ignore[DG203]\nbatch_norm = true\n\n[loss]\noutput_dim = 1\n"
    [directive] = suppress.directives(Path("s.dino.toml"), text)
    assert (directive.first, directive.last) == (1, 3)


def test_a_toml_table_comment_covers_its_subtables():
    text = "[model]  # dino-guard: ignore[DG203]\n[model.head]\nbatch_norm = true\n[loss]\noutput_dim = 1\n"
    [directive] = suppress.directives(Path("s.dino.toml"), text)
    assert (directive.first, directive.last) == (1, 3)


def test_noqa_keeps_only_dino_guard_codes_and_a_bare_noqa_is_no_directive():
    found = suppress.directives(Path("t.py"), "x = 1  # noqa: E501,DG201\ny = 2  # noqa\n")
    assert [(d.line, d.codes) for d in found] == [(1, ("DG201",))]


def test_unused_ignores_skip_codes_this_run_does_not_check():
    path = FIXTURES / "section_and_line.dino.yaml"
    assert ("DG008" not in {code for _, code in shown(path, warn_unused_ignores=True, ignore=("DG4",))})


def test_the_readme_example_is_quiet():
    """examples/synthetic_small.dino.yaml keeps its deliberate batch-norm head, silenced with a reason."""
    example = Path(__file__).resolve().parents[2] / "examples" / "synthetic_small.dino.yaml"
    assert "# dino-guard: ignore[DG203] deliberate" in example.read_text()
    assert shown(example, warn_unused_ignores=True) == set()


SCRIPTS = Path(__file__).parents[1] / "sources" / "fixtures"


def test_a_docstring_that_documents_a_directive_silences_nothing(tmp_path):
    script = tmp_path / "train.py"
    text = (SCRIPTS / "bad_one_view_each.py").read_text()
    script.write_text('"""Silence a code with\n# dino-guard: ignore-file[DG705]\n"""\n' + text)
    assert "DG705" in {code for _, code in shown(script)}


@pytest.mark.parametrize("name, text", [
    ("t.py", 'x = "# noqa: DG201"\ny = """\n# dino-guard: ignore-file[DG201]\n"""\n'),
    ("s.dino.yaml", 'model:\n  name: "vit # dino-guard: ignore-file[DG201]"\nnote: |\n  # dino-guard: ignore[DG201]\n'),
    ("s.dino.yaml", "note: 'it''s # dino-guard: ignore-file[DG201]'\n"),
    ("s.dino.toml", 'note = "# dino-guard: ignore-file[DG201]"\nmore = """\n# dino-guard: ignore-file[DG201]\n"""\n'),
    ("s.dino.toml", "note = '''\n# dino-guard: ignore-file[DG201]\n'''\n"),
])
def test_directive_text_inside_strings_is_no_directive(name, text):
    assert suppress.directives(Path(name), text) == []


def test_real_comments_next_to_strings_still_count():
    found = suppress.directives(Path("s.dino.toml"), 'a = "#"  # dino-guard: ignore[DG201]\n')
    assert [(d.line, d.codes) for d in found] == [(1, ("DG201",))]
    found = suppress.directives(Path("s.dino.yaml"), "a: '#'  # dino-guard: ignore[DG201]\nb: |\n  x\nc: 1  # noqa\n"
                                                     "d: 2  # dino-guard: ignore[DG203]\n")
    assert [(d.line, d.codes) for d in found] == [(1, ("DG201",)), (5, ("DG203",))]


def test_lines_are_numbered_as_ast_numbers_them_a_form_feed_starts_no_line():
    text = "import lightly\n\x0c\ndef f():\n    pass\n\x0cx = 1  # noqa: DG201\n"
    [directive] = suppress.directives(Path("t.py"), text)
    assert directive.line == 5 == next(n.lineno for n in __import__("ast").parse(text).body if hasattr(n, "targets"))


def test_a_toml_table_directive_covers_subtables_wherever_they_appear_quoted_headers_too():
    text = ('["model"]  # dino-guard: ignore[DG203]\nx = 1\n[loss]\noutput_dim = 1\n'
            '[ model . "head" ]\nbatch_norm = true\n[[model.extra]]\ny = 2\n[modelx]\nz = 3\n')
    [directive] = suppress.directives(Path("s.dino.toml"), text)
    spans = [(directive.first, directive.last), *directive.more]
    assert spans == [(1, 2), (5, 8)]


def test_a_block_scalar_with_a_comment_on_its_key_line_still_hides_its_lines():
    text = "note: |  # dino-guard: ignore[DG201]\n  # dino-guard: ignore-file[DG203]\nmodel: {}\n"
    assert [d.line for d in suppress.directives(Path("s.dino.yaml"), text)] == [1]


def test_a_file_without_any_directive_reads_no_comments(monkeypatch):
    """The hook's usual file: one search of the text, no comment scan (issue 25, speed)."""
    def must_not_scan(*args):
        raise AssertionError("comments were scanned")

    monkeypatch.setattr(suppress, "comments", must_not_scan)
    assert suppress.directives(Path("x.dino.yaml"), "train: {epochs: 3}  # three epochs\n") == []
    assert suppress.directives(Path("x.py"), "x = 1  # a comment\n") == []
