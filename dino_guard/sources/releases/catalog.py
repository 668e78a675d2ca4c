"""What each lightly release defines, from dino_guard/data/lightly_api.json.

The data file is generated from the releases' wheels by
scripts/gen_lightly_api.py (read with `ast`, never imported) and checked
against the installed lightly by a slow test. Nothing here looks at the
installed lightly: a script gets the same verdict in a pre-commit hook's
bare environment as in the training environment.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "data" / "lightly_api.json"

_COLLATE_TO_TRANSFORM = {
    "DINOCollateFunction": "DINOTransform", "SimCLRCollateFunction": "SimCLRTransform",
    "MoCoCollateFunction": "MoCoV2Transform", "MultiCropCollateFunction": "MultiCropTranform",
    "SwaVCollateFunction": "SwaVTransform", "MAECollateFunction": "MAETransform",
    "PIRLCollateFunction": "PIRLTransform", "MSNCollateFunction": "MSNTransform",
    "SMoGCollateFunction": "SMoGTransform", "VICRegLCollateFunction": "VICRegLTransform",
    "ImageCollateFunction": "SimCLRTransform", "BaseCollateFunction": "a torchvision transform",
    "MultiViewCollateFunction": "MultiViewTransform",
}
_PACKAGED_MODELS = ("the packaged model classes were removed: build the model from lightly.models.modules heads "
                    "as in lightly's examples")


def _collate_help(old: str, new: str) -> str:
    where = f"lightly.transforms.{new}" if not new.startswith("a ") else new
    return (f"{old} was deprecated in lightly 1.4 and removed in 1.6: pass {where}() as the data set's "
            f"transform= and use the default collate (or lightly.data.MultiViewCollate)")


# Last name of a removed lightly API -> what to write instead.
REMOVED = {old: _collate_help(old, new) for old, new in _COLLATE_TO_TRANSFORM.items()}
REMOVED.update({name: _PACKAGED_MODELS for name in ("SimCLR", "MoCo", "BYOL", "SimSiam", "BarlowTwins", "NNCLR")})
REMOVED["collate"] = ("lightly.data.collate (the collate functions) was removed in lightly 1.6: use the transforms in "
                      "lightly.transforms as the data set's transform= with the default collate")


def version_key(version: str) -> tuple:
    """'1.5.22' -> (1, 5, 22); pre-release suffixes are ignored."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:4])


@lru_cache(maxsize=1)
def _data() -> dict:
    return json.loads(DATA.read_text(encoding="utf-8"))


def releases() -> list[str]:
    """The releases the data file describes, oldest first."""
    return list(_data()["releases"])


def published() -> list[str]:
    """Every lightly version on PyPI when the data file was generated, oldest first."""
    return list(_data()["published"])


def newest() -> str:
    return releases()[-1]


def _modules(release: str) -> dict:
    return _data()["releases"][release]["modules"]


def missing(release: str, qual: str) -> str | None:
    """The first part of `qual` (lightly.x.Y) that `release` lacks, or None if it exists or cannot be judged."""
    modules, parts = _modules(release), qual.split(".")
    if any(qual == o or qual.startswith(o + ".") for o in _data()["opaque"]):
        return None
    index = 1
    while index < len(parts) and ".".join(parts[: index + 1]) in modules:
        index += 1
    if index == len(parts):
        return None  # the whole name is a module
    names = modules.get(".".join(parts[:index]))
    if names is None or parts[index] in names:
        return None  # a module whose names cannot be listed (lazy attributes), or the name exists
    return ".".join(parts[: index + 1])


def homes(release: str, name: str) -> list[str]:
    """Modules of `release` that have `name`, shortest (the public import path) first."""
    found = [m for m, names in _modules(release).items() if names and name in names]
    return sorted(found, key=lambda m: (m.count("."), m))


def signature(release: str, cls: str) -> tuple | None:
    """((argument, default), ...) of `cls.__init__` in `release`; None if the release has no such class.

    Defaults that are expressions rather than literals (IMAGENET_NORMALIZE) read as None.
    """
    found = _data()["releases"][release]["signatures"].get(cls)
    if found is None:
        return None
    return tuple((name, tuple(default) if isinstance(default, list) else default) for name, default in found)


def replacement(release: str, qual: str) -> str:
    """What to write instead of a lightly name that `release` lacks."""
    last = qual.rsplit(".", 1)[-1]
    if last in REMOVED:
        return REMOVED[last]
    found = homes(release, last)
    if found:
        return f"import it from {found[0]}: `from {found[0]} import {last}`"
    return "see lightly's examples for the current API: https://docs.lightly.ai/self-supervised-learning/examples/models.html"
