"""Cold-process speed of `dino-guard check` vs check-jsonschema.

Both validate the same 20 setup files; check-jsonschema only checks shape
against the exported JSON Schema, dino-guard also runs every rule. Each tool
runs as a fresh process (as pre-commit runs it), interleaved, REPEATS times;
the medians and their ratio are printed and written as JSON.

    .venv/bin/python bench/check/bench_check.py [--repeats 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def make_setups(folder: Path, count: int = 20) -> list[Path]:
    sources = (sorted((REPO / "examples").glob("*.dino.yaml"))
               + sorted((REPO / "examples" / "broken").glob("*.dino.yaml")))
    sources = [s for s in sources if "misspelt" not in s.name]  # keep every file schema-valid for both tools
    paths = []
    for index in range(count):
        target = folder / f"setup_{index:02d}.dino.yaml"
        shutil.copy(sources[index % len(sources)], target)
        paths.append(target)
    return paths


def time_command(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = [str(p) for p in make_setups(folder)]
        schema = folder / "schema.json"
        subprocess.run([str(BIN / "dino-guard"), "schema", "-o", str(schema)], check=True)
        commands = {
            "dino-guard check": [str(BIN / "dino-guard"), "check", "--gpu", "H100-80GB", *files],
            "check-jsonschema": [str(BIN / "check-jsonschema"), "--schemafile", str(schema), *files],
        }
        for command in commands.values():  # warm the OS file cache once
            time_command(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                times[name].append(time_command(command))
    result = {name: {"median_s": statistics.median(t), "min_s": min(t)} for name, t in times.items()}
    result["ratio_dino_guard_over_check_jsonschema"] = (result["dino-guard check"]["median_s"]
                                                        / result["check-jsonschema"]["median_s"])
    result["files"] = 20
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
