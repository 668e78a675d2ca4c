"""The evaluator on its own (hooks.PlainPython): plain Python semantics, and no library knowledge in its source."""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

from dino_guard.sources import interp
from dino_guard.sources.interp import Interpreter
from dino_guard.sources.interp.values import Obj, Seq

INTERP = Path(interp.__file__).parent
# names of the libraries and the DINO method the evaluator must not know (the package name aside)
LIBRARY_WORDS = re.compile(r"dino|lightly|lightning|teacher|student|update_momentum|dataloader|timm|torchvision",
                           re.IGNORECASE)


def run(source: str) -> dict:
    text = textwrap.dedent(source)
    interpreter = Interpreter(ast.parse(text), text.splitlines())
    interpreter.run()
    return interpreter.globals


def test_interp_source_names_no_library():
    for path in sorted(INTERP.glob("*.py")):
        text = path.read_text(encoding="utf-8").replace("dino_guard", "").replace("dino-guard", "")
        hits = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if LIBRARY_WORDS.search(line)]
        assert not hits, f"{path.name} names a library: {hits}"


def test_without_a_library_calls_of_imported_names_are_unknown_and_fresh():
    env = run("""
        import somelib
        a = somelib.make(1)
        b = somelib.make(1)
    """)
    assert isinstance(env["a"], Obj) and env["a"].kind == "opaque" and env["a"] is not env["b"]


def test_constants_defaults_and_dict_items_are_followed():
    env = run("""
        def scaled(x, factor=2):
            return x * factor
        config = {"size": scaled(16) + 4}
        config["size"] = config["size"] * 2
        size = config["size"]
    """)
    assert env["size"] == 72


def test_list_filled_by_a_loop_has_unknown_length():
    env = run("""
        items = []
        for x in data():
            items.append(x)
        n = len(items)
    """)
    assert isinstance(env["items"], Seq) and env["items"].length is None and not isinstance(env["n"], int)


def test_branches_that_disagree_give_unknown_and_agreeing_ones_keep_the_value():
    env = run("""
        import os
        if os.environ.get("X"):
            a, b = 1, 2
        else:
            a, b = 1, 3
    """)
    assert env["a"] == 1 and isinstance(env["b"], Obj)


def test_a_counter_incremented_in_a_loop_is_unknown_inside_it():
    env = run("""
        step = 0
        seen = None
        while True:
            seen = step
            step += 1
    """)
    assert isinstance(env["seen"], Obj)


def test_attributes_assigned_differently_in_branches_are_unknown_and_agreeing_ones_kept():
    env = run("""
        import os
        class Box:
            pass
        box = Box()
        box.kept = 1
        if os.environ.get("X"):
            box.size = 1
            box.kept = 1
        else:
            box.size = 2
        size, kept = box.size, box.kept
    """)
    assert isinstance(env["size"], Obj) and env["size"].kind == "opaque" and env["kept"] == 1


def test_a_name_only_a_star_import_can_bind_is_asked_of_the_library():
    asked = []

    class Recording(interp.hooks.PlainPython):
        def star_name(self, it, name, modules):
            asked.append((name, list(modules)))
            return None

    text = "from helpers import *\nfrom .local import *\nx = make(1)\ny = len\n"
    Interpreter(ast.parse(text), text.splitlines(), Recording()).run()
    assert asked == [("make", ["helpers"])]  # a builtin is not asked; a relative star import is not a module name
    env = run(text)
    assert isinstance(env["x"], Obj) and env["x"].kind == "opaque"  # PlainPython: unknown
