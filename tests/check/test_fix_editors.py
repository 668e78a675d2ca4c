"""Each format's editor: the edited value changes, every other byte stays."""

from __future__ import annotations

import pytest

from dino_guard.check.fix import json_, python, toml, yaml
from dino_guard.check.fix.errors import NotFixable

BLOCK = """\
# a comment that stays
data:
  path: /data   # trailing comment
  synthetic: shapes
model:
  head:
    input_dim: 2048  # expect: DG201
    output_dim: 65536
"""


def test_yaml_block_value_is_replaced_in_place():
    assert yaml.apply(BLOCK, {"model.head.input_dim": 384}) == BLOCK.replace("2048", "384")


def test_yaml_block_key_is_inserted_after_the_section_in_its_indentation():
    fixed = yaml.apply(BLOCK, {"model.head.batch_norm": False})
    assert fixed == BLOCK + "    batch_norm: false\n"


def test_yaml_block_key_is_removed_with_its_line():
    assert yaml.apply(BLOCK, {"data.synthetic": None}) == BLOCK.replace("  synthetic: shapes\n", "")


def test_yaml_missing_section_is_appended_as_a_flow_mapping():
    fixed = yaml.apply(BLOCK, {"loss.output_dim": 65536})
    assert fixed == BLOCK + "loss: {output_dim: 65536}\n"


def test_yaml_file_without_final_newline_gets_one_before_the_new_line():
    assert yaml.apply("a: 1", {"b.c": 2}) == "a: 1\nb: {c: 2}\n"


FLOW = """\
transform: {global_crop_size: 224,
            local_crop_size: 100}  # two lines, kept as two lines
loss: {output_dim: 65536, teacher_temp: 0.07}
model: {}
"""


def test_yaml_flow_value_is_replaced_and_the_line_break_kept():
    fixed = yaml.apply(FLOW, {"transform.local_crop_size": 96})
    assert fixed == FLOW.replace("local_crop_size: 100", "local_crop_size: 96")


def test_yaml_flow_key_is_inserted_on_the_same_line_or_a_new_one():
    assert yaml.apply(FLOW, {"loss.student_temp": 0.1}) == FLOW.replace("0.07}", "0.07, student_temp: 0.1}")
    fixed = yaml.apply(FLOW, {"transform.n_local_views": 6})
    assert fixed == FLOW.replace("100}", "100,\n            n_local_views: 6}")
    fixed = yaml.apply(FLOW, {"model.head.input_dim": 384})
    assert fixed == FLOW.replace("model: {}", "model: {head: {input_dim: 384}}")


@pytest.mark.parametrize("key, expected", [
    ("output_dim", "loss: {teacher_temp: 0.07}"),
    ("teacher_temp", "loss: {output_dim: 65536}"),
])
def test_yaml_flow_key_is_removed_with_its_comma(key, expected):
    fixed = yaml.apply(FLOW, {f"loss.{key}": None})
    assert fixed == FLOW.replace("loss: {output_dim: 65536, teacher_temp: 0.07}", expected)


def test_yaml_null_and_empty_values_are_replaced():
    assert yaml.apply("transform: null  # none\n", {"transform": {"n_local_views": 6}}) == \
        "transform: {n_local_views: 6}  # none\n"
    assert yaml.apply("transform:\nmodel: {}\n", {"transform": {"n_local_views": 6}}) == \
        "transform: {n_local_views: 6}\nmodel: {}\n"


def test_yaml_multi_line_list_is_edited_element_by_element():
    text = "transform:\n  local_crop_scale:\n    - 0.05\n    - 0.5\n"
    assert yaml.apply(text, {"transform.local_crop_scale": [0.05, 0.3]}) == text.replace("0.5\n", "0.3\n")


def test_yaml_strings_and_quotes_elsewhere_are_untouched():
    text = 'train: {precision: "fp16", output_dir: \'runs/x\'}\n'
    assert yaml.apply(text, {"train.precision": "bf16"}) == "train: {precision: bf16, output_dir: 'runs/x'}\n"


def test_yaml_crlf_file_keeps_its_line_endings():
    text = BLOCK.replace("\n", "\r\n")
    assert yaml.apply(text, {"model.head.batch_norm": False}) == text + "    batch_norm: false\r\n"
    assert yaml.apply(text, {"data.synthetic": None}) == text.replace("  synthetic: shapes\r\n", "")


def test_yaml_scalar_root_is_not_fixable():
    with pytest.raises(NotFixable):
        yaml.apply("just text\n", {"a.b": 1})


