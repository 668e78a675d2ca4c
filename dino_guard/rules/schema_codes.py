"""Codes raised by the loader while reading a setup file (DG0xx)."""

from dino_guard.findings import Severity
from dino_guard.rules.registry import documented

documented("DG001", "invalid-syntax", Severity.ERROR, """
    The setup file is not valid YAML, JSON or TOML.

    What it checks:
        that the parser can read the file; the finding points at the parser's
        line and column.

    Why it matters:
        nothing else can be checked until the file parses.

    Example:
        `model: {backbone: {name: resnet50}` (an unclosed brace).

    Use instead:
        `model: {backbone: {name: resnet50}}`.

    References:
        https://yaml.org/spec/1.2.2/
""", "loader")

documented("DG002", "unknown-key", Severity.ERROR, """
    A key that no section of the setup accepts.

    What it checks:
        every key against the fields of its section, with a did-you-mean.

    Why it matters:
        a misspelt key (`hiden_dim`) is silently ignored by most configs, and
        the default trains instead.

    Example:
        `head: {hiden_dim: 4096}`.

    Use instead:
        `head: {hidden_dim: 4096}`.

    References:
        lightly DINOProjectionHead arguments.
""", "loader")

documented("DG003", "invalid-value", Severity.ERROR, """
    A value of the wrong type or outside its range.

    What it checks:
        types (integers, probabilities in [0, 1], ordered crop scales in (0,
        1], precision fp32|bf16|fp16).

    Why it matters:
        a bad value fails late (after the job waited in a queue) or trains
        something else than intended.

    Example:
        `global_crop_scale: [1.0, 0.4]`.

    Use instead:
        `global_crop_scale: [0.4, 1.0]`.

    References:
        lightly DINOTransform arguments.
""", "loader")

documented("DG004", "missing-field", Severity.ERROR, """
    A field without a default is missing.

    What it checks:
        the fields that have no sensible default, such as model.backbone.name.

    Why it matters:
        there is no DINO setup without a backbone.

    Example:
        `model: {head: {output_dim: 65536}}`.

    Use instead:
        `model: {backbone: {name: vit_small_patch16_224}, head: {output_dim:
        65536}}`.

    References:
        docs/reference.md, "The setup file".
""", "loader")

documented("DG005", "duplicate-key", Severity.ERROR, """
    The same key twice in one section.

    What it checks:
        duplicate keys, which YAML loaders silently resolve by keeping the
        last one.

    Why it matters:
        the value you read at the top of the file is not the one that trains.

    Example:
        `train: {batch_size: 64, batch_size: 256}`.

    Use instead:
        one `batch_size`.

    References:
        YAML 1.2 spec, 3.2.1.1 (keys are unique).
""", "loader")

documented("DG006", "not-a-setup", Severity.ERROR, """
    The file is empty or holds a list or a scalar instead of sections.

    What it checks:
        that the top level is a mapping of sections.

    Why it matters:
        nothing can be checked, and the trainer would have nothing to train.

    Example:
        a file holding `- model: ...` (a list).

    Use instead:
        `model: ...` at the top level.

    References:
        docs/reference.md, "The setup file".
""", "loader")

documented("DG007", "too-complex", Severity.ERROR, """
    The document nests too deeply or its aliases expand too far.

    What it checks:
        at most 64 levels and 100,000 values after alias expansion ("billion
        laughs").

    Why it matters:
        such a file hangs or crashes YAML loaders; no real setup comes close.

    Example:
        `a: &a [x, x]`, `b: &b [*a, *a]`, ... nine levels deep.

    Use instead:
        write the setup out flat.

    References:
        https://en.wikipedia.org/wiki/Billion_laughs_attack
""", "loader")

documented("DG008", "unused-suppression", Severity.WARNING, """
    A suppression comment that suppresses nothing (reported with --warn-unused-ignores).

    What it checks:
        Each code named by `# dino-guard: ignore[...]`, `# dino-guard:
        ignore-file[...]` or (in Python) `# noqa: DG...` against the findings
        of that line, section or file. Codes this run does not check
        (--select/--ignore) are not judged.

    Why it matters:
        A suppression outlives the mistake it silenced: once the setup is
        fixed, the stale comment would silently hide the same mistake when it
        comes back. A misspelt code silences nothing at all.

    Example:
        head: {batch_norm: false}  # dino-guard: ignore[DG203] kept from the BN experiment

    Use instead:
        head: {batch_norm: false}

    References:
        ruff RUF100 (unused-noqa); flake8 `# noqa` comments.
    """, "loader")
