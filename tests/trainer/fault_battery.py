"""Fault battery for the trainer: kill -9 at random points and inside the checkpoint write, a full disk.

Run it as a process of its own:

    python -m tests.trainer.fault_battery OUT_DIR [--kills 20] [--in-write 9] [--disk-full 2] [--seed 0]

It prints one JSON object: per battery the number of cases and how many held.
The parent imports torch but runs no torch op, and forks one child per run,
so a run starts in about a second instead of ten seconds of imports and a
kill -9 hits only that run. A case holds when, after every fault, the run
folder has a loadable checkpoints/last.pt (or none, if the fault came before
the first one was written) and no partial temporary file after the next run,
and the resumed run ends with exit 0 and metrics (loss values step by step)
and weights equal to an uninterrupted run's.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

import matplotlib  # noqa: F401  (loss.png: imported before forking too)
import torch  # noqa: F401  (imported once here, before forking; no torch op runs in the parent)

from dino_guard.trainer import checkpoint, runfolder
from dino_guard.trainer.loop import Options, train
from tests.trainer.helpers import metrics, tiny_setup

STEPS = 6
LOGS: list = []  # [folder]: every run's log goes there, outside a tmpfs that may be full
LOG_ALIASES: dict = {}  # run folder -> the name its log takes instead (a second run into one folder)
SETUP = dict(train={"checkpoint_every_steps": 2}, data={"size": 64}, eval={"knn_max_images": 8})
WRITE_POINTS = ("bytes", "before_rename", "after_rename")


# -------------------------------------------------------------------- one run, in a forked child


def spawn(out: Path, resume: bool, fault: dict | None = None, max_steps: int = STEPS) -> int:
    """Fork a child that trains into `out`; returns its PID."""
    pid = os.fork()
    if pid:
        return pid
    code = 1
    log = open(log_path(out), "a")
    os.dup2(log.fileno(), 1)  # the progress lines too
    os.dup2(log.fileno(), 2)
    try:
        torch.set_num_threads(1)
        if fault:
            inject(fault)
        result = train(tiny_setup(**SETUP), Options(output_dir=out, max_steps=max_steps, resume=resume, device="cpu",
                                                    log=lambda s: print(s, file=log, flush=True)))
        code = result.exit_code
    except (checkpoint.CheckpointError, runfolder.RunFolderError, OSError) as exc:
        print(f"refused: {exc}", file=log, flush=True)
        code = 2
    except BaseException:
        traceback.print_exc(file=log)
    finally:
        log.flush()
        os._exit(code)


def log_path(out: Path) -> Path:
    return LOGS[0] / f"{LOG_ALIASES.get(out, out).name}.log"


def inject(fault: dict) -> None:
    """Make the child SIGKILL itself inside its `fault["save"]`-th checkpoint write, at `fault["where"]`."""
    calls = {"n": 0}
    real_save, real_publish = torch.save, checkpoint.publish

    def die():
        os.kill(os.getpid(), signal.SIGKILL)

    def save(obj, f):
        calls["n"] += 1
        if calls["n"] == fault["save"] and fault["where"] == "bytes":
            import io

            buf = io.BytesIO()
            real_save(obj, buf)
            data = buf.getvalue()
            f.write(data[: int(len(data) * fault["fraction"])])
            f.flush()
            die()
        real_save(obj, f)

    def publish(tmp, path):
        if calls["n"] == fault["save"] and fault["where"] == "before_rename":
            die()
        real_publish(tmp, path)
        if calls["n"] == fault["save"] and fault["where"] == "after_rename":
            die()

    checkpoint.torch.save = save
    checkpoint.publish = publish


def wait(pid: int, kill_after: float | None = None, limit: float = 300) -> int:
    """Exit code of the child (-9 when killed); SIGKILL it after `kill_after` seconds if still running."""
    t0 = time.time()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        elapsed = time.time() - t0
        if (kill_after is not None and elapsed >= kill_after) or elapsed > limit:
            os.kill(pid, signal.SIGKILL)
            return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        time.sleep(0.01)


# -------------------------------------------------------------------- what must hold


def state_after_fault(out: Path) -> str:
    """'' when the folder is sound after a fault, else what is wrong."""
    last = out / "checkpoints" / "last.pt"
    if not last.exists():
        return "" if not (out / "checkpoints").is_dir() or not list((out / "checkpoints").glob("*.pt")) else \
            "checkpoint files but no last.pt"
    try:
        checkpoint.load(last)
    except checkpoint.CheckpointError as exc:
        return f"last.pt not loadable: {exc}"
    return ""


def landed(out: Path, code: int) -> str:
    """Where a kill landed, for the report."""
    if code == 0:
        return "after the run ended"
    last = out / "checkpoints" / "last.pt"
    return (f"mid-run (last.pt at step {checkpoint.load(last)['step']})" if last.exists()
            else "before the first checkpoint")


def compare(out: Path, ref: Path, after_step: int = 0) -> str:
    """'' when `out` ends like the uninterrupted `ref`, else the first difference.

    `after_step`: compare only the metrics rows after it (rows before it were destroyed on purpose).
    """
    strays = [p.name for d in (out, out / "checkpoints") for p in d.iterdir() if runfolder.TEMP_NAME.match(p.name)]
    if strays:
        return f"stray temporary files {strays}"
    got, want = ([r for r in metrics(x) if r["step"] > after_step] for x in (out, ref))
    if got != want:
        steps = [(a.get("step"), a.get("loss"), b.get("loss")) for a, b in zip(got, want, strict=False) if a != b]
        return f"metrics differ ({len(got)} vs {len(want)} rows; first {steps[:1]})"
    a, b = checkpoint.load(out / "checkpoints" / "last.pt"), checkpoint.load(ref / "checkpoints" / "last.pt")
    for part in ("student", "teacher"):
        for name, value in b[part].items():
            if not torch.equal(value, a[part][name]):
                return f"{part}.{name} differs"
    return ""


def finish_case(out: Path, ref: Path, faults: list) -> dict:
    """Resume to the end after the faults; the case's record."""
    problems = [p for p in (state_after_fault(out),) if p]
    code = wait(spawn(out, resume=True))
    if code != 0:
        problems.append(f"resume exited {code}: {log_path(out).read_text()[-400:]}")
    elif not problems:
        problems = [p for p in (compare(out, ref),) if p]
    return {"case": out.name, "faults": faults, "holds": not problems, "problem": "; ".join(problems)}


