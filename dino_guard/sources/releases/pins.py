"""Which lightly version a checked project pins, and which described release that means.

Looked for next to the script and then in each folder above it, up to the
folder that holds `.git` (the project's root): uv.lock and poetry.lock
(exact versions), requirements*.txt (options such as --hash are not part of
the version), pyproject.toml ([project] dependencies and optional
dependencies, PEP 735 [dependency-groups], [tool.poetry] dependencies,
dev-dependencies and groups, constraint lists). A direct URL
(`lightly @ git+...@v1.5.0`) pins the version its tag names; one without a
version makes every verdict uncertain. The nearest folder that mentions
lightly wins; in it, a lock file wins over a requirement. Every read is
bounded; a file that cannot be read as a pin is a PinError, never a traceback.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dino_guard.sources.releases import catalog as rel

_NAME = re.compile(r"^\s*lightly(?![\w.-])\s*(?:\[[^\]]*\])?\s*(?P<rest>.*)$", re.I | re.S)
_CLAUSE = re.compile(r"(===|==|!=|>=|<=|~=|>|<)?(?P<version>\d{1,9}(?:\.\d{1,9}){0,5}(?:\.\*)?[a-z0-9.+-]{0,20})", re.I)
_URL_VERSION = re.compile(r"(?:@v?|/lightly-)(?P<version>\d{1,9}(?:\.\d{1,9}){0,5})(?:[-.][\w.-]*)?$")
LIMITS = {"uv.lock": 20_000_000, "poetry.lock": 20_000_000}  # lock files of big projects run to megabytes
LIMIT = 1_000_000  # pyproject.toml and requirements files


class PinError(ValueError):
    """A project file that should say which lightly the project gets, and cannot be read as saying so."""


@dataclass(frozen=True)
class Pin:
    spec: str  # a PEP 440 specifier ("==1.4.7", ">=1.4,<1.5"); alternatives joined by "|"; "" for any version
    source: Path
    unknown: bool = False  # installed from a URL or a path whose version is not written: no name is certain


@dataclass(frozen=True)
class Judge:
    """The release(s) a script is judged against, and how sure that is."""

    releases: tuple  # one described release, or the two around an undescribed version
    certain: bool  # the version the project gets is described here exactly
    why: str  # where the version comes from, for the message

    def describe(self) -> str:
        return f"lightly {' and '.join(self.releases)} ({self.why})"


def first_party(script: Path, src: tuple = ()) -> bool:
    """The project holds its own `lightly` package (lightly's own repository, a fork): in a configured `src`
    folder, or in a folder above the script (or its src/) up to the project's root (the folder with .git)."""
    if any((Path(folder) / "lightly" / "__init__.py").is_file() for folder in src):
        return True
    folder = Path(os.path.abspath(script)).parent
    for candidate in (folder, *folder.parents):
        if any((base / "lightly" / "__init__.py").is_file() for base in (candidate, candidate / "src")):
            return True
        if (candidate / ".git").exists():
            return False
    return False


def find(script: Path) -> Pin | None:
    """The lightly requirement nearest to `script`, or None; PinError when a project file cannot be read."""
    folder = Path(os.path.abspath(script)).parent
    while True:
        pin = _pin_in(folder)
        if pin is not None or (folder / ".git").exists() or folder.parent == folder:
            return pin
        folder = folder.parent


def _pin_in(folder: Path) -> Pin | None:
    for name in ("uv.lock", "poetry.lock"):
        if (folder / name).is_file() and (version := _locked(folder / name)):
            return Pin(f"=={version}", folder / name)
    for file in [*sorted(folder.glob("requirements*.txt")), folder / "pyproject.toml"]:
        if file.is_file():
            specs = list(_requirements(file) if file.suffix == ".txt" else _pyproject(file))
            if specs:
                return _combined(specs, file)
    return None


def _combined(specs: list, file: Path) -> Pin:
    """Every requirement of the file must hold; an unknown one (a URL) makes the whole pin unknown."""
    if any(spec is None for spec in specs):
        return Pin("", file, unknown=True)
    return Pin(",".join(s for s in specs if s), file)


def _read(file: Path) -> str:
    from dino_guard.findings import UnreadableInput
    from dino_guard.setupfile.loader import read_bounded

    try:
        raw = read_bounded(file, LIMITS.get(file.name, LIMIT), "a project file", "is it a real project file?")
        return raw.decode("utf-8-sig")
    except UnreadableInput as exc:
        raise PinError(str(exc)) from None
    except UnicodeDecodeError:
        raise PinError(f"{file}: not UTF-8 text") from None


def _toml(file: Path) -> dict:
    from dino_guard.setupfile.loader import tomllib

    try:
        return tomllib.loads(_read(file))
    except RecursionError:
        raise PinError(f"{file}: nested too deeply to read") from None
    except ValueError as exc:  # bad TOML, a 5000-digit integer
        raise PinError(f"{file}: not valid TOML ({str(exc).split('; use sys.')[0]})") from None


def _locked(file: Path) -> str | None:
    packages = _toml(file).get("package", [])
    if not isinstance(packages, list):
        raise PinError(f"{file}: `package` must be a list of tables")
    version = next((p.get("version") for p in packages if isinstance(p, dict) and p.get("name") == "lightly"), None)
    if version is not None and not (isinstance(version, str) and _CLAUSE.fullmatch(version)):
        raise PinError(f"{file}: lightly's version {_short(version)} is not a version")
    return version


def _requirements(file: Path) -> Iterator[str | None]:
    lines = _read(file).replace("\\\n", " ").splitlines()  # a `\` continues the line (--hash options follow)
    for line in lines:
        spec = _requirement(line.split(" #")[0], file)
        if spec != "-":
            yield spec


def _requirement(text: str, file: Path) -> str | None:
    """The PEP 440 specifier of a `lightly...` requirement; None: a URL of unknown version; "-": not lightly."""
    match = _NAME.match(text)
    if not match:
        return "-"
    rest = re.split(r"\s--?[a-z]", " " + match["rest"].split(";")[0])[0].strip()  # options: --hash=..., -e
    if rest.startswith("@"):
        url = _URL_VERSION.search(rest.split("#")[0].rstrip("/").removesuffix(".git"))
        return f"=={url['version']}" if url else None
    return _checked(rest.replace(" ", ""), file)


def _checked(spec: str, file: Path) -> str:
    """`spec` if every clause is a version comparison, else PinError naming it."""
    if spec and not all(_CLAUSE.fullmatch(clause) for part in spec.split("|")
                    for clause in part.split(",") if clause):
        raise PinError(f"{file}: `lightly {_short(spec)}` is not a version specifier (e.g. lightly==1.5.0)")
    return spec


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:40] + "..."


