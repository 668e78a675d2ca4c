"""What the script reader says about a folder of scripts, and how fast it reads Python.

Two measurements for issue 11 (script reader on real code):

- scripts: every ``*.py`` under FOLDER goes through the reader
  (``dino_guard.sources.python.load_python``) and through the engine as
  ``dino-guard check`` runs it (``dino_guard.check.inputs.check_path``). Per file it
  records the findings (code, severity, line, message) and what the reader
  determined: backbone, head input_dim, transform, per-device batch size and
  epochs, each ``known`` (with its value) or unknown. A reader exception is
  counted as a crash, never raised.
- throughput (``--throughput``): every ``.py`` of the running Python's standard
  library and of the installed torch through ``load_python`` (files/s, lines/s;
  nearly all stop at the lightly pre-filter), then a sample of them through the
  whole interpreter as if they imported lightly (``analyse(require_lightly=False)``).
  Crashes are counted in both passes.

Run from the repository root (torch is never imported, its files are only read):

    PYTHONPATH=. .venv/bin/python bench/sources/measure.py /work/public_scripts \\
        --json bench/sources/public_before.json --throughput

``--sample 0`` sends every stdlib/torch file through the whole interpreter
(about a minute on two shared cores); the default is a fixed 500-file sample.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from dino_guard.check.engine import Options  # noqa: E402
from dino_guard.check.inputs import check_path  # noqa: E402
from dino_guard.findings import UnreadableInput  # noqa: E402
from dino_guard.sources.python import analyse, load_python  # noqa: E402

# what "determined" means per reported fact: the dotted Setup fields the reader
# marks as known (any one of them suffices) and how to show the value
FACTS = {
    "backbone": ("model.backbone", "model.backbone.name"),
    "head_input_dim": ("model.head.input_dim",),
    "transform": ("transform",),
    "batch_size": ("train.batch_size",),
    "epochs": ("train.epochs",),
}


def python_files() -> list[Path]:
    """The standard library's and torch's Python files (torch located without importing it)."""
    import importlib.util
    import sysconfig

    roots = [Path(sysconfig.get_paths()["stdlib"])]
    try:
        spec = importlib.util.find_spec("torch")
        if spec and spec.submodule_search_locations:
            roots.append(Path(list(spec.submodule_search_locations)[0]))
    except (ImportError, ValueError):
        pass
    files = []
    for root in roots:
        files.extend(p for p in root.rglob("*.py") if "site-packages" not in p.relative_to(root).parts)
    return sorted(files)


def _value(setup: Any, fact: str) -> Any:
    if setup is None:
        return None
    if fact == "backbone":
        backbone = setup.model.backbone
        return backbone.name if backbone.name else getattr(backbone, "feature_dim", None)
    if fact == "head_input_dim":
        return setup.model.head.input_dim if setup.model.head else None
    if fact == "transform":
        transform = setup.transform
        if transform is None:
            return "none (no DINO transform)"
        return {k: v for k, v in transform.model_dump().items()
                if k in ("global_crop_size", "local_crop_size", "n_local_views")}
    if fact == "batch_size":
        return setup.train.batch_size
    return setup.train.epochs


def determined(loaded: Any) -> dict:
    """Each fact of FACTS: {"known": bool, "value": ...} from the Loaded's Setup and known fields."""
    known = loaded.known if loaded.known is not None else frozenset()
    result = {}
    for fact, fields in FACTS.items():
        is_known = loaded.setup is not None and any(f in known for f in fields)
        result[fact] = {"known": is_known, "value": _value(loaded.setup, fact) if is_known else None}
    return result


def _crash(path: Path, exc: BaseException) -> dict:
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"
    return {"file": path.name, "error": f"{type(exc).__name__}: {exc}", "at": where}


def measure_file(path: Path, options: Options) -> dict:
    record: dict = {"file": path.name, "findings": [], "determined": {}, "crash": None}
    try:
        loaded = load_python(path)
        findings = check_path(path, options)
    except UnreadableInput as exc:
        record["unreadable"] = str(exc)
        return record
    except Exception as exc:  # a crash is what we count, not what stops the measurement
        record["crash"] = _crash(path, exc)
        return record
    record["findings"] = [
        {"code": f.code, "severity": f.severity.value, "line": f.line, "message": f.message} for f in findings
    ]
    record["read_as_dino"] = loaded.setup is not None
    record["determined"] = determined(loaded)
    return record


