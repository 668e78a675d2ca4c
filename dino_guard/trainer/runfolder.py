"""The run folder: one run at a time, never reused by accident, written only by rename.

- `claimed(out, resume, overwrite)` takes an exclusive flock on `out/.lock`
  for the whole run (a second run exits naming the first's PID), refuses a
  folder that already holds a run unless `--resume` or `--overwrite` says what
  to do with it, refuses `--resume` of a run whose checkpoints/last.pt is gone
  (it would start over), and removes the temporary files a killed write left.
- `--overwrite` removes only what a run writes, inside the run folder
  (`overwritten`); a symlinked checkpoints/ is unlinked, its target untouched.
- `write_bytes` / `write_text` / `replaced` create a new file next to the
  target and rename it over the name: an output planted as a symlink is
  replaced, never followed, and a kill mid-write leaves the old file whole.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

LOCK_NAME = ".lock"
# What a run writes: a folder holding any of these holds a run.
RUN_FILES = ("metrics.jsonl", "summary.json", "setup.resolved.json", "loss.png", "backbone.pt", "backbone.json")
CHECKPOINTS = "checkpoints"
# Temporary names made by `temp_file`: .NAME.XXXXXXXX.tmp, optionally followed by NAME's suffix.
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


class RunFolderError(Exception):
    """The run folder cannot be used as asked; the message says why and what to do."""


def holds_run(out: Path) -> bool:
    ckpts = out / CHECKPOINTS
    return any((out / n).exists() or (out / n).is_symlink() for n in RUN_FILES) or (
        ckpts.is_dir() and any(p.suffix == ".pt" for p in ckpts.iterdir()))


OVERWRITE_REMOVES = f"{', '.join(RUN_FILES)} and {CHECKPOINTS}/*.pt (a symlinked {CHECKPOINTS}/ only as the link)"


def refuse_reuse(out: Path, command: str) -> RunFolderError:
    return RunFolderError(
        f"{out} already holds a run; continue it with `{command} --resume`, or start over with "
        f"`{command} --overwrite`, which deletes that run's {OVERWRITE_REMOVES} in {out}")


def overwritten(out: Path) -> list[Path]:
    """What --overwrite removes: the files a run writes, and nothing outside `out`.

    A symlinked checkpoints/ (checkpoints -> /big/disk/models) is one entry, the
    link itself: the files in its target may be anyone's, so they are never listed.
    """
    doomed = [out / n for n in RUN_FILES]
    ckpts = out / CHECKPOINTS
    if ckpts.is_symlink():
        doomed.append(ckpts)
    elif ckpts.is_dir():
        doomed += [p for p in ckpts.iterdir() if p.suffix == ".pt"]
    return [p for p in doomed if p.exists() or p.is_symlink()]


def remove_run(out: Path) -> list[Path]:
    """--overwrite: delete `overwritten(out)`; a symlink is removed itself, its target left alone."""
    removed = overwritten(out)
    for p in removed:
        p.unlink()
    return removed


def overwrite_note(out: Path, removed: list[Path]) -> str:
    def name(p: Path) -> str:
        if p == out / CHECKPOINTS:
            return f"{CHECKPOINTS} (the symlink itself; its target is untouched)"
        return p.name if p.parent == out else f"{CHECKPOINTS}/{p.name}"

    listed = ", ".join(map(name, removed))
    return f"--overwrite: removed {len(removed)} output(s) of the previous run in {out}: {listed}"


def refuse_lost_checkpoint(out: Path) -> RunFolderError | None:
    """--resume of a run whose checkpoints/last.pt is gone would silently start over, dropping what
    is on disk: say what is there. A run killed before its first checkpoint left at most an empty
    metrics.jsonl (no step was taken): nothing is lost, so that one starts."""
    last = out / CHECKPOINTS / "last.pt"
    if last.exists() or last.is_symlink():
        return None
    found = [n for n in RUN_FILES if (out / n).exists() and not (n == "metrics.jsonl" and not (out / n).stat().st_size)]
    ckpts = out / CHECKPOINTS
    found += sorted(f"{CHECKPOINTS}/{p.name}" for p in ckpts.iterdir() if p.suffix == ".pt") if ckpts.is_dir() else []
    if not found:
        return None
    return RunFolderError(
        f"--resume: {last} does not exist, so there is nothing to resume from; {out} holds {', '.join(found)}; "
        f"rename an earlier checkpoint ({CHECKPOINTS}/epoch_NNNN.pt) to last.pt and resume, "
        f"or train into another train.output_dir (or --output-dir)")


def remove_stray_temps(out: Path) -> int:
    """Delete the partial files a killed write left (`.last.pt.XXXXXXXX.tmp`, ...)."""
    removed = 0
    for folder in (out, out / CHECKPOINTS):
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if TEMP_NAME.match(p.name) and (p.is_file() or p.is_symlink()):
                p.unlink()
                removed += 1
    return removed


def _lock(out: Path) -> int:
    """An exclusive flock on out/.lock, held until the process ends or `_unlock`; our PID inside."""
    fd = os.open(out / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EACCES):
            os.close(fd)
            raise
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderError(f"{out} is in use by another dino-guard train (PID {holder}); "
                             "wait for it to end, or choose another train.output_dir (or --output-dir)") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


@contextlib.contextmanager
def claimed(out: Path, resume: bool, overwrite: bool, command: str, log: Callable[[str], None],
            main: bool = True) -> Iterator[None]:
    """Hold the run folder for one run (on the main process; other ranks only wait for it)."""
    if not main:
        yield
        return
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite contradict each other; give one")
    out.mkdir(parents=True, exist_ok=True)
    fd = _lock(out)
    try:
        if holds_run(out) and not (resume or overwrite):
            raise refuse_reuse(out, command)
        if resume and (lost := refuse_lost_checkpoint(out)):
            raise lost
        if overwrite and (removed := remove_run(out)):
            log(overwrite_note(out, removed))
        if n := remove_stray_temps(out):
            log(f"removed {n} partial temporary file(s) left by an interrupted write in {out}")
        (out / CHECKPOINTS).mkdir(exist_ok=True)
        yield
    finally:
        os.close(fd)  # releases the flock; the file stays (removing it would race a waiting run)


# -------------------------------------------------------------------- writing by rename


def temp_file(path: Path, keep_suffix: bool = False) -> tuple:
    """A new file (fd, name) next to `path`, named so `remove_stray_temps` recognises it."""
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600; an output gets the mode open() would give it
    return fd, name


def publish(tmp: str, path: Path) -> None:
    """Rename a finished temporary file over `path` and make the rename durable."""
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_bytes(path: Path, data: bytes) -> None:
    fd, tmp = temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def replaced(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` writes a new file (e.g. matplotlib's savefig); it is then renamed over `path`."""
    fd, tmp = temp_file(path, keep_suffix=True)  # keep .png: savefig picks the format from it
    os.close(fd)
    try:
        write(Path(tmp))
        publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def discard(tmp: str | None) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
