"""Start the setup's processes: `train.devices` per node, `train.num_nodes` nodes.

`dino-guard train` with `devices` x `num_nodes` above 1 hands itself to
torch.distributed.run, the engine behind torchrun (elastic agent,
rendezvous, worker monitoring): each worker is `python -m dino_guard train`
again, finds WORLD_SIZE/RANK in its environment and joins the group
(distributed.init: NCCL on CUDA, gloo on the CPU). Started by an external
torchrun, `dino-guard train` is such a worker from the start.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

from dino_guard.plan import setup_processes


class LaunchError(Exception):
    """The processes the setup asks for cannot be started here; the message says why and what to do."""


@dataclass(frozen=True)
class Nodes:
    """Where this node sits among `train.num_nodes` (the --nnodes/--node-rank/--rdzv-endpoint options)."""

    nnodes: int | None = None
    node_rank: int = 0
    rdzv_endpoint: str | None = None


def under_launcher() -> bool:
    """True in a process torchrun (ours or the user's) started."""
    return "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ


def wants_launch(setup) -> bool:
    return setup_processes(setup) > 1 and not under_launcher()


def visible(device: str) -> tuple[int, str]:
    """(how many, what) the local processes can each take: CUDA devices, else CPU cores."""
    import torch

    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        return torch.cuda.device_count(), "CUDA devices"
    return os.cpu_count() or 1, "CPU cores"


def launcher_args(setup, nodes: Nodes, worker_args: list) -> list:
    """torch.distributed.run's command line for this node."""
    t = setup.train
    nnodes = nodes.nnodes or t.num_nodes
    if nnodes != t.num_nodes:
        raise LaunchError(f"--nnodes {nnodes} but the setup says train.num_nodes: {t.num_nodes}; make them agree")
    args = ["--nproc-per-node", str(t.devices), "--nnodes", str(nnodes)]
    if nnodes == 1:
        args.append("--standalone")  # a local rendezvous on a free port
    elif not nodes.rdzv_endpoint:
        raise LaunchError(f"train.num_nodes is {nnodes}: run the same command on every node with "
                          "--node-rank R (0..nnodes-1) and --rdzv-endpoint HOST:PORT of node 0")
    else:
        if nodes.node_rank >= nnodes:  # torch would wait forever for a rendezvous that cannot complete
            raise LaunchError(f"--node-rank {nodes.node_rank} with --nnodes {nnodes}: node ranks are 0..{nnodes - 1}; "
                              "give each node its own rank in that range")
        check_endpoint(nodes.rdzv_endpoint)
        args += ["--node-rank", str(nodes.node_rank), "--rdzv-endpoint", nodes.rdzv_endpoint]
    return args + ["--module", "dino_guard", "train", *worker_args]


def check_endpoint(endpoint: str) -> None:
    """--rdzv-endpoint as torch.distributed.run reads it, with a port a node can connect to."""
    from torch.distributed.elastic.rendezvous.utils import parse_rendezvous_endpoint

    try:
        _, port = parse_rendezvous_endpoint(endpoint, default_port=29400)
    except ValueError as exc:
        raise LaunchError(f"--rdzv-endpoint {endpoint}: {exc} Give HOST:PORT of node 0, PORT 1-65535") from None
    if not 0 < port < 65536:
        raise LaunchError(f"--rdzv-endpoint {endpoint}: port {port} cannot be connected to; "
                          "give HOST:PORT of node 0, PORT 1-65535")


def launch(setup, device: str, nodes: Nodes, worker_args: list) -> int:
    """Run `devices` local workers to the end; their exit status (the first failure's, else 0)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    count, what = visible(device)
    if setup.train.devices > count:
        raise LaunchError(f"train.devices is {setup.train.devices} but only {count} {what} are visible; "
                          f"lower train.devices to {count} or less")
    args = get_args_parser().parse_args(launcher_args(setup, nodes, worker_args))
    # torchrun sets one thread per worker and warns; split the cores between them instead
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // setup.train.devices)))
    try:
        with quiet_agent():
            run(args)
    except ChildFailedError as exc:  # the workers said why on stderr; pass their status on
        code = exc.get_first_failure()[1].exitcode
        return 128 - code if code < 0 else code or 1  # killed by signal N: 128 + N, as a shell says
    except SignalException as exc:
        # Ctrl-C / SIGTERM reached the agent: it has passed the signal on to the workers and waited for
        # them (they save a checkpoint and say so); exit as one process does, 128 + N
        return 128 + int(exc.sigval)
    return 0


@contextlib.contextmanager
def quiet_agent():
    """The elastic agent logs each worker's start and failure; the workers' own messages say it better."""
    log = logging.getLogger("torch.distributed.elastic")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)