# -------------------------------------------------------------------- the batteries


def kill_case(out: Path, ref: Path, rng: random.Random, duration: float) -> dict:
    """One or two kill -9 at random times (the second during the resumed run), then resume."""
    faults = []
    for attempt in range(rng.choice((1, 2))):
        delay = rng.uniform(0.05, duration)
        code = wait(spawn(out, resume=attempt > 0), kill_after=delay)
        faults.append(f"kill at {delay:.2f}s (exit {code}): {landed(out, code)}")
        problem = state_after_fault(out)
        if problem:
            return {"case": out.name, "faults": faults, "holds": False, "problem": problem}
    return finish_case(out, ref, faults)


def in_write_case(out: Path, ref: Path, rng: random.Random, where: str) -> dict:
    """kill -9 inside the n-th checkpoint write (mid-bytes, before or after the rename), then resume."""
    fault = {"save": rng.randint(1, STEPS // 2 + 1), "where": where, "fraction": rng.random()}
    code = wait(spawn(out, resume=False, fault=fault))
    return finish_case(out, ref, [f"kill in checkpoint write {fault} (exit {code}): {landed(out, code)}"])


def disk_full_case(out: Path, ref: Path, size_kib: int) -> dict:
    """Train on a tmpfs of `size_kib`: the disk fills mid-run; make room (remount larger), resume."""
    out.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(out)],
                             capture_output=True, text=True)
    if mounted.returncode:
        return {"case": out.name, "skipped": f"cannot mount a tmpfs: {mounted.stderr.strip()}"}
    try:
        run_dir = out / f"{out.name}-run"
        code = wait(spawn(run_dir, resume=False))
        log = log_path(run_dir).read_text()
        faults = [f"tmpfs {size_kib} KiB: exit {code}" + (" (No space left)" if "No space" in log else "")]
        subprocess.run(["mount", "-o", "remount,size=256m", str(out)], check=True)
        record = finish_case(run_dir, ref, faults)
        if code == 0:  # the disk never filled: the case tested nothing
            record.update(holds=False, problem=f"the run did not fill {size_kib} KiB")
        return record
    finally:
        subprocess.run(["umount", str(out)], capture_output=True)


