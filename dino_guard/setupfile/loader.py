"""Setup files (YAML, TOML, JSON) -> Setup, with a line:column for every field.

Unreadable input (missing, a folder, too large, not UTF-8) raises
UnreadableInput: the CLI prints one line and exits 2. Anything readable but
wrong becomes DG0xx findings, never a traceback.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from dino_guard.codes import make_finding
from dino_guard.findings import Finding, UnreadableInput
from dino_guard.schemas import Setup
from dino_guard.schemas.describe import describe_type
from dino_guard.schemas.setup import INT64_MAX
from dino_guard.setupfile import yamlpos
from dino_guard.setupfile.suppress import toml_header

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

MAX_BYTES = 1_000_000  # a real setup is a few KB; refuse before parsing megabytes


@dataclass
class Locations:
    """Dotted field -> (line, column); a missing field points at its section."""

    positions: dict = field(default_factory=dict)  # tuple path -> (line, col)

    def of(self, dotted: str | tuple) -> tuple[int, int]:
        path = tuple(dotted.split(".")) if isinstance(dotted, str) else tuple(dotted)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return (1, 1)


@dataclass(frozen=True)
class View:
    """One part of what a source describes, as a setup of its own: a script's teacher head (a second
    DINOProjectionHead call) against the teacher's backbone. The rules that need a field under one of
    `sections` run on it too, and report at its positions."""

    setup: Setup
    locations: Locations
    known: frozenset
    sections: tuple = ("model.head",)


@dataclass
class Loaded:
    path: str
    setup: Setup | None
    locations: Locations
    findings: list[Finding]
    known: frozenset | None = None  # dotted fields a partial source determined; None = all
    unknown: frozenset = frozenset()  # fields inside a known section that the source leaves open
    evidence: Any = None  # what a script reader saw, for the rules that only scripts can break (DG7xx)
    text: str | None = None  # the text read, so suppression comments are found without reading the file again
    views: tuple = ()  # View: parts the rules judge apart from `setup` (each head call of a script)


def read_text(path: Path) -> str:
    raw = read_bounded(path, MAX_BYTES, "a setup file (*.dino.yaml)", "is this the right file?")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UnreadableInput(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                              "save the file as UTF-8") from None


def read_bounded(path: Path, limit: int, what: str, hint: str, head_only: bool = False) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, or UnreadableInput.

    head_only: a larger file is not refused; its first limit + 1 bytes are returned.

    Anything but a regular file (a FIFO would block forever, /dev/zero never
    ends) is refused before it is opened; the limit is enforced while reading,
    so a file that grows (or lies about its size) cannot exhaust memory.
    """
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UnreadableInput(f"{path}: {_os_reason(exc)}") from None
    if stat.S_ISDIR(info.st_mode):
        raise UnreadableInput(f"{path}: is a folder; give {what}")
    if not stat.S_ISREG(info.st_mode):
        raise UnreadableInput(f"{path}: not a regular file ({_file_kind(info.st_mode)}); give {what}")

    def too_large(size: str) -> UnreadableInput:
        return UnreadableInput(f"{path}: {size} is far too large for {what} (limit {limit // 1000} KB); {hint}")

    if info.st_size > limit and not head_only:
        raise too_large(f"{info.st_size / 1e6:.1f} MB")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never blocks, even if swapped for a FIFO
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise UnreadableInput(f"{path}: not a regular file; give {what}")
            raw = handle.read(limit + 1)
    except OSError as exc:
        raise UnreadableInput(f"{path}: {_os_reason(exc)}") from None
    if len(raw) > limit and not head_only:  # it grew while being read
        raise too_large(f"more than {limit // 1000} KB")
    return raw


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    return f"cannot be read ({exc.strerror or exc})"


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def load_setup(path: str | Path) -> Loaded:
    path = Path(path)
    text = read_text(path)
    return dataclasses.replace(validate_document(str(path), parse_text(text, path.suffix)), text=text)


