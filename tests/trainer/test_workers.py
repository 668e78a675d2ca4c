"""DataLoader workers leave SIGTERM / SIGINT to the main process; a worker lost to one anyway is read as the stop."""

from __future__ import annotations

import os
import signal

import pytest

from dino_guard.trainer.workers import ignore_stop_signals, signals_held, start_workers, stop_signal, worker_init
from tests.trainer.helpers import run, tiny_setup, torch  # torch: skips without the train extra

_INIT_RAN = []  # set in each worker by the chained worker_init_fn


class SignalledByItsGroup(torch.utils.data.Dataset):
    """Each item sends SIGTERM to its own worker, as `timeout` does to every process of the group."""

    def __len__(self):
        return 4

    def __getitem__(self, i):
        os.kill(os.getpid(), signal.SIGTERM)
        return torch.tensor([i, len(_INIT_RAN)])


def _record_init(worker_id: int) -> None:
    _INIT_RAN.append(worker_id)


def test_a_worker_ignores_sigterm_and_still_runs_the_loaders_own_worker_init_fn():
    loader = torch.utils.data.DataLoader(SignalledByItsGroup(), batch_size=None, num_workers=2,
                                         worker_init_fn=worker_init(then=_record_init))
    items = [tuple(x.tolist()) for x in start_workers(loader)]
    assert sorted(items) == [(0, 1), (1, 1), (2, 1), (3, 1)]  # every item made, each worker's own init ran once


def test_a_worker_without_it_dies_of_sigterm_and_the_error_is_read_as_the_stop():
    loader = torch.utils.data.DataLoader(SignalledByItsGroup(), batch_size=None, num_workers=1)
    with pytest.raises(RuntimeError, match="DataLoader worker") as caught:
        list(loader)
    assert stop_signal(caught.value, signal.SIGTERM) == signal.SIGTERM


@pytest.mark.parametrize("message, received, expected", [
    ("DataLoader worker (pid 7) is killed by signal: Terminated. ", None, signal.SIGTERM),
    ("DataLoader worker (pid 7) is killed by signal: Interrupt. ", None, signal.SIGINT),
    ("DataLoader worker (pid 7) is killed by signal: Terminated. ", signal.SIGINT, signal.SIGINT),
    ("DataLoader worker (pid(s) 7, 8) exited unexpectedly", signal.SIGTERM, signal.SIGTERM),
    ("DataLoader worker (pid(s) 7, 8) exited unexpectedly", None, None),  # no stop asked for: a real failure
    ("DataLoader worker (pid 7) is killed by signal: Killed. ", signal.SIGTERM, None),  # the OOM killer
    ("mat1 and mat2 shapes cannot be multiplied", signal.SIGTERM, None),
])
def test_stop_signal_reads_only_a_worker_lost_to_a_stop_signal_as_a_stop(message, received, expected):
    assert stop_signal(RuntimeError(message), received) == expected


def _signalled_before_its_init_fn():
    os.kill(os.getpid(), signal.SIGTERM)  # the group's SIGTERM, while PyTorch is still starting the worker
    ignore_stop_signals(0)


@pytest.mark.parametrize("held, exitcode", [(True, 0), (False, -signal.SIGTERM)])
def test_a_sigterm_reaching_a_worker_before_its_init_fn_is_dropped_when_held_during_the_fork(held, exitcode):
    import contextlib
    import multiprocessing

    child = multiprocessing.get_context("fork").Process(target=_signalled_before_its_init_fn)
    with signals_held() if held else contextlib.nullcontext():
        child.start()
    child.join(60)
    assert child.exitcode == exitcode


def test_workers_lost_to_sigterm_mid_step_exit_143_keeping_last_pt_and_exporting_nothing(tmp_path):
    """The error can reach the main process anywhere in a step: nothing is saved or measured from those weights."""
    def lose_workers(step, student):
        if step == 3:
            raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Terminated. ")

    lines = []
    result = run(tiny_setup(train={"checkpoint_every_steps": 2}), tmp_path, step_hook=lose_workers, log=lines.append)
    assert result.exit_code == 143 and result.summary["stopped_by"] == "SIGTERM"
    assert result.checkpoint_step == 2
    said = (f"SIGTERM: the DataLoader workers were stopped part way through step 4, which is lost; "
            f"{tmp_path / 'checkpoints' / 'last.pt'} holds step 2; continue with --resume")
    assert any(said in line for line in lines), lines
    assert torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["step"] == 2
    assert not (tmp_path / "backbone.pt").exists()