def _pyproject(file: Path) -> Iterator[str | None]:
    data = _toml(file)
    project = _table(data, "project", file)
    requirements = _strings(project.get("dependencies", []), file, "[project] dependencies")
    for name, extra in _table(project, "optional-dependencies", file).items():
        requirements += _strings(extra, file, f"[project.optional-dependencies] {name}")
    for name, group in _table(data, "dependency-groups", file).items():  # PEP 735
        requirements += _strings(group, file, f"[dependency-groups] {name}", tables=True)
    for requirement in requirements:
        if (spec := _requirement(requirement, file)) != "-":
            yield spec
    poetry = _table(_table(data, "tool", file), "poetry", file)
    groups = [_table(poetry, "dependencies", file), _table(poetry, "dev-dependencies", file)]
    groups += [_table(g, "dependencies", file) for g in _table(poetry, "group", file).values() if isinstance(g, dict)]
    for group in groups:
        if "lightly" in group:
            yield _poetry_constraint(group["lightly"], file)


def _table(data: dict, key: str, file: Path) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise PinError(f"{file}: `{key}` must be a table")
    return value


def _strings(value, file: Path, where: str, tables: bool = False) -> list:
    """A list of requirement strings (a PEP 735 group may also include other groups: those tables are skipped)."""
    if not isinstance(value, list) or not all(isinstance(v, str) or (tables and isinstance(v, dict)) for v in value):
        raise PinError(f"{file}: {where} must be a list of requirement strings")
    return [v for v in value if isinstance(v, str)]