def parse_text(text: str, suffix: str) -> yamlpos.Document:
    """A setup file's text as data with positions: TOML for .toml, else YAML (JSON is YAML). Never raises."""
    return _parse_toml(text) if suffix == ".toml" else yamlpos.parse_yaml(text)


def validate_document(path: str, doc: yamlpos.Document) -> Loaded:
    locations = Locations(doc.positions)
    findings = [_problem_finding(path, p) for p in doc.problems]
    if doc.problems and doc.data is None:
        return Loaded(path, None, locations, findings)
    if doc.data is None or doc.data == {}:
        findings.append(make_finding("DG006", path, (1, 1), "", "the setup file is empty",
                                     "start from one of the examples/ setups; at least model.backbone.name is needed"))
        return Loaded(path, None, locations, findings)
    if not isinstance(doc.data, dict):
        kind = type(doc.data).__name__
        findings.append(make_finding("DG006", path, (1, 1), "",
                                     f"the setup file holds a {kind} at the top level, not a mapping of sections",
                                     "write sections as keys: data:, transform:, model:, loss:, optimizer:, train:"))
        return Loaded(path, None, locations, findings)
    try:
        setup = Setup.model_validate(doc.data)
    except ValidationError as exc:
        findings.extend(_validation_findings(path, exc, locations, doc.data))
        return Loaded(path, None, locations, findings)
    if findings:  # duplicate keys etc.: the Setup is not what the user thinks
        return Loaded(path, None, locations, findings)
    return Loaded(path, setup, locations, findings)


_PROBLEM_CODES = {"syntax": "DG001", "duplicate-key": "DG005", "too-complex": "DG007", "bad-key": "DG003",
                  "bad-value": "DG003"}
_PROBLEM_HELP = {
    "syntax": "fix the YAML at that line (indentation, a missing ':' or an unclosed bracket are the usual causes)",
    "duplicate-key": "keep one of the two keys",
    "too-complex": "a setup file is a few flat sections; remove the anchors/aliases or the nesting",
    "bad-key": "write the key as a plain name",
    "bad-value": "write a value of that type, or quote it to keep it as text (e.g. output_dir: \"2024-11-31\")",
}


def _problem_finding(path: str, problem: yamlpos.Problem) -> Finding:
    dotted = _dotted(problem.path)
    return make_finding(_PROBLEM_CODES[problem.kind], path, problem.position, dotted, problem.message,
                        _PROBLEM_HELP[problem.kind])


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _validation_findings(path: str, exc: ValidationError, locations: Locations, data: dict) -> list[Finding]:
    findings = []
    for error in exc.errors():
        if error.get("input") is yamlpos.INVALID:
            continue  # reported by the YAML reader as a bad value already
        loc = _user_loc(error["loc"], data)
        dotted = _dotted(loc)
        position = locations.of(loc)
        kind = error["type"]
        if kind == "extra_forbidden":
            findings.append(_unknown_key(path, loc, position))
        elif kind == "missing":
            section = _dotted(loc[:-1]) or "the top level"
            findings.append(make_finding("DG004", path, position, dotted,
                                         f"{dotted} is required but missing from {section}",
                                         f"add `{loc[-1]}:` under {section}" + _missing_example(loc)))
        else:
            findings.append(make_finding("DG003", path, position, dotted, f"{dotted}: {_value_message(error)}",
                                         _type_help(loc)))
    return findings


def _value_message(error: dict) -> str:
    got = error.get("input")
    if error["type"] == "less_than_equal" and error.get("ctx", {}).get("le") == INT64_MAX:  # the schema's Int
        digits = _digits(got)
        shown = str(got) if digits <= 30 else f"a {digits}-digit number"
        return f"must fit in 64 bits (at most {INT64_MAX}), got {shown}"
    msg = error["msg"].removeprefix("Value error, ")
    return msg if "got" in msg else f"{msg} (got {got!r})"


def _digits(number: int) -> int:
    """Decimal digits without str(): past 4300 digits Python refuses to convert an int to text."""
    digits = max(1, int(abs(number).bit_length() * 0.30102999566398120))  # log10(2)
    while 10**digits <= abs(number):
        digits += 1
    while digits > 1 and 10 ** (digits - 1) > abs(number):
        digits -= 1
    return digits


