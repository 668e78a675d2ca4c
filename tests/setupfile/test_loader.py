"""The loader turns every kind of bad input into a finding or one clear
line (exit 2), never a traceback."""

from __future__ import annotations

import pytest

from dino_guard.findings import UnreadableInput
from dino_guard.setupfile.loader import MAX_BYTES, load_setup


def codes(loaded) -> list[str]:
    return [f.code for f in loaded.findings]


def test_good_setup_loads_with_positions(good_setup):
    loaded = load_setup(good_setup)
    assert loaded.findings == [] and loaded.setup is not None
    assert loaded.locations.of("model.head.input_dim") == (5, 10)
    # a missing field points at its section
    assert loaded.locations.of("model.head.hidden_dim") == (5, 3)


def test_malformed_yaml_points_at_the_parser_line(write_setup):
    loaded = load_setup(write_setup("model:\n  backbone: {name: resnet50\ntrain: {epochs: 3}\n"))
    (finding,) = loaded.findings
    assert finding.code == "DG001" and finding.line == 3  # where the parser stopped
    assert "while parsing a flow mapping (line 2)" in finding.message  # and where the brace opened


@pytest.mark.parametrize("text, field", [
    ("model: {backbone: {name: resnet50}}\ntrain: {batch_size: many}\n", "train.batch_size"),
    ("model: {backbone: {name: resnet50}}\ntransform: {n_local_views: -1}\n", "transform.n_local_views"),
    ("model: {backbone: {name: resnet50}}\ntransform: {hf_prob: 1.5}\n", "transform.hf_prob"),
    ("model: {backbone: {name: resnet50}}\nteacher_momentum: {start: 2}\n", "teacher_momentum.start"),
    ("model: {backbone: {name: resnet50}}\ntransform: {local_crop_scale: [0.05, 1.4]}\n", "transform.local_crop_scale"),
])
def test_wrong_types_and_ranges_name_the_field(write_setup, text, field):
    loaded = load_setup(write_setup(text))
    assert codes(loaded) == ["DG003"]
    assert loaded.findings[0].field == field
    assert loaded.findings[0].line == 2


def test_unknown_key_suggests_the_right_one(write_setup):
    loaded = load_setup(write_setup("model:\n  backbone: {name: resnet50}\n  head: {hiden_dim: 4096}\n"))
    (finding,) = loaded.findings
    assert finding.code == "DG002" and finding.field == "model.head.hiden_dim"
    assert "did you mean `hidden_dim`" in finding.help
    assert (finding.line, finding.column) == (3, 10)


def test_empty_file_is_a_finding(write_setup):
    assert codes(load_setup(write_setup(""))) == ["DG006"]
    assert codes(load_setup(write_setup("# only a comment\n"))) == ["DG006"]


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_list_or_scalar_at_top_level(write_setup, text):
    assert codes(load_setup(write_setup(text))) == ["DG006"]


def test_duplicate_keys_are_reported_at_the_second(write_setup):
    loaded = load_setup(write_setup("model: {backbone: {name: resnet50}}\ntrain:\n  epochs: 3\n  epochs: 4\n"))
    (finding,) = loaded.findings
    assert finding.code == "DG005" and finding.line == 4 and "first at line 3" in finding.message


def test_non_utf8_is_unreadable_with_the_offset(tmp_path):
    path = tmp_path / "latin1.dino.yaml"
    path.write_bytes("model:\n  backbone: {name: r\xe9snet}\n".encode("latin-1"))
    with pytest.raises(UnreadableInput, match=r"latin1.dino.yaml:2: not UTF-8 .*0xe9"):
        load_setup(path)


def test_a_50_megabyte_file_is_refused_without_parsing(tmp_path):
    path = tmp_path / "huge.dino.yaml"
    with open(path, "wb") as handle:
        handle.truncate(50_000_000)
    assert path.stat().st_size > MAX_BYTES
    with pytest.raises(UnreadableInput, match="50.0 MB is far too large"):
        load_setup(path)


def test_deep_nesting_is_a_finding_not_a_recursion_error(write_setup):
    deep = "a: " + "[" * 5000 + "]" * 5000 + "\n"
    assert codes(load_setup(write_setup(deep))) == ["DG007"]
    nested = "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 100)) + "  " * 100 + "x: 1\n"
    assert codes(load_setup(write_setup(nested))) == ["DG007"]


def test_billion_laughs_is_stopped(write_setup):
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, 10)]
    loaded = load_setup(write_setup("\n".join(lines) + "\n"))
    assert codes(loaded) == ["DG007"]


def test_a_directory_or_missing_path_is_unreadable(tmp_path):
    with pytest.raises(UnreadableInput, match="is a folder"):
        load_setup(tmp_path)
    with pytest.raises(UnreadableInput, match="no such file"):
        load_setup(tmp_path / "nope.dino.yaml")


def test_toml_and_json_setups_load_with_positions(tmp_path):
    toml = tmp_path / "s.dino.toml"
    toml.write_text('[model.backbone]\nname = "vit_small_patch16_224"\n[model.head]\ninput_dim = 2048\n[transform]\n')
    loaded = load_setup(toml)
    assert loaded.setup.model.head.input_dim == 2048
    assert loaded.locations.of("model.head.input_dim") == (4, 1)
    json_file = tmp_path / "s.dino.json"
    json_file.write_text('{"model": {"backbone": {"name": "resnet50"},\n "head": {"hidden_dimm": 3}}}')
    (finding,) = load_setup(json_file).findings
    assert finding.code == "DG002" and finding.line == 2


def test_invalid_toml_is_a_syntax_finding(tmp_path):
    path = tmp_path / "bad.dino.toml"
    path.write_text('[model\nname = "x"\n')
    assert codes(load_setup(path)) == ["DG001"]
