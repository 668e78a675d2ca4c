"""Which lightly version a checked project pins, and which described release that means.

Looked for next to the script and then in each folder above it, up to the
folder that holds `.git` (the project's root): uv.lock and poetry.lock
(exact versions), requirements*.txt, pyproject.toml ([project] dependencies
and optional dependencies, [tool.poetry] dependencies). The nearest folder
that mentions lightly wins; in it, a lock file wins over a requirement.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dino_guard.sources.releases import catalog as rel

_REQUIREMENT = re.compile(r"^\s*lightly\s*(?:\[[^\]]*\])?\s*(?P<spec>(?:[<>=!~^][^;#]*)?)\s*(?:[;#].*)?$", re.I)


@dataclass(frozen=True)
class Pin:
    spec: str  # a PEP 440 / poetry specifier ("==1.4.7", ">=1.4,<1.5", "^1.4"); "" for any version
    source: Path


@dataclass(frozen=True)
class Judge:
    """The release(s) a script is judged against, and how sure that is."""

    releases: tuple  # one described release, or the two around an undescribed version
    certain: bool  # the version the project gets is described here exactly
    why: str  # where the version comes from, for the message

    def describe(self) -> str:
        return f"lightly {' and '.join(self.releases)} ({self.why})"


def find(script: Path) -> Pin | None:
    """The lightly requirement nearest to `script`, or None."""
    folder = script.resolve().parent
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
                return Pin(",".join(s for s in specs if s), file)
    return None


def _toml(file: Path) -> dict:
    from dino_guard.setupfile.loader import tomllib

    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return {}


def _locked(file: Path) -> str | None:
    packages = _toml(file).get("package", [])
    return next((p.get("version") for p in packages if isinstance(p, dict) and p.get("name") == "lightly"), None)


def _requirements(file: Path) -> Iterator[str]:
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return
    for line in lines:
        if match := _REQUIREMENT.match(line):
            yield match["spec"].replace(" ", "")


def _pyproject(file: Path) -> Iterator[str]:
    data = _toml(file)
    project = data.get("project", {}) if isinstance(data.get("project"), dict) else {}
    requirements = list(project.get("dependencies", []))
    for extra in (project.get("optional-dependencies") or {}).values():
        requirements += list(extra)
    for requirement in requirements:
        if isinstance(requirement, str) and (match := _REQUIREMENT.match(requirement)):
            yield match["spec"].replace(" ", "")
    poetry = data.get("tool", {}).get("poetry", {}) if isinstance(data.get("tool"), dict) else {}
    groups = [poetry.get("dependencies", {})] + [g.get("dependencies", {}) for g in poetry.get("group", {}).values()]
    for group in groups:
        value = group.get("lightly") if isinstance(group, dict) else None
        value = value.get("version") if isinstance(value, dict) else value
        if isinstance(value, str):
            yield _poetry(value.replace(" ", ""))


def _poetry(spec: str) -> str:
    """Poetry's ^, ~ and bare versions as PEP 440 clauses."""
    if spec in ("", "*"):
        return ""
    if spec[0] in "^~" and not spec.startswith("~="):
        parts = [int(p) for p in re.findall(r"\d+", spec)]
        if spec[0] == "^":
            bump = next((i for i, p in enumerate(parts) if p), len(parts) - 1)
        else:
            bump = min(1, len(parts) - 1)
        upper = parts[:bump] + [parts[bump] + 1]
        return f">={spec[1:]},<{'.'.join(map(str, upper))}"
    return spec if spec[0] in "<>=!~" else f"=={spec}"


def satisfies(version: str, spec: str) -> bool:
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