def _user_loc(loc: tuple, data: Any) -> tuple:
    """pydantic's loc without the union member names it inserts.

    A key the user wrote (`Model:`, `None:`, `x[y]:`, a nested `Dynamic_img_size`)
    is never taken for one: only a part absent from the data can be a tag.
    """
    kept, node = [], data
    for part in loc:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node))
        if not present and _is_union_tag(part):
            continue
        kept.append(part)
        node = node[part] if present else None
    return tuple(kept)


def _is_union_tag(part: Any) -> bool:
    # pydantic puts the chosen union member's name in the loc ("function-after[...]", "Transform")
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def _missing_example(loc: tuple) -> str:
    if loc == ("model", "backbone", "name"):
        return ", e.g. `name: vit_small_patch16_224`"
    return ""


def _unknown_key(path: str, loc: tuple, position: tuple) -> Finding:
    allowed = sorted(_fields_at(loc[:-1]))
    key = str(loc[-1])
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    section = _dotted(loc[:-1]) or "the top level"
    hint = f"did you mean `{close[0]}`? " if close else ""
    return make_finding("DG002", path, position, _dotted(loc), f"unknown key '{key}' in {section}",
                        f"{hint}{section} accepts: {', '.join(allowed)}")


def _fields_at(loc: tuple) -> set[str]:
    model: Any = Setup
    for part in loc:
        if isinstance(part, int):
            continue
        field_info = _unwrap(model).model_fields.get(part)
        if field_info is None:
            return set()
        model = field_info.annotation
    model = _unwrap(model)
    return set(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else set()


def _unwrap(annotation: Any) -> Any:
    if get_origin(annotation) is Union:
        members = [a for a in get_args(annotation) if a is not type(None)]
        return members[0] if members else annotation
    return annotation


def _type_help(loc: tuple) -> str:
    description = _field_description(loc)
    text = f"{_dotted(loc)} takes {describe_type(_field_annotation(loc))}"
    return text + (f": {description}" if description else "")


def _field_annotation(loc: tuple) -> Any:
    model: Any = Setup
    for part in loc:
        model = _unwrap(model)
        if isinstance(part, int) or not (isinstance(model, type) and issubclass(model, BaseModel)):
            return model
        info = model.model_fields.get(part)
        if info is None:
            return model
        model = info.annotation
    return model


def _field_description(loc: tuple) -> str:
    parent = _unwrap(_field_annotation(loc[:-1])) if loc else Setup
    if isinstance(parent, type) and issubclass(parent, BaseModel) and loc and isinstance(loc[-1], str):
        info = parent.model_fields.get(loc[-1])
        if info is not None and info.description:
            return info.description
    return ""


# --- TOML: tomllib has no positions; find keys by scanning the lines ---------------------------

_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+)\s*=")


def _parse_toml(text: str) -> yamlpos.Document:
    doc = yamlpos.Document()
    try:
        doc.data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+), column (\d+)", str(exc))
        where = (int(match.group(1)), int(match.group(2))) if match else (1, 1)
        doc.problems.append(yamlpos.Problem("syntax", f"invalid TOML: {exc}", where))
        return doc
    except RecursionError:  # tomllib recurses once per nesting level
        doc.problems.append(yamlpos.Problem("too-complex", "the document is nested too deeply to read", (1, 1)))
        return doc
    except ValueError as exc:  # an integer of more digits than Python converts
        doc.problems.append(yamlpos.Problem("syntax", f"invalid TOML: {str(exc).split(';')[0]}", (1, 1)))
        return doc
    table: tuple = ()
    for number, line in enumerate(re.split(r"\r?\n", text), start=1):  # TOML's line ends only, as suppress counts
        if line.lstrip().startswith("[") and (header := toml_header(line)) is not None:
            table = header
            doc.positions.setdefault(table, (number, len(line) - len(line.lstrip()) + 1))
        elif m := _KEY.match(line):
            doc.positions.setdefault(table + (m.group(1),), (number, m.start(1) + 1))
    return doc
