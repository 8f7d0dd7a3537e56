"""Data-parallel training under ``torchrun``: who am I, which device, how to wait for the others.

``torchrun --nproc-per-node N ...`` starts N copies of the same command and tells each one its
place through environment variables: ``RANK`` (0 .. WORLD_SIZE-1 over all nodes),
``WORLD_SIZE``, ``LOCAL_RANK`` (0 .. LOCAL_WORLD_SIZE-1 on this node) and ``LOCAL_WORLD_SIZE``.
:func:`setup` reads them and joins the process group once per process:

- no ``WORLD_SIZE`` (a plain ``python``/``scorepde`` run) or ``WORLD_SIZE=1``: single process,
  no process group, nothing changes;
- otherwise the backend is ``gloo`` without CUDA and ``cpu:gloo,cuda:nccl`` with it (NCCL for
  the gradients of CUDA models, gloo for CPU tensors and barriers), and the process group is
  destroyed at interpreter exit.

The process group's timeout is :data:`TIMEOUT` (60 minutes): ranks other than 0 wait in a
barrier while rank 0 simulates a missing training set, so a campaign that takes longer should
be simulated first (``scorepde simulate``) and passed with ``--data``.
"""

from __future__ import annotations

import atexit
import datetime
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

#: How long a collective (or barrier) may wait for the slowest rank before failing.
TIMEOUT = datetime.timedelta(minutes=60)
_ENV_NAMES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")


@dataclass(frozen=True)
class DistributedContext:
    """This process's place among the training processes (``world_size = 1``: alone).

    rank: global index; world_size: number of processes; local_rank: index on this node (the
    CUDA device it uses); local_world_size: processes on this node (they share its CPU cores).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def is_distributed(self) -> bool:
        """More than one process: gradients are all-reduced, files are written by rank 0."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes checkpoints, history, logs and exported models."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait until every rank got here (a no-op for one process).

        Implemented as a gloo all-reduce of a CPU scalar, so it never touches a GPU stream and
        works the same under either backend.
        """
        if self.is_distributed:
            dist.all_reduce(torch.zeros(1))

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks in place (returned for chaining; one process: as is)."""
        if self.is_distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def all_gather_object(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order; ``[value]`` for one process."""
        if not self.is_distributed:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def shard(self, batch: int) -> slice:
        """This rank's rows of a global batch of ``batch`` rows: contiguous, sizes differ by at
        most one (``batch >= world_size`` gives every rank at least one row)."""
        return slice(
            self.rank * batch // self.world_size, (self.rank + 1) * batch // self.world_size
        )


def context_from_environment(environ: Mapping[str, str] | None = None) -> DistributedContext:
    """The :class:`DistributedContext` described by torchrun's variables (validated).

    Raises ``ValueError`` naming the variable when one is not an integer or out of range.
    """
    environ = os.environ if environ is None else environ
    if "WORLD_SIZE" not in environ:
        return DistributedContext()
    values: dict[str, int] = {}
    for name in _ENV_NAMES:
        raw = environ.get(name)
        if raw is None:
            if name == "LOCAL_WORLD_SIZE":
                continue
            raise ValueError(
                f"environment variable {name} is not set but WORLD_SIZE is; launch with "
                "torchrun (which sets RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE)"
            )
        try:
            values[name] = int(raw)
        except ValueError:
            raise ValueError(f"environment variable {name}={raw!r} is not an integer") from None
    world_size = values["WORLD_SIZE"]
    local_world_size = values.get("LOCAL_WORLD_SIZE", world_size)
    if world_size < 1:
        raise ValueError(f"environment variable WORLD_SIZE={world_size} must be >= 1")
    if not 0 <= values["RANK"] < world_size:
        raise ValueError(f"environment variable RANK={values['RANK']} must be in [0, {world_size})")
    if not 1 <= local_world_size <= world_size or not 0 <= values["LOCAL_RANK"] < local_world_size:
        raise ValueError(
            f"environment variables LOCAL_RANK={values['LOCAL_RANK']} / LOCAL_WORLD_SIZE="
            f"{local_world_size} are inconsistent with WORLD_SIZE={world_size}"
        )
    return DistributedContext(
        rank=values["RANK"],
        world_size=world_size,
        local_rank=values["LOCAL_RANK"],
        local_world_size=local_world_size,
    )


def setup() -> DistributedContext:
    """Join the process group described by the environment (once per process); see the module
    docstring. Safe to call repeatedly: later calls return the same context."""
    context = context_from_environment()
    if not context.is_distributed:
        return context
    if not dist.is_available():
        raise RuntimeError(
            f"WORLD_SIZE={context.world_size} asks for distributed training but this torch "
            "build has no torch.distributed"
        )
    if dist.is_initialized():
        if dist.get_world_size() != context.world_size or dist.get_rank() != context.rank:
            raise RuntimeError(
                f"a process group (rank {dist.get_rank()} of {dist.get_world_size()}) is already "
                f"initialised but the environment says rank {context.rank} of "
                f"{context.world_size}"
            )
        return context
    backend = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
    if torch.cuda.is_available():
        torch.cuda.set_device(context.local_rank % torch.cuda.device_count())
    dist.init_process_group(backend=backend, timeout=TIMEOUT)
    atexit.register(_destroy)
    return context


def _destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_device(device: torch.device, context: DistributedContext, requested: str) -> torch.device:
    """The device rank ``context.rank`` trains on: ``cuda:LOCAL_RANK`` when ``device`` is CUDA
    and several processes run; otherwise ``device`` itself.

    ``requested`` is the configured device string (for the error message): naming one GPU
    (``cuda:1``) with several processes is an error, since every rank would use that GPU.
    """
    if not context.is_distributed or device.type != "cuda":
        return device
    if requested.startswith("cuda:"):
        raise ValueError(
            f"TrainConfig.device = {requested!r} names one GPU but torchrun started "
            f"{context.world_size} processes; use 'cuda' or 'auto' (rank r uses cuda:LOCAL_RANK)"
        )
    count = torch.cuda.device_count()
    if context.local_rank >= count:
        raise ValueError(
            f"LOCAL_RANK={context.local_rank} but this node has {count} CUDA device(s); start at "
            f"most {count} processes per node (torchrun --nproc-per-node {count})"
        )
    return torch.device("cuda", context.local_rank)
