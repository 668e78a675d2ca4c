"""Which files `check` reads, and which reader reads each one."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from dino_guard.check.engine import Options, check_loaded
from dino_guard.findings import Finding, UnreadableInput
from dino_guard.setupfile import suppress
from dino_guard.setupfile.loader import Loaded, load_setup, parse_text, read_bounded, validate_document

SUPPRESSION_BYTES = 5_000_000  # the second read, for the comments of a file the reader kept no text of
Excluded = Callable[[Path, bool], bool]  # (path, named on the command line) -> leave it out
SETUP_PATTERNS = (".dino.yaml", ".dino.yml", ".dino.json", ".dino.toml")


def expand(paths: list[str], excluded: Excluded | None = None, force_exclude: bool = False) -> Iterator[Path]:
    """Files as given; folders searched for setup files and Python scripts.

    `excluded(path, named)` says which files and folders the settings leave out:
    inside folders always, for paths given by name only with force_exclude (as
    ruff; then a folder above the named path counts too).
    A missing path is yielded as is, so that reading it reports it.
    """
    excluded = excluded or (lambda path, named: False)
    for raw in paths:
        path = Path(raw)
        if force_exclude and excluded(path, True):
            continue
        if not path.is_dir():
            yield path
            continue
        yield from _walk(path, excluded)


def _walk(top: Path, excluded: Excluded) -> Iterator[Path]:
    unlisted: list = []  # folders os.walk cannot read: yielded, so that reading them reports why
    for root, dirs, files in os.walk(top, onerror=unlisted.append):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not excluded(here / d, False))
        for name in sorted(files):
            if (name.endswith(SETUP_PATTERNS) or name.endswith(".py")) and not excluded(here / name, False):
                yield here / name
    yield from (Path(error.filename) for error in unlisted)


def load(path: Path, src: tuple = ()) -> Loaded:
    """Read one file with the reader its suffix calls for (src: see Options.src)."""
    if path.is_dir():  # given as a file, or a folder os.walk could not list
        raise UnreadableInput(f"{path}: {_folder_problem(path)}")
    if path.suffix == ".py":
        from dino_guard.sources.python import load_python  # only scripts pay for the ast analysis

        return load_python(path, src)
    return load_setup(path)


def load_text(path: Path, text: str, src: tuple = ()) -> Loaded:
    """Text that is not (yet) on disk, as the reader of path's suffix reads it: `check --fix` re-checks its edits."""
    if path.suffix == ".py":
        from dino_guard.sources.python import analyse

        return dataclasses.replace(analyse(str(path), text, src=src), text=text)
    return dataclasses.replace(validate_document(str(path), parse_text(text, path.suffix)), text=text)


def _folder_problem(path: Path) -> str:
    try:
        os.listdir(path)
    except OSError as exc:
        return f"folder cannot be read ({exc.strerror or exc})"
    return "is a folder; give a setup file (*.dino.yaml) or a training script (*.py)"


def check_path(path: Path, options: Options) -> list[Finding]:
    """Findings for one file, less those its own comments suppress; on scripts, help is phrased as Python arguments."""
    return findings_of(path, load(path, options.src), options)


def findings_of(path: Path, loaded: Loaded, options: Options) -> list[Finding]:
    """What `check` reports for a file already loaded: `train` and `estimate` give the same verdict."""
    findings = check_loaded(loaded, options)
    if path.suffix == ".py" and loaded.evidence is not None and loaded.text is not None and findings:
        from dino_guard.sources.call_edit import at_fix_call

        # before suppression: a noqa comment on the timm call's line or on the crop's line (now related) silences it
        built, tree = loaded.evidence.built, loaded.evidence.tree
        findings = [at_fix_call(f, built.positions, tree, loaded.text) for f in findings]
    findings = _unsuppressed(path, loaded.text, findings, options)
    if path.suffix == ".py":
        from dino_guard.sources.python import expected_failures
        from dino_guard.sources.script_help import at_origin, once_per_place, rephrase

        # code inside `with pytest.raises(...)` is there to fail: judged where it is used
        inside = expected_failures(loaded.text) if findings and loaded.text else []
        findings = [rephrase(f) for f in findings if not any(first <= f.line <= last for first, last in inside)]
        if loaded.evidence is not None and loaded.text is not None:  # at the literal to edit, not at its use
            origins, tree = loaded.evidence.trace.origins, loaded.evidence.tree
            findings = once_per_place([at_origin(f, origins, loaded.text, tree) for f in findings])
    return findings


def _unsuppressed(path: Path, text: str | None, findings: list[Finding], options: Options) -> list[Finding]:
    """Drop what the file's `# dino-guard: ignore[...]` / `# noqa: DG...` comments silence."""
    if text is None:  # a reader that kept no text (a script it did not analyse)
        if not findings and not options.warn_unused_ignores:
            return findings  # nothing to silence: no second read (a hook passes every file of a repository)
        try:
            text = read_bounded(path, SUPPRESSION_BYTES, "a script", "", head_only=True).decode("utf-8", "replace")
        except UnreadableInput:
            return findings
    found = suppress.directives(path, text)
    kept = suppress.apply(findings, found)
    if options.warn_unused_ignores and options.wants("DG008"):
        kept = sorted(kept + suppress.unused(str(path), found, options.wants), key=lambda f: f.sort_key)
    return kept
