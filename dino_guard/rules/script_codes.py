"""Codes raised by the Python script reader only (DG7xx): mistakes a setup file cannot express."""

from dino_guard.findings import Severity
from dino_guard.rules.registry import documented

documented("DG700", "script-syntax-error", Severity.ERROR, """
    The training script is not valid Python.

    What it checks: that `ast.parse` reads the script; the finding points at the parser's line and column.
    Why it matters: nothing else in the script can be checked, and the job would fail at its first line.
    Example: `criterion = DINOLoss(output_dim=2048` (an unclosed parenthesis).
    Use instead: `criterion = DINOLoss(output_dim=2048)`.
    References: https://docs.python.org/3/library/ast.html#ast.parse
""", "script")

documented("DG707", "lightly-api-missing", Severity.ERROR, """
    The script uses a lightly name the installed lightly does not have.

    What it checks: every `lightly.*` import and attribute against the installed lightly's
    source (read with `ast`, never imported), and says what replaced a removed API.
    Why it matters: the job dies with an ImportError or AttributeError after waiting for a
    GPU; the old collate functions (`DINOCollateFunction`) were removed in favour of
    transforms.
    Example: `from lightly.data import DINOCollateFunction`.
    Use instead: `from lightly.transforms import DINOTransform` and
    `LightlyDataset(path, transform=DINOTransform())` with the default collate.
    References: lightly pull request #1079 (collate functions deprecated); lightly examples.
""", "script")

documented("DG708", "lightly-api-removed", Severity.WARNING, """
    The script uses a lightly API that current lightly releases removed (lightly is not installed here).

    What it checks: where lightly is not installed (pre-commit's own environment), the
    script's `lightly.*` names against a table of removed APIs and their replacements.
    Why it matters: with a current lightly the job fails at import time; ignore it only if
    the project pins an old lightly on purpose.
    Example: `from lightly.data import DINOCollateFunction`.
    Use instead: `lightly.transforms.DINOTransform` as the data set's `transform=`.
    References: lightly pull request #1079; lightly 1.6.0 (no lightly.data.collate).
""", "script")

documented("DG709", "script-not-analysed", Severity.INFO, """
    The script is too large or too deeply nested to follow; it was not checked.

    What it checks: nothing: the analysis stopped at its step budget or Python's recursion limit.
    Why it matters: a clean result would be misleading, so dino-guard says it did not look.
    Example: a generated file of tens of thousands of lines that imports lightly.
    Use instead: keep the DINO setup in a short script, or describe it in a `*.dino.yaml` setup file.
    References: README, "Checking lightly training scripts" (how scripts are read).
""", "script")
