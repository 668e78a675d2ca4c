"""Write dino_guard/data/lightly_api.json: what each lightly release defines.

For every release given (a wheel file, or the installed package folder),
records the top-level names of each public lightly module and the
constructor signatures the rules read (DINOProjectionHead, DINOLoss,
DINOTransform, DINOCollateFunction, and DINOv2's DINOv2ProjectionHead,
IBOTPatchLoss, KoLeoLoss, MaskedVisionTransformerTIMM). Sources are read with `ast`, never
imported, so any release can be described from its wheel without installing
it. `dino-guard check` then judges a script against the lightly release its
project pins (or the newest one here) whether or not lightly is installed.

    pip download lightly==1.4.26 --no-deps -d /tmp/lw     # for each release
    pip index versions lightly | sed -n 2p > /tmp/lw/published.txt
    python scripts/gen_lightly_api.py /tmp/lw/*.whl --published /tmp/lw/published.txt

The published list ("Available versions: 1.6.0, 1.5.26, ...") tells which
release `pip install "lightly>=1.4,<1.5"` resolves to; a pin that resolves
to a release not described here is judged against its nearest neighbours.

tests/test_lightly_releases.py (slow) checks that the entry for the
installed lightly equals what this script reads from it.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from dino_guard.sources.releases.catalog import version_key  # noqa: E402  (the repository's own package)

OUT = REPO / "dino_guard" / "data" / "lightly_api.json"
# Generated REST-client code: thousands of modules no training script imports. Any name may exist there.
OPAQUE = ("lightly.openapi_generated",)
SIGNATURES = ("DINOProjectionHead", "DINOLoss", "DINOTransform", "DINOCollateFunction",
              "DINOv2ProjectionHead", "IBOTPatchLoss", "KoLeoLoss", "MaskedVisionTransformerTIMM")


def wheel_sources(wheel: Path) -> tuple[str, dict[str, str]]:
    """(version, {"lightly/loss/__init__.py": source}) of a lightly wheel."""
    version = re.match(r"lightly-([^-]+)-", wheel.name).group(1)
    with zipfile.ZipFile(wheel) as archive:
        files = {n: archive.read(n).decode("utf-8", "replace") for n in archive.namelist()
                 if n.startswith("lightly/") and n.endswith(".py")}
    return version, files


def folder_sources(package: Path, version: str) -> tuple[str, dict[str, str]]:
    """(version, sources) of an installed lightly package folder."""
    files = {str(p.relative_to(package.parent)): p.read_text(encoding="utf-8", errors="replace")
             for p in package.rglob("*.py") if "__pycache__" not in p.parts}
    return version, files


def _module_of(file: str) -> str:
    parts = file[:-3].split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _opaque(module: str) -> bool:
    return any(module == o or module.startswith(o + ".") for o in OPAQUE)


class Release:
    """The modules of one release and the names each defines at top level."""

    def __init__(self, files: dict[str, str]):
        self.files = {_module_of(f): (f, text) for f, text in files.items()}
        self._names: dict[str, frozenset | None] = {}

    def modules(self) -> list[str]:
        return sorted(m for m in self.files if not _opaque(m) and not any(p.startswith("_") for p in m.split(".")[1:]))

    def names(self, module: str, seen: frozenset = frozenset()) -> frozenset | None:
        """Top-level names of `module` (star imports followed), None if any name may exist."""
        if module not in self._names:
            self._names[module] = self._read(module, seen | {module})
        return self._names[module]

    def _read(self, module: str, seen: frozenset) -> frozenset | None:
        file, text = self.files[module]
        try:
            tree = ast.parse(text)
        except SyntaxError:
            return None
        names = set()
        if file.endswith("__init__.py"):
            names.update(m.rsplit(".", 1)[1] for m in self.files if m.rsplit(".", 1)[0] == module and "." in m)
        for node in _top_level(tree.body):
            found = self._names_of(node, module, file, seen)
            if found is None:
                return None
            names.update(found)
        return frozenset(names)

    def _names_of(self, node: ast.AST, module: str, file: str, seen: frozenset) -> set | None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return None if node.name == "__getattr__" else {node.name}
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        if isinstance(node, ast.Import):
            return {(a.asname or a.name).split(".")[0] for a in node.names}
        if isinstance(node, ast.ImportFrom):
            names = {a.asname or a.name for a in node.names if a.name != "*"}
            if any(a.name == "*" for a in node.names):
                source = _absolute(module, file, node)
                if source not in self.files or source in seen:
                    return None  # a star import from outside lightly: anything may exist
                star = self.names(source, seen)
                if star is None:
                    return None
                names |= {n for n in star if not n.startswith("_")}
            return names
        return set()

    def signature(self, cls: str) -> list | None:
        """[[argument, default], ...] of `cls.__init__` in the module that defines it (None: not in this release)."""
        for module in self.modules():
            file, text = self.files[module]
            if f"class {cls}" not in text:
                continue
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ClassDef) and node.name == cls:
                    init = next((n for n in node.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
                    return _arguments(init) if init else []
        return None


def _absolute(module: str, file: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if file.endswith("__init__.py") else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _top_level(body: list):
    """Module-level statements, including those inside if/try/with blocks."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for attr in ("body", "orelse", "finalbody"):
                yield from _top_level(getattr(node, attr, None) or [])
            for handler in getattr(node, "handlers", []):
                yield from _top_level(handler.body)