def _poetry_constraint(value, file: Path) -> str | None:
    """Poetry's `lightly = "^1.4"`, `{version = ...}`, `{git = ..., tag = "v1.5.0"}` or a list of those
    (alternatives by Python version or platform: any of them may be the one installed)."""
    if isinstance(value, list):
        specs = [_poetry_constraint(v, file) for v in value]
        return None if None in specs or not specs else "|".join(specs) if all(specs) else ""
    if isinstance(value, dict):
        if "version" in value:
            value = value["version"]
        elif isinstance(value.get("tag") or value.get("rev"), str):
            url = _URL_VERSION.search("@" + (value.get("tag") or value.get("rev")))
            return f"=={url['version']}" if url else None
        else:
            return None  # a path or URL dependency: its version is not written here
    if not isinstance(value, str):
        raise PinError(f"{file}: [tool.poetry] lightly must be a version string, e.g. lightly = \"^1.5\"")
    return _checked(_poetry(value.replace(" ", ""), file), file)


def _poetry(spec: str, file: Path) -> str:
    """Poetry's ^, ~ and bare versions as PEP 440 clauses."""
    if spec in ("", "*"):
        return ""
    if spec[0] in "^~" and not spec.startswith("~="):
        parts = [int(p) for p in re.findall(r"\d{1,9}", spec)]
        if not parts or not _CLAUSE.fullmatch(spec[1:]):
            raise PinError(f"{file}: [tool.poetry] lightly = {_short(spec)!r} is not a version constraint")
        if spec[0] == "^":
            bump = next((i for i, p in enumerate(parts) if p), len(parts) - 1)
        else:
            bump = min(1, len(parts) - 1)
        upper = parts[:bump] + [parts[bump] + 1]
        return f">={spec[1:]},<{'.'.join(map(str, upper))}"
    return spec if spec[0] in "<>=!~" else f"=={spec}"


def satisfies(version: str, spec: str) -> bool:
    """`version` meets every comma-separated clause of one of the "|"-separated alternatives of `spec`."""
    return any(_meets(version, alternative) for alternative in spec.split("|"))


def _meets(version: str, spec: str) -> bool:
    """`version` meets every comma-separated clause of `spec` (==, !=, >=, <=, >, <, ~=, ==X.*)."""
    key = rel.version_key(version)
    for clause in filter(None, spec.split(",")):
        op, target = re.match(r"(===|==|!=|>=|<=|~=|>|<)?(.*)", clause).groups()
        op = op or "=="
        if target.endswith(".*"):
            prefix = rel.version_key(target[:-2])
            ok = (key[: len(prefix)] == prefix) == (op == "==")
        else:
            want = rel.version_key(target)
            width = max(len(key), len(want))
            a, b = key + (0,) * (width - len(key)), want + (0,) * (width - len(want))
            ok = {"==": a == b, "===": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b,
                  "~=": a >= b and key[: len(want) - 1] == want[:-1]}[op]
        if not ok:
            return False
    return True


def judge(pin: Pin | None) -> Judge:
    """The described release(s) to judge a script against, given its project's pin."""
    if pin is not None and pin.unknown:
        why = f"{pin.source.name} installs lightly from a URL or path of unknown version"
        return Judge((rel.newest(),), False, why)
    if pin is None or not pin.spec:
        where = f"{pin.source.name} does not pin a version" if pin else "no lightly pin next to or above the script"
        return Judge((rel.newest(),), True, f"the newest release dino-guard knows; {where}")
    chosen = [v for v in rel.published() if satisfies(v, pin.spec)]
    if not chosen:
        return Judge((rel.newest(),), False, f"no release meets `lightly{pin.spec}` in {pin.source.name}")
    version = chosen[-1]
    why = f"`lightly{pin.spec}` in {pin.source.name}"
    if version in rel.releases():
        return Judge((version,), True, why)
    key = rel.version_key(version)
    below = [r for r in rel.releases() if rel.version_key(r) < key][-1:]
    above = [r for r in rel.releases() if rel.version_key(r) > key][:1]
    return Judge(tuple(below + above), False, f"the releases dino-guard knows around {version}, {why}")