def measure_scripts(folder: Path) -> dict:
    options = Options(count_images=False)
    files = sorted(folder.rglob("*.py"))
    start = time.perf_counter()
    per_file = [measure_file(path, options) for path in files]
    seconds = time.perf_counter() - start
    findings = [f for r in per_file for f in r["findings"]]
    coverage = {fact: sum(1 for r in per_file if r["determined"].get(fact, {}).get("known")) for fact in FACTS}
    return {
        "folder": str(folder),
        "files": len(files),
        "read_as_dino": sum(1 for r in per_file if r.get("read_as_dino")),
        "crashes": [r["crash"] for r in per_file if r["crash"]],
        "findings": len(findings),
        "by_severity": dict(Counter(f["severity"] for f in findings)),
        "by_code": dict(sorted(Counter(f["code"] for f in findings).items())),
        "files_with_error": sum(1 for r in per_file if any(f["severity"] == "error" for f in r["findings"])),
        "coverage": coverage,
        "seconds": round(seconds, 3),  # load_python + check_path per file, both timed
        "files_per_s": _rate(len(files), seconds),
        "lines_per_s": _rate(_lines(files), seconds),
        "per_file": per_file,
    }


def _lines(paths: list[Path]) -> int:
    total = 0
    for path in paths:
        try:
            total += path.read_bytes().count(b"\n")
        except OSError:
            pass
    return total


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds) if seconds else float("inf")


def pass_load_python(files: list[Path], repeats: int) -> dict:
    """load_python over every file; the median of `repeats` timed rounds."""
    crashes: list = []
    times = []
    for round_ in range(repeats):
        start = time.perf_counter()
        for path in files:
            try:
                load_python(path)
            except UnreadableInput:
                pass
            except Exception as exc:
                if round_ == 0:
                    crashes.append(_crash(path, exc))
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    lines = _lines(files)
    return {"files": len(files), "lines": lines, "seconds": round(seconds, 3), "rounds": [round(t, 3) for t in times],
            "files_per_s": _rate(len(files), seconds), "lines_per_s": _rate(lines, seconds), "crashes": crashes}


def pass_full_interpreter(files: list[Path], sample: int) -> dict:
    """The whole analysis (interpreter included) as if each file imported lightly."""
    chosen = files if sample <= 0 else random.Random(0).sample(files, min(sample, len(files)))
    texts = []
    for path in chosen:
        try:
            texts.append((path, path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, OSError):
            continue
    crashes = []
    start = time.perf_counter()
    for path, text in texts:
        try:
            analyse(str(path), text, require_lightly=False)
        except Exception as exc:
            crashes.append(_crash(path, exc))
    seconds = time.perf_counter() - start
    lines = sum(t.count("\n") for _, t in texts)
    return {"files": len(texts), "lines": lines, "seconds": round(seconds, 3),
            "files_per_s": _rate(len(texts), seconds), "lines_per_s": _rate(lines, seconds), "crashes": crashes}


def measure_throughput(sample: int, repeats: int) -> dict:
    files = python_files()  # the file list of tests/sources/test_robustness.py
    pass_load_python(files[:200], 1)  # warm the file cache and the lazy imports
    return {"load_python_all": pass_load_python(files, repeats),
            "full_interpreter": pass_full_interpreter(files, sample)}


def summary(results: dict) -> str:
    lines = []
    scripts = results.get("scripts")
    if scripts:
        cov = scripts["coverage"]
        lines.append(f"{scripts['files']} files, {scripts['read_as_dino']} read as DINO scripts, "
                     f"{len(scripts['crashes'])} crashes, {scripts['findings']} findings {scripts['by_severity']}, "
                     f"{scripts['files_with_error']} files with an error; "
                     f"{scripts['files_per_s']} files/s, {scripts['lines_per_s']} lines/s")
        lines.append("determined: " + ", ".join(f"{k} {v}/{scripts['files']}" for k, v in cov.items()))
        for record in scripts["per_file"]:
            for f in record["findings"]:
                lines.append(f"  {record['file']}:{f['line']} {f['code']} {f['severity']}: {f['message']}")
    throughput = results.get("throughput")
    if throughput:
        for name, data in throughput.items():
            lines.append(f"{name}: {data['files']} files, {data['lines']} lines in {data['seconds']} s = "
                         f"{data['files_per_s']} files/s, {data['lines_per_s']} lines/s, "
                         f"{len(data['crashes'])} crashes")
    return "\n".join(lines)


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", help="folder of scripts to read")
    parser.add_argument("--json", type=Path, help="write the full results here")
    parser.add_argument("--throughput", action="store_true", help="also time the reader on the stdlib and torch")
    parser.add_argument("--sample", type=int, default=500,
                        help="stdlib/torch files through the whole interpreter (0: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds of the load_python pass (median)")
    args = parser.parse_args(argv)
    if args.folder is None and not args.throughput:
        parser.error("give a FOLDER, --throughput, or both")
    results: dict = {"python": platform.python_version(), "command": " ".join(sys.argv)}
    if args.folder is not None:
        if not args.folder.is_dir():
            parser.error(f"{args.folder}: not a folder")
        results["scripts"] = measure_scripts(args.folder)
    if args.throughput:
        results["throughput"] = measure_throughput(args.sample, args.repeats)
    print(summary(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
