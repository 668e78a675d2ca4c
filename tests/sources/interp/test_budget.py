"""The reader's budget bounds memory and time, not only steps: hostile but valid scripts end in DG709 fast."""

from __future__ import annotations

import time

import pytest

from dino_guard.sources.python import load_python


def _timed_codes(path) -> tuple[list, float]:
    start = time.monotonic()
    loaded = load_python(path)
    return [f.code for f in loaded.findings], time.monotonic() - start


def test_list_doubled_41_times_is_dg709_within_a_second_not_a_memoryerror(tmp_path):
    script = tmp_path / "double.py"
    script.write_text("\n".join(["import lightly", "x = [lightly]", *["x = x + x"] * 41]) + "\n")
    codes, seconds = _timed_codes(script)
    assert codes == ["DG709"] and seconds < 1.5


@pytest.mark.parametrize("copy", ["b = a + a", "b = a[:]", "b = list(t)"])
def test_30000_list_copies_are_dg709_not_a_minute_of_work(tmp_path, copy):
    script = tmp_path / "copies.py"
    items = ",".join(["lightly"] * 2000)
    script.write_text("\n".join(["import lightly", f"a = [{items}]", f"t = ({items.replace('lightly', '1')})",
                                 *[copy] * 30000]) + "\n")
    codes, seconds = _timed_codes(script)
    assert codes == ["DG709"] and seconds < 5  # most of it is Python's own parse of a 30,000-line file


def test_expression_too_deep_for_ast_parse_is_dg709_not_all_checks_passed(tmp_path):
    script = tmp_path / "deep.py"
    script.write_text("import lightly\nx = " + "-" * 200_000 + "1\n")
    assert _timed_codes(script)[0] == ["DG709"]
