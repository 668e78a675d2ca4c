"""A keyword set in one call as a text edit: every layout keeps its style, and the edit touches nothing else."""

from __future__ import annotations

import ast

import pytest

from dino_guard.sources.call_edit import apply_edit, innermost_call, keyword_edit, source_lines


def _set(text: str, position: tuple[int, int], keyword: str = "dynamic_img_size", value=True) -> str | None:
    edit = keyword_edit(ast.parse(text), text, position, keyword, value)
    return None if edit is None else apply_edit(text, edit)


@pytest.mark.parametrize("before, after", [
    ('vit = create_model("vit_small_patch16_224")\n',
     'vit = create_model("vit_small_patch16_224", dynamic_img_size=True)\n'),
    ('vit = create_model("vit_small_patch16_224" )  # spaced\n',
     'vit = create_model("vit_small_patch16_224", dynamic_img_size=True )  # spaced\n'),
    ('vit = create_model("vit_small_patch16_224", num_classes=0,)\n',
     'vit = create_model("vit_small_patch16_224", num_classes=0, dynamic_img_size=True,)\n'),
    ("vit = vit_small_patch16_224()\n", "vit = vit_small_patch16_224(dynamic_img_size=True)\n"),
    ('vit = create_model("vit_small_patch16_224",\n                   num_classes=0)\n',
     'vit = create_model("vit_small_patch16_224",\n                   num_classes=0, dynamic_img_size=True)\n'),
], ids=["one-line", "space-before-paren", "inline-trailing-comma", "no-arguments", "continuation-line"])
def test_a_missing_keyword_is_appended_after_the_last_argument(before: str, after: str):
    assert _set(before, (1, 7)) == after


def test_one_argument_per_line_gets_a_line_of_its_own_with_a_trailing_comma_kept():
    text = 'vit = create_model(\n    "vit_small_patch16_224",\n    num_classes=0,  # features, only\n)\n'
    assert _set(text, (1, 7)) == text.replace("only\n)", "only\n    dynamic_img_size=True,\n)")


def test_one_argument_per_line_without_trailing_comma_keeps_the_comment_on_its_line():
    text = 'vit = create_model(\n    "vit_small_patch16_224",\n    num_classes=0  # features\n)\n'
    assert _set(text, (1, 7)) == text.replace("0  # features\n", "0,  # features\n    dynamic_img_size=True\n")


def test_crlf_lines_get_crlf():
    text = 'vit = create_model(\r\n    "vit_small_patch16_224",\r\n)\r\n'
    assert _set(text, (1, 7)) == text.replace('4",\r\n', '4",\r\n    dynamic_img_size=True,\r\n')


def test_an_existing_keyword_has_its_value_replaced_in_place():
    text = 'vit = create_model("vit_small_patch16_224", dynamic_img_size=False, pretrained=False)\n'
    assert _set(text, (1, 7)) == text.replace("dynamic_img_size=False", "dynamic_img_size=True")
    assert _set(text, (1, 7), "pretrained", True) == text.replace("pretrained=False", "pretrained=True")


def test_star_arguments_get_no_edit_unless_the_keyword_is_written_out():
    assert _set('vit = create_model("vit_small_patch16_224", **kwargs)\n', (1, 7)) is None
    assert _set("vit = create_model(*args)\n", (1, 7)) is None
    text = 'vit = create_model("vit_small_patch16_224", dynamic_img_size=False, **kwargs)\n'
    assert _set(text, (1, 7)) == text.replace("False", "True")


def test_the_innermost_call_at_the_position_is_edited():
    text = 'backbone = Masked(vit=create_model("vit_small_patch16_224")).cuda()  # wrapped\n'
    assert _set(text, (1, 23)) == text.replace('224")', '224", dynamic_img_size=True)')
    assert innermost_call(ast.parse(text), text, (1, 1)) is None  # `backbone` is no call


def test_columns_count_characters_on_a_line_with_non_ascii_text():
    text = 'vit = create_model("vit_small_patch16_224", tag="größe")\n'
    edit = keyword_edit(ast.parse(text), text, (1, 7), "dynamic_img_size", True)
    assert edit["column"] == text.index(")") + 1
    assert apply_edit(text, edit) == text.replace('")', '", dynamic_img_size=True)')


def test_a_form_feed_between_sections_starts_no_line():
    """str.splitlines() splits at \\f; Python does not, so the edit's line numbers must not either."""
    text = '# section one\n\x0c\nvit = create_model("vit_small_patch16_224")\n'
    edit = keyword_edit(ast.parse(text), text, (3, 7), "dynamic_img_size", True)
    assert edit["line"] == 3 and apply_edit(text, edit) == text.replace('4")', '4", dynamic_img_size=True)')
    assert source_lines("a\r\nb\rc\n\x0cd") == ["a\r\n", "b\r", "c\n", "\x0cd"]


def test_the_innermost_call_of_a_name_skips_the_calls_inside_its_arguments():
    text = "head = DINOProjectionHead(hidden_dim=width(512), output_dim=2048)\n"
    tree = ast.parse(text)
    assert innermost_call(tree, text, (1, 38), named=("DINOProjectionHead",)).func.id == "DINOProjectionHead"
    assert innermost_call(tree, text, (1, 38)).func.id == "width"
    assert innermost_call(tree, text, (1, 38), named=("DINOLoss",)) is None
