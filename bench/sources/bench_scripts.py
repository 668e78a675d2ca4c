"""Throughput of the Python script reader, in files per second.

Three workloads, each timed in-process (the reader's own cost, without the
Python start-up a pre-commit run pays once):

- skip: every .py of the standard library and the installed torch through
  load_python; nearly all stop at the lightly pre-filter (a byte search).
- lightly: the script fixtures and examples (all import lightly) through
  load_python + every rule (check_loaded), REPEATS rounds.
- full: a sample of stdlib/torch files through the whole interpreter as if
  they imported lightly (what a large lightly-importing file costs).

    .venv/bin/python bench/sources/bench_scripts.py [--repeats 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests" / "sources"))

from test_robustness import _python_files  # noqa: E402

from dino_guard.check.engine import Options, check_loaded  # noqa: E402
from dino_guard.sources.python import analyse, load_python  # noqa: E402


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def bench_skip(files: list[Path]) -> dict:
    start = time.perf_counter()
    analysed = 0
    for path in files:
        try:
            analysed += load_python(path).setup is not None
        except Exception:  # an unreadable file is still one file handled
            pass
    seconds = time.perf_counter() - start
    return {"files": len(files), "seconds": round(seconds, 3), "files_per_s": round(rate(len(files), seconds))}


def bench_lightly(scripts: list[Path], repeats: int) -> dict:
    options = Options(count_images=False)
    start = time.perf_counter()
    for _ in range(repeats):
        for path in scripts:
            check_loaded(load_python(path), options)
    seconds = time.perf_counter() - start
    count = len(scripts) * repeats
    return {"files": count, "seconds": round(seconds, 3), "files_per_s": round(rate(count, seconds))}


def bench_full(files: list[Path], sample: int) -> dict:
    chosen = random.Random(0).sample(files, min(sample, len(files)))
    texts = []
    for path in chosen:
        try:
            texts.append((str(path), path.read_text(encoding="utf-8")))
        except (UnicodeDecodeError, OSError):
            continue
    start = time.perf_counter()
    for name, text in texts:
        analyse(name, text, require_lightly=False)
    seconds = time.perf_counter() - start
    lines = sum(t.count("\n") for _, t in texts)
    return {"files": len(texts), "lines": lines, "seconds": round(seconds, 3),
            "files_per_s": round(rate(len(texts), seconds)), "lines_per_s": round(rate(lines, seconds))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    files = _python_files()
    scripts = (sorted((REPO / "tests" / "sources" / "fixtures").glob("*.py"))
               + sorted((REPO / "examples" / "scripts").glob("*.py")))
    bench_skip(files[:200])  # warm the file cache and imports
    results = {
        "python": platform.python_version(),
        "skip_non_lightly": bench_skip(files),
        "lightly_scripts": bench_lightly(scripts, args.repeats),
        "full_analysis_non_lightly": bench_full(files, args.sample),
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
