"""Does a lightly name exist in the installed lightly? Read, never imported.

The installed package is located with importlib (no import of lightly: it
would import torch, seconds on a pre-commit hook) and its modules are read
with `ast`. Where lightly is not installed (pre-commit's own environment),
a static table of removed APIs still names what replaced them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from typing import Optional

_COLLATE_TO_TRANSFORM = {
    "DINOCollateFunction": "DINOTransform", "SimCLRCollateFunction": "SimCLRTransform",
    "MoCoCollateFunction": "MoCoV2Transform", "MultiCropCollateFunction": "MultiCropTranform",
    "SwaVCollateFunction": "SwaVTransform", "MAECollateFunction": "MAETransform",
    "PIRLCollateFunction": "PIRLTransform", "MSNCollateFunction": "MSNTransform",
    "SMoGCollateFunction": "SMoGTransform", "VICRegLCollateFunction": "VICRegLTransform",
    "ImageCollateFunction": "SimCLRTransform", "BaseCollateFunction": "a torchvision transform",
    "MultiViewCollateFunction": "MultiViewTransform",
}


def _collate_help(old: str, new: str) -> str:
    where = f"lightly.transforms.{new}" if not new.startswith("a ") else new
    return (f"{old} was deprecated in lightly 1.4 and removed: pass {where}() as the data set's "
            f"transform= and use the default collate (or lightly.data.MultiViewCollate)")


# Last name of a removed lightly API -> what to write instead.
REMOVED = {old: _collate_help(old, new) for old, new in _COLLATE_TO_TRANSFORM.items()}
REMOVED.update({
    "collate": "lightly.data.collate (the collate functions) was removed: use the transforms in lightly.transforms "
               "as the data set's transform= with the default collate",
    "SimCLR": "the packaged model classes were removed: build the model from lightly.models.modules heads as in lightly's examples",
    "MoCo": "the packaged model classes were removed: build the model from lightly.models.modules heads as in lightly's examples",
    "BYOL": "the packaged model classes were removed: build the model from lightly.models.modules heads as in lightly's examples",
    "SimSiam": "the packaged model classes were removed: build the model from lightly.models.modules heads as in lightly's examples",
    "BarlowTwins": "the packaged model classes were removed: build the model from lightly.models.modules heads as in lightly's examples",
    "NNCLR": "the packaged model classes were removed: build the model from lightly.models.modules heads as in lightly's examples",
})


@lru_cache(maxsize=1)
def installed() -> Optional[tuple[str, Path]]:
    """(version, package folder) of the installed lightly, or None."""
    try:
        spec = importlib.util.find_spec("lightly")
        version = importlib.metadata.version("lightly")
    except (ImportError, ValueError, importlib.metadata.PackageNotFoundError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return version, Path(list(spec.submodule_search_locations)[0])


@lru_cache(maxsize=4096)
def check(qual: str) -> Optional[str]:
    """None if `qual` (lightly.x.Y) exists or cannot be judged, else what is missing."""
    found = installed()
    if found is None:
        return None
    parts = qual.split(".")
    path, index = found[1], 1
    while index < len(parts) and _submodule(path, parts[index]) is not None:
        path = _submodule(path, parts[index])
        index += 1
    if index == len(parts):
        return None  # the whole name is a module
    names = module_names(_module_file(path))
    if names is None or parts[index] in names:
        return None
    return ".".join(parts[: index + 1])


def replacement(qual: str) -> str:
    """What to write instead of a missing lightly name."""
    last = qual.rsplit(".", 1)[-1]
    if last in REMOVED:
        return REMOVED[last]
    homes = defined_in(last)
    if homes:
        return f"import it from {homes[0]}: `from {homes[0]} import {last}`"
    return "see lightly's examples for the current API: https://docs.lightly.ai/self-supervised-learning/examples/models.html"


@lru_cache(maxsize=1024)
def _submodule(path: Path, name: str) -> Optional[Path]:
    if path.is_file():
        return None
    if (path / name / "__init__.py").is_file():
        return path / name
    if (path / f"{name}.py").is_file():
        return path / f"{name}.py"
    return None


def _module_file(path: Path) -> Path:
    return path / "__init__.py" if path.is_dir() else path


@lru_cache(maxsize=256)
def module_names(file: Path) -> Optional[frozenset]:
    """Top-level names of a lightly module (with star imports), None if any name may exist."""
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return None
    names: set[str] = set()
    if file.name == "__init__.py":
        names.update(p.stem for p in file.parent.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file())
    for node in _top_level(tree.body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == "__getattr__":
                return None  # lazy module attributes: cannot tell statically
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            star = _star_names(file, node) if isinstance(node, ast.ImportFrom) else set()
            if star is None:
                return None
            names.update(star)
            names.update((a.asname or a.name).split(".")[0] for a in node.names if a.name != "*")
    return frozenset(names)


def _top_level(body: list):
    """Statements at module level, including those inside if/try/with blocks."""
    for node in body:
        yield node
        for attr in ("body", "orelse", "finalbody"):
            if isinstance(node, (ast.If, ast.Try, ast.With)) and getattr(node, attr, None):
                yield from _top_level(getattr(node, attr))
        for handler in getattr(node, "handlers", []) if isinstance(node, ast.Try) else []:
            yield from _top_level(handler.body)


def _star_names(file: Path, node: ast.ImportFrom) -> Optional[set]:
    if not any(a.name == "*" for a in node.names):
        return set()
    target = _resolve_from(file, node)
    if target is None:
        return None  # a star import from outside lightly: anything may exist
    names = module_names(_module_file(target))
    return None if names is None else set(names)


def _resolve_from(file: Path, node: ast.ImportFrom) -> Optional[Path]:
    found = installed()
    if node.level:
        base = file.parent
        for _ in range(node.level - 1):
            base = base.parent
        parts = (node.module or "").split(".") if node.module else []
    elif node.module and node.module.split(".")[0] == "lightly" and found:
        base, parts = found[1], node.module.split(".")[1:]
    else:
        return None
    for part in parts:
        base = _submodule(base, part)
        if base is None:
            return None
    return base


@lru_cache(maxsize=64)
def defined_in(name: str) -> tuple:
    """lightly modules that define `name` at top level (only read on a miss)."""
    found = installed()
    if found is None:
        return ()
    pattern = re.compile(rf"^(class|def)\s+{re.escape(name)}\b", re.M)
    homes = []
    for file in sorted(found[1].rglob("*.py")):
        try:
            if pattern.search(file.read_text(encoding="utf-8")):
                rel = file.relative_to(found[1].parent).with_suffix("")
                homes.append(".".join(p for p in rel.parts if p != "__init__"))
        except (OSError, UnicodeDecodeError):
            continue
    return tuple(homes)
