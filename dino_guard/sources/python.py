"""lightly DINO training scripts -> a partial Setup, its locations, and script findings.

The script is parsed with `ast`, never imported or run, and nothing here
imports torch, timm or lightly. What the script determines becomes Setup
fields (with the line:col of the call or argument) and their dotted names in
`known`; the engine then runs the same rules as on setup files, skipping
those whose fields the script leaves open.

The principle every script finding follows: an error only when every value
it uses is certain; a warning when the mistake is likely; silence when a
value is unknown. Unknown is the reader's answer for anything the script
does not pin down: a list filled by a loop or by a helper, a value chosen by
try/except or by an `if` on a configuration value whose branches disagree,
a name looked up with getattr. Epochs come only from a loop that steps an
optimizer or from Lightning's Trainer; a file with several models (DINO next
to MSN or BYOL) is read per model class. A finding is reported once per
source location, and a message never shows a value the script did not write.
"""

from __future__ import annotations

import ast
import dataclasses
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from dino_guard.codes import make_finding
from dino_guard.findings import Finding
from dino_guard.schemas import Setup
from dino_guard.setupfile.loader import Loaded, Locations, View, read_bounded
from dino_guard.sources import prefilter
from dino_guard.sources.call_edit import callee_name

if TYPE_CHECKING:
    from dino_guard.sources.partial_setup import Built

MAX_BYTES = 5_000_000  # a training script is a few KB; generated megabyte files are not scripts


def load_python(path: str | Path, src: tuple = ()) -> Loaded:
    """src: folders that hold the project's own packages (a lightly there is first-party)."""
    path = Path(path)
    raw = read_bounded(path, MAX_BYTES, "a training script", "give the script itself", head_only=True)
    if not prefilter.may_import_lightly(raw):
        return _nothing(str(path))
    if len(raw) > MAX_BYTES:  # a lightly script of megabytes: say it was not looked at, never "passed"
        return _not_analysed(str(path), f"the script is larger than {MAX_BYTES // 1_000_000} MB: it was not checked")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return _nothing(str(path))  # Python would refuse it too; not ours to report
    return dataclasses.replace(analyse(str(path), text, src=src), text=text)


def analyse(path: str, text: str, require_lightly: bool = True, src: tuple = ()) -> Loaded:
    """The whole analysis of one script's text (tests call it on any file)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences etc. are not ours to report
            tree = ast.parse(text, filename=path)
    except SyntaxError as exc:
        return Loaded(path, None, Locations(), [_syntax_finding(path, exc)], frozenset())
    except (RecursionError, MemoryError):  # Python itself could not compile it: never "passed"
        return _not_analysed(path, "the script is nested too deeply for Python to parse: it was not checked")
    except ValueError:  # null bytes: Python refuses the file too
        return _nothing(path)
    if require_lightly and not prefilter.imports_lightly(tree):
        return _nothing(path)
    # imported here so that a hook run over files without lightly never loads the interpreter
    from dino_guard.sources import partial_setup
    from dino_guard.sources.evidence import ScriptEvidence
    from dino_guard.sources.interp import Interpreter, OutOfBudget
    from dino_guard.sources.library import DinoLibrary
    from dino_guard.sources.library.methods import state_dict_ema
    from dino_guard.sources.releases import verdict
    from dino_guard.sources.roles import Roles

    try:
        trace = Interpreter(tree, text.splitlines(), DinoLibrary()).run()
    except (OutOfBudget, RecursionError, MemoryError):
        return _not_analysed(path, "the script is too large or too deeply nested to follow: it was not checked")
    trace.ema_by_hand = trace.ema_by_hand or state_dict_ema(tree)
    findings = verdict.api_findings(path, trace.lightly_refs, tree, src)  # DG707/DG708
    if not _uses_dino(trace):
        return Loaded(path, None, Locations(), findings, frozenset())
    roles = Roles(trace)
    built = partial_setup.build(trace, roles)
    if built.epochs is None and trace.schedules and Path(path).is_file():  # a module another file trains
        from dino_guard.sources.importers import epochs_from_importers

        built.epochs, built.trained_by = epochs_from_importers(Path(path))
    setup, invalid = _validate(path, built)
    findings += invalid
    evidence = ScriptEvidence(path, trace, roles, built, partial_setup.DinoPair(trace), setup, tree)
    return Loaded(path, setup, Locations(built.positions), once_per_location(findings), frozenset(built.known),
                  frozenset(built.unknown), evidence, views=_views(partial_setup.head_views(trace, roles)))


_RAISES = frozenset({"raises", "assertRaises", "assertRaisesRegex", "assertWarns", "assertWarnsRegex"})


def expected_failures(text: str) -> list[tuple[int, int]]:
    """Line ranges of `with pytest.raises(...)` / `with self.assertRaises(...)` blocks: code written to fail
    on purpose, where a finding about the failure is the test's point, never an error."""
    if "raises" not in text and "Raises" not in text and "Warns" not in text:
        return []
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    return [(node.lineno, node.end_lineno or node.lineno) for node in ast.walk(tree)
            if isinstance(node, ast.With | ast.AsyncWith) and any(_expects_failure(item.context_expr)
                                                                   for item in node.items)]


