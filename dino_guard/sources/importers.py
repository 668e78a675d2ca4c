"""The run length of a module that another file of the same project trains.

A LightningModule often lives in its own file (`dino_module.py`) while
`main.py` imports it and builds `Trainer(max_epochs=100)`: read alone, the
module's run length is unknown and a 10-epoch momentum schedule in it goes
unseen. Here the files next to the module and at the project root are read
(bounded: at most MAX_FILES files of at most MAX_BYTES each, only those that
name the module and `max_epochs`); when every one of them that imports the
module gives the same constant `max_epochs` (and no max_steps or max_time
that could stop the run first), that is the module's run length.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

from dino_guard.datafiles import project_root
from dino_guard.findings import UnreadableInput
from dino_guard.setupfile.loader import read_bounded
from dino_guard.sources.call_edit import callee_name

MAX_FILES = 100
MAX_BYTES = 1_000_000
_STOPS_FIRST = frozenset({"max_steps", "max_time"})


def epochs_from_importers(script: Path) -> tuple[int | None, str]:
    """The epochs every importer of `script` trains it for (None when none does or they disagree), and who."""
    found, names = [], []
    for file in _candidates(script):
        tree = _read(file, script.stem)
        if tree is not None and _imports(tree, script.stem) and (epochs := _max_epochs(tree)):
            found += epochs
            names.append(file.name)
    if not found or None in found or len(set(found)) != 1:
        return None, "the script"
    return found[0], " and ".join(names)


def _candidates(script: Path) -> list[Path]:
    # its own folder and its project's root (which may be that same folder: never a project above it)
    folders = [Path(os.path.abspath(script)).parent, project_root(script)]
    files = []
    for place in dict.fromkeys(f for f in folders if f is not None):
        try:
            files += sorted(p for p in place.iterdir() if p.suffix == ".py" and p.name != script.name and p.is_file())
        except OSError:
            continue
    return files[:MAX_FILES]


def _read(file: Path, stem: str) -> ast.Module | None:
    try:
        raw = read_bounded(file, MAX_BYTES, "a Python file", "")
    except UnreadableInput:
        return None
    if stem.encode() not in raw or b"max_epochs" not in raw:
        return None
    try:
        return ast.parse(raw.decode("utf-8-sig"))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _imports(tree: ast.Module, stem: str) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1] == stem:
            return True
        if isinstance(node, ast.Import) and any(a.name.split(".")[-1] == stem for a in node.names):
            return True
    return False


def _max_epochs(tree: ast.Module) -> list:
    """max_epochs of each Trainer(...) call: an int, or None when not a constant the file states."""
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
                 if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    values = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and (callee_name(node) or "").endswith("Trainer")):
            continue
        keywords = {k.arg: k.value for k in node.keywords}
        if "max_epochs" not in keywords:
            continue
        value = keywords["max_epochs"]
        value = value.value if isinstance(value, ast.Constant) else constants.get(getattr(value, "id", None))
        certain = isinstance(value, int) and not isinstance(value, bool) and value > 0
        values.append(value if certain and not _STOPS_FIRST & keywords.keys() else None)
    return values


