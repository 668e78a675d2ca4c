"""DG707/DG708 never judge names the script guards itself, nor a project's own lightly."""

from __future__ import annotations

import textwrap

import pytest

from dino_guard.sources.python import analyse

COMPAT = {
    "try/except ImportError": """
        try:
            from lightly.transforms import DINOTransform
        except ImportError:
            from lightly.data import DINOCollateFunction as DINOTransform
        """,
    "bare except around imports": """
        try:
            from lightly.data import DINOCollateFunction
        except:  # noqa: E722
            DINOCollateFunction = None
        """,
    "hasattr guard": """
        import lightly.data
        if hasattr(lightly.data, "DINOCollateFunction"):
            collate = lightly.data.DINOCollateFunction()
        """,
    "hasattr expression": """
        import lightly.data
        collate = lightly.data.DINOCollateFunction if hasattr(lightly.data, "DINOCollateFunction") else None
        """,
}


@pytest.mark.parametrize("source", COMPAT.values(), ids=list(COMPAT))
def test_compat_imports_and_hasattr_guards_are_not_dg707(tmp_path, source):
    (tmp_path / ".git").mkdir()
    loaded = analyse(str(tmp_path / "train.py"), textwrap.dedent(source))
    assert [f.code for f in loaded.findings] == []


@pytest.mark.parametrize("source", [
    "from lightly.data import DINOCollateFunction\n",
    "import lightly.data\ntry:\n    c = lightly.data.DINOCollateFunction()\n"
    "except Exception:\n    raise SystemExit(1)\n",
])
def test_the_same_name_unguarded_or_in_a_broad_try_around_a_run_is_still_dg707(tmp_path, source):
    (tmp_path / ".git").mkdir()
    loaded = analyse(str(tmp_path / "train.py"), source)
    assert [f.code for f in loaded.findings] == ["DG707"]