def _expects_failure(expr: ast.expr) -> bool:
    return isinstance(expr, ast.Call) and callee_name(expr) in _RAISES


def once_per_location(findings: list) -> list:
    """One finding per code and source location: a function reached through several call paths
    (called twice, then again by the end pass) reports its mistake once."""
    seen, out = set(), []
    for finding in findings:
        key = (finding.code, finding.line, finding.column)
        if key not in seen:
            seen.add(key)
            out.append(finding)
    return out


def _not_analysed(path: str, message: str) -> Loaded:
    return Loaded(path, None, Locations(), [make_finding(
        "DG709", path, (1, 1), "", message,
        "keep the DINO setup in a short script, or describe it in a *.dino.yaml setup file")], frozenset())


def _nothing(path: str) -> Loaded:
    return Loaded(path, None, Locations(), [], frozenset())


def _syntax_finding(path: str, exc: SyntaxError) -> Finding:
    where = (exc.lineno or 1, exc.offset or 1)
    return make_finding("DG700", path, where, "", f"invalid Python: {exc.msg}",
                        "fix the syntax at that line; nothing else in the script was checked")


def _uses_dino(trace) -> bool:
    """Only DINO scripts get a Setup: a SimCLR script without a transform is not our business."""
    kinds = {"head", "loss", "transform", "dino_collate"}
    return (any(o.kind in kinds for o in trace.objects)
            or any("DINO" in q.rsplit(".", 1)[-1] for q in trace.lightly_refs))


def _views(parts: list[Built]) -> tuple[View, ...]:
    """Each head call as a setup of its own; one the schema refuses is left out (`_validate` reports its value)."""
    views = []
    for part in parts:
        try:
            setup = Setup.model_validate(part.data)
        except ValidationError:
            continue
        views.append(View(setup, Locations(part.positions), frozenset(part.known)))
    return tuple(views)


def _validate(path: str, built: Built) -> tuple:
    """Setup from the built data; a value the schema refuses is reported (DG003) and left out."""
    findings = []
    for _ in range(20):
        try:
            return Setup.model_validate(built.data), findings
        except ValidationError as exc:
            error = exc.errors()[0]
            loc = tuple(p for p in error["loc"] if isinstance(p, str) and p[:1].islower() and "[" not in p)
            dotted = ".".join(loc)
            position = Locations(built.positions).of(loc)
            findings.append(make_finding("DG003", path, position, dotted,
                                         f"{dotted}: {error['msg'].removeprefix('Value error, ')} "
                                         f"(got {error.get('input')!r})",
                                         f"give {loc[-1] if loc else 'it'} a valid value"))
            if not _drop(built, loc):
                break
    return None, findings


def _drop(built: Built, loc: tuple) -> bool:
    section = built.data
    for part in loc[:-1]:
        section = section.get(part) if isinstance(section, dict) else None
    if not loc or not isinstance(section, dict) or loc[-1] not in section:
        return False
    del section[loc[-1]]
    dotted = ".".join(loc)
    built.known = {k for k in built.known if k != dotted and not dotted.startswith(k + ".") or k == "model.backbone"}
    if loc[0] == "transform":
        built.known.discard("transform")
    return True