def _arguments(init: ast.FunctionDef) -> list:
    params = init.args.args[1:]
    defaults = [None] * (len(params) - len(init.args.defaults)) + list(init.args.defaults)
    return [[p.arg, _literal(d)] for p, d in zip(params, defaults, strict=True)]


def _literal(node: ast.AST | None):
    """A default as JSON: its literal value; None where there is none or it is an expression."""
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except ValueError:
        return None
    return list(value) if isinstance(value, tuple) else value


def describe(files: dict[str, str]) -> dict:
    release = Release(files)
    modules = {m: (sorted(n) if (n := release.names(m)) is not None else None) for m in release.modules()}
    return {"modules": modules, "signatures": {cls: release.signature(cls) for cls in SIGNATURES}}


def dumps(document: dict) -> str:
    """JSON with one line per module, so that a regenerated file diffs by module."""
    def one(value) -> str:
        return json.dumps(value, separators=(",", ":"))

    lines = ["{", f'"generated_by":{one(document["generated_by"])},', f'"opaque":{one(document["opaque"])},',
             f'"published":{one(document["published"])},', '"releases":{']
    for i, (version, release) in enumerate(document["releases"].items()):
        lines.append(f'{one(version)}:{{"signatures":{one(release["signatures"])},"modules":{{')
        modules = list(release["modules"].items())
        lines += [f"{one(m)}:{one(n)}{',' if j < len(modules) - 1 else ''}" for j, (m, n) in enumerate(modules)]
        lines.append("}}" + ("," if i < len(document["releases"]) - 1 else ""))
    return "\n".join(lines + ["}}"]) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path, help="lightly wheels or installed lightly package folders")
    parser.add_argument("--published", type=Path, required=True, help="`pip index versions lightly` output")
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args(argv)
    releases = {}
    for source in args.sources:
        if source.is_dir():
            from importlib.metadata import version as installed_version

            version, files = folder_sources(source, installed_version("lightly"))
        else:
            version, files = wheel_sources(source)
        releases[version] = describe(files)
    published = sorted(set(re.findall(r"\d+(?:\.\d+)+", args.published.read_text())) | set(releases), key=version_key)
    document = {"generated_by": "scripts/gen_lightly_api.py", "opaque": list(OPAQUE), "published": published,
                "releases": {v: releases[v] for v in sorted(releases, key=version_key)}}
    args.output.write_text(dumps(document))
    print(f"wrote {args.output} ({len(releases)} releases: {', '.join(document['releases'])})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
