"""DataLoader workers and stop signals: the main process alone decides how a run stops.

`timeout 20 dino-guard train ...`, a scheduler that signals the job's process group, and
Ctrl-C in a terminal send SIGTERM / SIGINT to every process of the group, the DataLoader's
worker processes included. A worker killed by it makes PyTorch's SIGCHLD handler raise
`DataLoader worker (pid N) is killed by signal: Terminated` in the main process, anywhere
in a step, before the loop's own handler has saved anything: a traceback instead of the
clean stop (checkpoint, message, exit 143 / 130).

So the workers ignore both signals, and the signals are held (blocked) in the main thread
while it forks the workers: a worker inherits the blocked mask, and a signal that reaches it
during its start-up is dropped once it ignores them, instead of killing it before that.
The workers still end: the main process shuts them down through the loader's queues, and
each exits by itself once the main process is gone (PyTorch's watchdog); SIGKILL still works.

`stop_signal` is the second line: a worker lost anyway (a custom worker_init_fn that failed
to run, a signal sent to one worker by hand) is read as the stop the signal asked for.
"""

from __future__ import annotations

import contextlib
import functools
import signal
from collections.abc import Callable, Iterable, Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def ignore_stop_signals(worker_id: int, then: Callable[[int], None] | None = None) -> None:
    """A DataLoader worker_init_fn: ignore SIGINT / SIGTERM, then run the worker_init_fn it wraps."""
    for s in STOP_SIGNALS:
        signal.signal(s, signal.SIG_IGN)  # a signal pending since the fork is discarded here
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if then is not None:
        then(worker_id)


def worker_init(then: Callable[[int], None] | None = None) -> Callable[[int], None]:
    """The worker_init_fn for a loader: `then` (the loader's own, seeding for one) still runs after."""
    return functools.partial(ignore_stop_signals, then=then)  # a partial of a module function pickles (spawn)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """SIGINT / SIGTERM blocked in this thread while the block runs: processes forked in it start blocked.

    The main process's own handler is not delayed for long: another of its threads (torch's) may take
    the signal at once, and the main thread takes a pending one when the block ends.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def start_workers(loader: Iterable) -> Iterator:
    """iter(loader): its worker processes are forked here, with the stop signals held."""
    with signals_held():
        return iter(loader)


def stop_signal(exc: BaseException, received: int | None) -> int | None:
    """The stop signal behind PyTorch's "DataLoader worker ... killed / exited" error; None for any other error.

    received: the signal the main process's own handler saw (None: none yet). A worker that
    exited unexpectedly counts as a stop only after one; a worker killed by SIGKILL (the
    kernel's out-of-memory killer) or a crash stays an error.
    """
    text = str(exc)
    if not isinstance(exc, RuntimeError) or not text.startswith("DataLoader worker"):
        return None
    for s in STOP_SIGNALS:
        if f"killed by signal: {signal.strsignal(s)}" in text:
            return received or s
    return received if "exited unexpectedly" in text else None
