"""Cold-process speed of `dino-guard check` vs check-jsonschema.

Both validate the same 20 setup files; check-jsonschema only checks shape
against the exported JSON Schema, dino-guard also runs every rule. Each tool
runs as a fresh process (as pre-commit runs it), interleaved, REPEATS times;
the medians and their ratio (wall and CPU time) are printed and written as JSON.
Both run from the repository root (as the hook does, next to a pyproject.toml).

    .venv/bin/python bench/check/bench_check.py [--repeats 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# As an installed tool runs: bytecode cached (pip compiles it at install; with PYTHONDONTWRITEBYTECODE set,
# an editable install's modules would be compiled from source on every run while check-jsonschema's are not).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


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


def time_command(command: list[str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one run: CPU time is steadier on a shared machine."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=ENV)
    _, _, usage = os.wait4(process.pid, 0)
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


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
        compileall.compile_dir(REPO / "dino_guard", quiet=1)
        for command in commands.values():  # warm the OS file cache once
            time_command(command)
        wall: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                seconds, cpu_seconds = time_command(command)
                wall[name].append(seconds)
                cpu[name].append(cpu_seconds)
    result = {name: {"median_s": statistics.median(wall[name]), "min_s": min(wall[name]),
                     "median_cpu_s": statistics.median(cpu[name])} for name in commands}
    ours, theirs = result["dino-guard check"], result["check-jsonschema"]
    result["ratio_dino_guard_over_check_jsonschema"] = ours["median_s"] / theirs["median_s"]
    result["cpu_ratio_dino_guard_over_check_jsonschema"] = ours["median_cpu_s"] / theirs["median_cpu_s"]
    result["load_average"] = os.getloadavg()[0]
    result["files"] = 20
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
