"""Checkpoints that verify themselves: format version, content hash, weights_only loads.

A checkpoint is one torch.save'd dict holding everything a resume needs plus
`format_version` and `sha256`, a hash over every key, value and tensor byte
of the rest. `load` refuses, with one line naming the file and what to do
(`CheckpointError`), anything that is not exactly what `save_atomic` wrote:
a zero-byte or truncated file, a flipped byte, a tensor or list instead of
a dict, a field of the wrong type, a negative step. `save_atomic` writes a
temporary file, reads it back and verifies it, and only then renames it over
the old checkpoint, so a kill at any point leaves one loadable checkpoint.
"""

from __future__ import annotations

import errno
import hashlib
import os
import random
from pathlib import Path

import numpy as np
import torch

from dino_guard.trainer.runfolder import discard, publish, temp_file

FORMAT_VERSION = 2  # 1: the unversioned, unhashed checkpoints of earlier releases
META = ("format_version", "sha256")
# field -> the type a resumable checkpoint holds there (None allowed for the optional ones)
FIELDS = {"student": dict, "teacher": dict, "optimizer": dict, "scaler": dict, "loss": dict, "monitor": dict,
          "rng": dict, "step": int, "epoch": int, "micro_batches_done": int, "setup": dict, "world_size": int}
OPTIONAL = {"knn_top1_init": (float, int), "data_images": (int,)}  # data_images: since issue 24


# What to do about a damaged last.pt. Not "move it away": --resume without last.pt is refused (runfolder).
TODO = ("replace it with an earlier copy (rename checkpoints/epoch_NNNN.pt to last.pt) and resume again, "
        "or start over with --overwrite (deletes this run's outputs)")


class CheckpointError(Exception):
    """A checkpoint that cannot be trusted; the message names the file and what to do."""


def data_changed(state: dict, images_now: int, where: str) -> str:
    """Why the run cannot continue on the data found now ('' when it can).

    The steps per epoch, the lr and momentum schedules and the last step follow
    from the number of images, so a resume over more or fewer images would
    silently jump them: refused, naming both counts.
    """
    then = state.get("data_images")
    if then is None or then == images_now:  # None: a checkpoint from before the count was kept
        return ""
    return (f"the data changed since the run started: {where} held {then} images then and {images_now} now; "
            "the steps per epoch, the lr and momentum schedules and the last step follow from that count, "
            "so the run cannot continue as planned; restore the data as it was to resume, "
            "or train on the new data into another train.output_dir")


def rng_state() -> dict:
    np_state = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
             "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)), "numpy_pos": int(np_state[2]),
             "numpy_has_gauss": int(np_state[3]), "numpy_gauss": float(np_state[4])}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"],
                         state["numpy_has_gauss"], state["numpy_gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -------------------------------------------------------------------- the content hash


def content_hash(obj) -> str:
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in obj.items() if k not in META})
    return h.hexdigest()


def _feed(h, value) -> None:
    """Hash the type and content of every node, so any changed key, value or tensor byte changes it."""
    h.update(type(value).__name__.encode() + b":")
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, dict):
        h.update(f"{len(value)}{{".encode())
        for k, v in value.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(value, list) and all(type(v) in (float, int) for v in value):
        h.update(repr(value).encode())  # the monitor's per-step histories: one update, not one per number
    elif isinstance(value, (list, tuple)):
        h.update(f"{len(value)}[".encode())
        for v in value:
            _feed(h, v)
    else:
        h.update(repr(value).encode() + b";")


# -------------------------------------------------------------------- save and load


def save_atomic(obj: dict, path: Path) -> None:
    """Write a temporary file, fsync, read it back and verify it, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sealed = {**obj, "format_version": FORMAT_VERSION, "sha256": content_hash(obj)}
    fd, tmp = temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            _write(sealed, f, path)
        load(Path(tmp), mmap=True)  # the old checkpoint stays until the new one reads back whole
        publish(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def _write(obj: dict, f, path: Path) -> None:
    """torch.save + fsync; a failed write is an OSError (torch reports a full disk as
    RuntimeError 'unexpected pos ...', which names neither the file nor the cause)."""
    try:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())
    except RuntimeError as exc:
        vfs = os.statvfs(path.parent)
        if vfs.f_bavail * vfs.f_frsize < 2**20:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from None
        raise OSError(errno.EIO, f"writing the checkpoint failed ({exc})", str(path)) from None


def load(path: Path, mmap: bool = False) -> dict:
    """The verified checkpoint at `path`, or CheckpointError saying what is wrong and what to do."""
    todo = TODO
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror}); {todo}") from None
    if size == 0:
        raise CheckpointError(f"{path}: is empty (0 bytes; a write was cut off); {todo}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:  # torch raises many types for a damaged zip or pickle
        first = (str(exc).splitlines() or [""])[0][:160]
        raise CheckpointError(f"{path}: not a readable checkpoint, truncated or damaged "
                              f"({type(exc).__name__}: {first}); {todo}") from None
    problem = _shape_problem(state)
    if problem:
        raise CheckpointError(f"{path}: {problem}; {todo}")
    if content_hash(state) != state["sha256"]:
        raise CheckpointError(f"{path}: its content does not match its sha256 (the file is corrupted); {todo}")
    return state


def _shape_problem(state) -> str:
    """What makes `state` not a checkpoint of this format ('' when it is one)."""
    if not isinstance(state, dict):
        return f"holds a {type(state).__name__}, not a dino-guard checkpoint (a dict)"
    version = state.get("format_version")
    if version != FORMAT_VERSION:
        written = "no format version (an older dino-guard)" if version is None else f"format version {version!r}"
        return f"has {written}; this dino-guard reads format {FORMAT_VERSION}"
    if not isinstance(state.get("sha256"), str):
        return "has no content hash (sha256)"
    for name, kind in FIELDS.items():
        value = state.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"field {name!r} is {type(value).__name__}, not {kind.__name__}"
    for name, kinds in OPTIONAL.items():
        if state.get(name) is not None and not isinstance(state[name], kinds):
            return f"field {name!r} is {type(state[name]).__name__}, not a number"
    if state["step"] < 0 or state["epoch"] < 0:
        return f"step {state['step']} / epoch {state['epoch']} is negative"
    return ""