def in_child(fn) -> None:
    """Run `fn` in a forked child (torch work stays out of the parent, which forks the runs)."""
    pid = os.fork()
    if pid == 0:
        try:
            fn()
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _seal(path: Path, **over) -> None:
    body = {k: v for k, v in checkpoint.load(path).items() if k not in ("format_version", "sha256")}
    body.update(over)
    torch.save({**body, "format_version": checkpoint.FORMAT_VERSION, "sha256": checkpoint.content_hash(body)}, path)


def _flip(path: Path, rng: random.Random) -> None:
    data = bytearray(path.read_bytes())
    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


DAMAGES = {
    "zero bytes": lambda p, rng: p.write_bytes(b""),
    "truncated at a random length": lambda p, rng: p.write_bytes(p.read_bytes()[: rng.randrange(1, p.stat().st_size)]),
    "one flipped bit at a random place": _flip,
    "a tensor": lambda p, rng: torch.save(torch.zeros(3), p),
    "a list": lambda p, rng: torch.save([1, 2, 3], p),
    "None": lambda p, rng: torch.save(None, p),
    "a field of the wrong type": lambda p, rng: _seal(p, optimizer=[0.1]),
    "a negative step": lambda p, rng: _seal(p, step=-4),
}


def damaged_case(out: Path, partial: Path, ref: Path, kind: str, rng: random.Random) -> dict:
    """A damaged last.pt: the resume refuses with one line naming it, or (a harmless flip) ends as `ref`."""
    shutil.copytree(partial, out)
    seed = rng.random()
    in_child(lambda: DAMAGES[kind](out / "checkpoints" / "last.pt", random.Random(seed)))
    code = wait(spawn(out, resume=True))
    log = log_path(out).read_text()
    refusals = [x for x in log.splitlines() if x.startswith("refused:")]
    if code == 2 and len(refusals) == 1 and "last.pt" in refusals[0] and "Traceback" not in log:
        return {"case": out.name, "faults": [kind], "holds": True, "outcome": "refused"}
    problem = compare(out, ref) if code == 0 else f"exit {code}: {log[-400:]}"
    return {"case": out.name, "faults": [kind], "holds": not problem, "outcome": "loaded intact", "problem": problem}


TEARS = {
    "garbage appended": lambda text: text + "\x00\x01 not json\n",
    "last line torn mid-row (disk full)": lambda text: text + '{"step": 5, "epoch": 0, "loss": 3.1',
    "foreign lines inside": lambda text: "\n".join(text.splitlines()[:2] + ['{"hello": 1}', "[1, 2]"]
                                                   + text.splitlines()[2:]) + "\n",
    "rows repeated": lambda text: text + "".join(x + "\n" for x in text.splitlines()[:2]),
    "rows of steps after the checkpoint": lambda text: text + '{"step": 5, "loss": 9.0}\n{"step": 6, "loss": 9.0}\n',
    "whole file replaced by binary junk": lambda text: "\ufffd\x00" * 50,
}


def torn_metrics_case(out: Path, partial: Path, ref: Path, kind: str) -> dict:
    """A damaged metrics.jsonl: the resume drops what is not a row of steps 1..4 and ends as `ref`."""
    shutil.copytree(partial, out)
    path = out / "metrics.jsonl"
    path.write_text(TEARS[kind](path.read_text()))
    code = wait(spawn(out, resume=True))
    log = log_path(out).read_text()
    lost = kind.startswith("whole file")
    problem = f"exit {code}: {log[-400:]}" if code else compare(out, ref, after_step=4 if lost else 0)
    if not problem and "metrics.jsonl" not in log:
        problem = "the resume did not say what it dropped"
    return {"case": out.name, "faults": [kind], "holds": not problem, "problem": problem}


