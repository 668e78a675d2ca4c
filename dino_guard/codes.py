"""The code table: every DGnnn dino-guard can print, its name, severity and origin.

This is the one place a code's identity lives. It sits at the bottom of the
package (stdlib + findings only), so the loader, the script reader and the
trainer can make findings without loading a single rule. The rules package
attaches each code's documentation and check function, and refuses a code or
a name/severity that is not in this table (rules/registry.py).

Codes are permanent: a rule that is removed moves to RETIRED and its code is
never reused (users have codes in their --ignore lists).
"""

from __future__ import annotations

from dataclasses import dataclass

from dino_guard.findings import Finding, Severity

ORIGINS = ("loader", "setup", "script", "trainer")


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    severity: Severity  # what the code is raised as when nothing makes failure certain
    origin: str  # loader | setup | script | trainer: who raises it
    # A graded rule raises this instead when the numbers make failure certain (DG402: a teacher
    # temperature at or above the student's collapses); its doc states the thresholds and their source.
    graded: Severity | None = None

    @property
    def severities(self) -> tuple[Severity, ...]:
        return (self.severity, self.graded) if self.graded else (self.severity,)

    @property
    def severity_label(self) -> str:
        """`warning` or, for a graded rule, `warning/error`."""
        return "/".join(s.value for s in self.severities)


CODES: dict[str, Code] = {c.code: c for c in (
    Code("DG001", "invalid-syntax", Severity.ERROR, "loader"),
    Code("DG002", "unknown-key", Severity.ERROR, "loader"),
    Code("DG003", "invalid-value", Severity.ERROR, "loader"),
    Code("DG004", "missing-field", Severity.ERROR, "loader"),
    Code("DG005", "duplicate-key", Severity.ERROR, "loader"),
    Code("DG006", "not-a-setup", Severity.ERROR, "loader"),
    Code("DG007", "too-complex", Severity.ERROR, "loader"),
    Code("DG008", "unused-suppression", Severity.WARNING, "loader"),
    Code("DG101", "missing-transform", Severity.ERROR, "setup"),
    Code("DG102", "output-dim-too-large", Severity.WARNING, "setup"),
    Code("DG103", "conflicting-data-source", Severity.ERROR, "setup"),
    Code("DG104", "cpu-augmentation-starves-gpu", Severity.WARNING, "setup"),
    Code("DG105", "device-decode-without-device-backend", Severity.WARNING, "setup"),
    Code("DG110", "init-file-missing", Severity.ERROR, "setup"),
    Code("DG111", "init-other-architecture", Severity.ERROR, "setup"),
    Code("DG112", "init-name-disagrees", Severity.WARNING, "setup"),
    Code("DG201", "head-input-dim-mismatch", Severity.ERROR, "setup"),
    Code("DG202", "unknown-backbone", Severity.ERROR, "setup"),
    Code("DG203", "batch-norm-with-vit", Severity.WARNING, "setup"),
    Code("DG204", "register-tokens-in-masked-vit", Severity.ERROR, "setup"),
    Code("DG301", "crop-not-divisible-by-patch", Severity.ERROR, "setup"),
    Code("DG302", "crops-on-fixed-size-vit", Severity.ERROR, "setup"),
    Code("DG303", "backbone-fixed-input-size", Severity.ERROR, "setup"),
    Code("DG304", "local-scale-overlaps-global", Severity.WARNING, "setup"),
    Code("DG305", "local-crop-not-smaller", Severity.WARNING, "setup"),
    Code("DG401", "loss-output-dim-mismatch", Severity.ERROR, "setup"),
    Code("DG402", "teacher-temp-too-high", Severity.WARNING, "setup", Severity.ERROR),
    Code("DG403", "warmup-teacher-temp-above-final", Severity.WARNING, "setup"),
    Code("DG404", "teacher-temp-warmup-too-long", Severity.WARNING, "setup"),
    Code("DG410", "teacher-momentum-invalid", Severity.WARNING, "setup", Severity.ERROR),
    Code("DG411", "momentum-small-batch", Severity.INFO, "setup"),
    Code("DG412", "lr-used", Severity.INFO, "setup"),
    Code("DG413", "lr-out-of-range", Severity.WARNING, "setup"),
    Code("DG414", "warmup-longer-than-training", Severity.WARNING, "setup"),
    Code("DG415", "fp16-small-patch", Severity.WARNING, "setup"),
    Code("DG416", "teacher-too-slow-for-run", Severity.WARNING, "setup"),
    Code("DG417", "no-optimizer-step", Severity.WARNING, "setup"),
    Code("DG418", "ibot-output-dim-mismatch", Severity.ERROR, "setup"),
    Code("DG419", "koleo-single-image", Severity.WARNING, "setup"),
    Code("DG420", "batch-below-recipe", Severity.WARNING, "setup"),
    Code("DG421", "mask-ratio-invalid", Severity.ERROR, "setup"),
    Code("DG422", "mask-ratio-out-of-range", Severity.WARNING, "setup"),
    Code("DG501", "non-finite-loss", Severity.ERROR, "trainer"),
    Code("DG502", "uniform-collapse", Severity.ERROR, "trainer"),
    Code("DG503", "dimensional-collapse", Severity.ERROR, "trainer"),
    Code("DG504", "loss-rising", Severity.WARNING, "trainer"),
    Code("DG505", "loss-divergence", Severity.ERROR, "trainer"),
    Code("DG506", "no-progress", Severity.WARNING, "trainer"),
    Code("DG507", "teacher-temp-warmup-rise", Severity.INFO, "trainer"),
    Code("DG508", "update-per-micro-batch", Severity.WARNING, "trainer"),
    Code("DG513", "knn-below-start", Severity.ERROR, "trainer"),
    Code("DG601", "batch-exceeds-gpu-memory", Severity.ERROR, "setup"),
    Code("DG602", "batch-near-gpu-memory", Severity.WARNING, "setup"),
    Code("DG603", "unknown-gpu", Severity.ERROR, "setup"),
    Code("DG700", "script-syntax-error", Severity.ERROR, "script"),
    Code("DG701", "teacher-is-student", Severity.ERROR, "script"),
    Code("DG702", "update-momentum-swapped", Severity.ERROR, "script"),
    Code("DG703", "trainable-teacher-in-optimizer", Severity.ERROR, "script"),
    Code("DG704", "last-layer-freeze-on-teacher", Severity.WARNING, "script"),
    Code("DG705", "too-few-views", Severity.ERROR, "script"),
    Code("DG706", "teacher-temp-warmup-never-ends", Severity.WARNING, "script"),
    Code("DG707", "lightly-api-missing", Severity.ERROR, "script"),
    Code("DG708", "lightly-api-removed", Severity.WARNING, "script"),
    Code("DG709", "script-not-analysed", Severity.WARNING, "script"),
    Code("DG710", "loss-args-swapped", Severity.ERROR, "script"),
    Code("DG711", "teacher-updated-in-eval", Severity.ERROR, "script"),
    Code("DG712", "momentum-schedule-shorter-than-run", Severity.WARNING, "script"),
    Code("DG713", "lr-scaled-too-high", Severity.WARNING, "script"),
    Code("DG714", "tiny-batch-large-momentum", Severity.WARNING, "script"),
    Code("DG715", "backbone-output-not-flat", Severity.ERROR, "script"),
    Code("DG716", "imagefolder-without-classes", Severity.ERROR, "script"),
    Code("DG717", "teacher-never-updated", Severity.ERROR, "script"),
    Code("DG718", "teacher-head-not-updated", Severity.WARNING, "script"),
    Code("DG719", "ibot-loss-output-dim-mismatch", Severity.ERROR, "script"),
    Code("DG720", "last-layer-freeze-no-op", Severity.WARNING, "script"),
    Code("DG721", "koleo-single-image-per-call", Severity.WARNING, "script"),
    Code("DG722", "teacher-temp-warmup-longer-than-run", Severity.WARNING, "script"),
    Code("DG723", "sqrt-lr-reference-is-the-batch", Severity.WARNING, "script"),
    Code("DG724", "fixed-epoch-length-schedule", Severity.WARNING, "script"),
    Code("DG725", "teacher-student-head-output-dim-differ", Severity.ERROR, "script"),
    Code("DG730", "lightly-pin-unreadable", Severity.WARNING, "script"),
)}

