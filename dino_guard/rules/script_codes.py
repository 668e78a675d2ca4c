"""Codes raised by the Python script reader only (DG7xx): mistakes a setup file cannot express."""

from dino_guard.findings import Severity
from dino_guard.rules.registry import documented

documented("DG700", "script-syntax-error", Severity.ERROR, """
    The training script is not valid Python.

    What it checks:
        that `ast.parse` reads the script; the finding points at the parser's
        line and column.

    Why it matters:
        nothing else in the script can be checked, and the job would fail at
        its first line.

    Example:
        `criterion = DINOLoss(output_dim=2048` (an unclosed parenthesis).

    Use instead:
        `criterion = DINOLoss(output_dim=2048)`.

    References:
        https://docs.python.org/3/library/ast.html#ast.parse
""", "script")

documented("DG707", "lightly-api-missing", Severity.ERROR, """
    The script uses a lightly name that its project's lightly release does not have.

    What it checks:
        Every `lightly.*` import and attribute against what the lightly
        release the project pins defines (the nearest uv.lock, poetry.lock,
        requirements*.txt or pyproject.toml that names lightly; the newest
        described release without a pin), from the per-release data shipped
        with dino-guard, never from the installed lightly. The message names
        the release and where its version came from, and the help says what
        replaced a removed API.

    Why it matters:
        The job dies with an ImportError or AttributeError after waiting for
        a GPU; the old collate functions (`DINOCollateFunction`) were
        removed in lightly 1.6 in favour of transforms.

    Example:
        from lightly.data import DINOCollateFunction   # with lightly>=1.6

    Use instead:
        from lightly.transforms import DINOTransform
        dataset = LightlyDataset(path, transform=DINOTransform())   # default collate

    References:
        lightly pull request #1079 (collate functions deprecated); lightly's
        DINO examples.
    """, "script")

documented("DG708", "lightly-api-removed", Severity.WARNING, """
    The script uses a lightly name that may not exist in the release its project pins.

    What it checks:
        Like DG707, when the pinned version is not one dino-guard describes
        (or no published release meets the pin): the name is checked against
        the described releases around it, and only one of them lacks it.

    Why it matters:
        The name was added or removed close to the pinned version: the job
        may fail at import time.

    Example:
        from lightly.models.modules import MaskedVisionTransformerTIMM   # lightly==1.5.10

    Use instead:
        Pin a release that has the name (the message names the one that
        lacks it), or import what that release offers.

    References:
        lightly's changelog (GitHub releases).
    """, "script")

documented("DG709", "script-not-analysed", Severity.WARNING, """
    The script is too large or too deeply nested to follow; it was not checked.

    What it checks:
        nothing: the analysis stopped at its step budget or Python's recursion
        limit.

    Why it matters:
        a clean result would be misleading, so dino-guard says it did not
        look.

    Example:
        a generated file of tens of thousands of lines that imports lightly.

    Use instead:
        keep the DINO setup in a short script, or describe it in a
        `*.dino.yaml` setup file.

    References:
        README, "Checking lightly training scripts" (how scripts are read).
""", "script")

documented("DG730", "lightly-pin-unreadable", Severity.WARNING, """
    The project file that should say which lightly the project installs cannot be read as a pin.

    What it checks:
        the requirements*.txt, pyproject.toml, uv.lock or poetry.lock nearest
        to the script (the one DG707/DG708 take the lightly release from):
        a pin such as `lightly = "^"`, `dependencies = 5`, a lock nested too
        deeply to read, a version of thousands of digits, or a file over the
        size limit.

    Why it matters:
        without the pin no lightly name can be judged, so DG707/DG708 stay
        silent for this script; a broken pin usually breaks the install too.

    Example:
        [tool.poetry.dependencies]
        lightly = "^"

    Use instead:
        a real version or constraint: `lightly = "^1.5"`, `lightly==1.5.0`.

    References:
        PEP 440 (version specifiers); PEP 735 (dependency groups); Poetry's
        dependency specification.
""", "script")