def concurrent_case(out: Path, ref: Path) -> dict:
    """A second run into the folder of a running one exits 2 naming its PID; the first ends as `ref`."""
    first = spawn(out, resume=False)
    t0 = time.time()
    while not (out / "metrics.jsonl").exists() and time.time() - t0 < 120:  # the folder is claimed
        time.sleep(0.01)
    second = out.parent / f"{out.name}-second"
    second_code = wait(spawn_into(out, second))
    first_code = wait(first)
    log = log_path(second).read_text()
    problems = []
    if second_code != 2 or f"in use by another dino-guard train (PID {first})" not in log:
        problems.append(f"second run exited {second_code}: {log[-300:]}")
    problems += [f"first run exited {first_code}"] if first_code else [p for p in (compare(out, ref),) if p]
    return {"case": out.name, "faults": ["second run while the first trains"], "holds": not problems,
            "problem": "; ".join(problems)}


def spawn_into(folder: Path, name: Path) -> int:
    """A resume into `folder` whose log is named after `name` (two runs, one folder, two logs)."""
    LOG_ALIASES[folder] = name
    try:
        return spawn(folder, resume=True)
    finally:
        del LOG_ALIASES[folder]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("root", type=Path)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--in-write", type=int, default=9)
    ap.add_argument("--disk-full", type=int, default=2)
    ap.add_argument("--damaged", type=int, default=2, help="cases per kind of damaged checkpoint")
    ap.add_argument("--torn", type=int, default=1, help="cases per kind of damaged metrics.jsonl")
    ap.add_argument("--concurrent", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    args.root.mkdir(parents=True, exist_ok=True)
    ref = args.root / "reference"
    LOGS[:] = [args.root]
    t0 = time.time()
    assert wait(spawn(ref, resume=False)) == 0, log_path(ref).read_text()
    duration = time.time() - t0
    size = (ref / "checkpoints" / "last.pt").stat().st_size
    partial = args.root / "partial"  # stopped after 4 of the 6 steps: last.pt at step 4
    if args.damaged or args.torn:
        assert wait(spawn(partial, resume=False, max_steps=4)) == 0, log_path(partial).read_text()
    cases = {
        "kill -9 at a random time": [kill_case(args.root / f"kill{i}", ref, rng, duration) for i in range(args.kills)],
        "kill -9 inside the checkpoint write": [
            in_write_case(args.root / f"write{i}", ref, rng, WRITE_POINTS[i % 3]) for i in range(args.in_write)],
        "disk full (tmpfs)": [disk_full_case(args.root / f"full{i}", ref, int(size * (1.5 + 0.45 * (i % 2))) // 1024)
                              for i in range(args.disk_full)],
        "damaged last.pt": [damaged_case(args.root / f"damaged{i}-{j}", partial, ref, kind, rng)
                            for i, kind in enumerate(DAMAGES) for j in range(args.damaged)],
        "torn or foreign metrics.jsonl": [torn_metrics_case(args.root / f"torn{i}-{j}", partial, ref, kind)
                                          for i, kind in enumerate(TEARS) for j in range(args.torn)],
        "a second run into a running run's folder": [concurrent_case(args.root / f"concurrent{i}", ref)
                                                     for i in range(args.concurrent)],
    }
    report = {name: {"cases": len([c for c in got if "skipped" not in c]),
                     "hold": sum(bool(c.get("holds")) for c in got),
                     "skipped": [c["skipped"] for c in got if "skipped" in c],
                     "failures": [c for c in got if "skipped" not in c and not c["holds"]]}
              for name, got in cases.items()}
    report["kills landed"] = dict(collections.Counter(
        f.rsplit("): ", 1)[1].split(" (")[0]
        for c in cases["kill -9 at a random time"] + cases["kill -9 inside the checkpoint write"]
        for f in c["faults"] if "): " in f))
    report["damaged last.pt"]["outcomes"] = dict(collections.Counter(
        c.get("outcome") for c in cases["damaged last.pt"]))
    report["reference_run_s"] = round(duration, 2)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