# Which findings `check --fix` may apply (as ruff): "safe" makes the run possible without changing the
# recipe (widths, a missing transform, crop sizes, the ViT's input size, a batch split that keeps the
# effective batch); "unsafe" changes the recipe (lr, momentum, temperatures, K, precision, workers, data)
# and is applied only with --unsafe-fixes. A code not listed has no fix; infos are never applied.
FIX_SAFETY: dict[str, str] = {
    "DG101": "safe", "DG201": "safe", "DG301": "safe", "DG302": "safe", "DG303": "safe", "DG401": "safe",
    "DG601": "safe", "DG418": "safe", "DG421": "safe", "DG725": "safe",
    "DG102": "unsafe", "DG103": "unsafe", "DG104": "unsafe", "DG105": "unsafe", "DG202": "unsafe",
    "DG203": "unsafe", "DG304": "unsafe", "DG305": "unsafe", "DG402": "unsafe", "DG403": "unsafe",
    "DG404": "unsafe", "DG410": "unsafe", "DG413": "unsafe", "DG414": "unsafe",
    "DG415": "unsafe", "DG416": "unsafe", "DG417": "unsafe", "DG602": "unsafe",
    "DG204": "unsafe", "DG419": "unsafe", "DG420": "unsafe", "DG422": "unsafe", "DG111": "unsafe", "DG112": "unsafe",
}


def fix_safety(code: str) -> str:
    """"safe", "unsafe" or "none": whether `check --fix` applies the code's fix, and under which flag."""
    if code in CODES and CODES[code].severity == Severity.INFO:
        return "none"  # an info is never applied (DG411's advice is for the user to weigh)
    return FIX_SAFETY.get(code, "none")


# Codes that once existed, with what replaced them. Never reuse one.
RETIRED: dict[str, str] = {}


class UnknownCode(KeyError):
    pass


def get(code: str) -> Code:
    try:
        return CODES[code]
    except KeyError:
        raise UnknownCode(code) from None


def make_finding(code: str, path: str, position: tuple, field: str, message: str, help: str,
                 fix: dict | None = None, severity: Severity | None = None) -> Finding:
    """A Finding for a registered code at (line, column) of path; `severity` only as the table grades it."""
    entry = get(code)
    if severity is not None and severity not in entry.severities:
        raise ValueError(f"{code} is raised as {entry.severity_label}, not {severity.value}")
    return Finding(path=path, line=position[0], column=position[1], code=code, name=entry.name,
                   severity=severity or entry.severity, message=message, help=help, field=field, fix=fix)


def known_prefix(prefix: str) -> bool:
    """True when some code (live or retired) starts with prefix: `DG2`, `DG201`."""
    return any(code.startswith(prefix) for code in (*CODES, *RETIRED))