JSON = """{
  "model": {
    "head": {"input_dim": 2048}
  },
  "train": {
    "batch_size": 512
  }
}
"""


def test_json_value_replaced_and_entries_inserted_in_json_syntax():
    assert json_.apply(JSON, {"model.head.input_dim": 384}) == JSON.replace("2048", "384")
    fixed = json_.apply(JSON, {"train.accumulate_grad_batches": 4})
    assert fixed == JSON.replace('"batch_size": 512', '"batch_size": 512,\n    "accumulate_grad_batches": 4')
    assert json_.apply(JSON, {"model.backbone.dynamic_img_size": True}) == JSON.replace(
        '"head": {"input_dim": 2048}', '"head": {"input_dim": 2048},\n    "backbone": {"dynamic_img_size": true}')


TOML = """\
# comment kept
[model.head]
input_dim = 2048  # expect: DG201
output_dim = 65536

[train]
batch_size = 512
"""


def test_toml_value_replaced_comments_kept():
    assert toml.apply(TOML, {"model.head.input_dim": 384}) == TOML.replace("2048", "384")


def test_toml_key_inserted_and_removed():
    fixed = toml.apply(TOML, {"train.accumulate_grad_batches": 4})
    assert fixed == TOML + "accumulate_grad_batches = 4\n"
    assert toml.apply(TOML, {"model.head.output_dim": None}) == TOML.replace("output_dim = 65536\n", "")


SCRIPT = """\
from lightly.loss import DINOLoss
from lightly.models.modules import DINOProjectionHead

head = DINOProjectionHead(output_dim=2048)  # a comment
loss = DINOLoss(
    output_dim=65536,   # kept layout
    teacher_temp=0.07,
)
"""


def test_python_keyword_is_appended_to_the_call_at_the_position():
    fixed = python.apply(SCRIPT, {"model.head.input_dim": 384}, (4, 8))
    assert fixed == SCRIPT.replace("(output_dim=2048)", "(output_dim=2048, input_dim=384)")


@pytest.mark.parametrize("before, after", [
    ("head = DINOProjectionHead(\n    output_dim=2048,\n    freeze_last_layer=1,\n)\n",
     "head = DINOProjectionHead(\n    output_dim=2048,\n    freeze_last_layer=1,\n    input_dim=384,\n)\n"),
    ("head = DINOProjectionHead(\n    output_dim=2048,\n    freeze_last_layer=1  # one epoch\n)\n",
     "head = DINOProjectionHead(\n    output_dim=2048,\n    freeze_last_layer=1,  # one epoch\n    input_dim=384\n)\n"),
    ("head = DINOProjectionHead(output_dim=2048,\n                          freeze_last_layer=1)\n",
     "head = DINOProjectionHead(output_dim=2048,\n                          freeze_last_layer=1, input_dim=384)\n"),
], ids=["trailing-comma", "comment-no-trailing-comma", "continuation-line"])
def test_python_keyword_appended_to_a_multi_line_call_keeps_its_layout(before: str, after: str):
    """The lightly-call editor wrote `freeze_last_layer=1,\ninput_dim=384)` at column 0 (libcst's append)."""
    assert python.apply(before, {"model.head.input_dim": 384}, (1, 8)) == after


def test_python_existing_keyword_value_is_replaced_in_place():
    fixed = python.apply(SCRIPT, {"loss.output_dim": 2048}, (6, 5))
    assert fixed == SCRIPT.replace("65536", "2048")


def test_python_argument_given_by_position_is_replaced_in_place():
    text = "head = DINOProjectionHead(input_dim, 512, 64, 2048, freeze_last_layer=1)\n"
    assert python.apply(text, {"model.head.input_dim": 512}, (1, 8)) == text.replace("(input_dim,", "(512,")
    assert python.apply(text, {"model.head.output_dim": 256}, (1, 8)) == text.replace("2048", "256")
    assert python.apply(text, {"model.head.batch_norm": False}, (1, 8)) == text.replace("=1)", "=1, batch_norm=False)")


def test_python_refuses_a_field_with_no_keyword_or_a_call_with_star_arguments():
    with pytest.raises(NotFixable):
        python.apply(SCRIPT, {"train.batch_size": 32}, (4, 8))
    with pytest.raises(NotFixable):
        python.apply("head = DINOProjectionHead(*dims)\n", {"model.head.input_dim": 384}, (1, 8))
    with pytest.raises(NotFixable):
        python.apply(SCRIPT, {"loss.output_dim": 2048}, (4, 8))  # no DINOLoss call there
