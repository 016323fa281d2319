"""Data-parallel training under ``torchrun``: process group, batch sharding, reductions.

``torchrun --nproc-per-node N`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` for every worker;
without them training runs as a single process and every function here is a cheap no-op.

Gradient normalization follows fairseq: every rank sums its loss over target tokens, DDP
averages the gradients over the ``W`` ranks, so the trainer scales each rank's loss by
``W / sample_size`` where ``sample_size`` is the number of target tokens of the whole update on
all ranks. The trainer knows ``sample_size`` without communication because every rank builds the
same list of batches (same seed, same epoch) before taking its shard.

Control decisions that must agree across ranks (stop on a signal) travel over a separate
``gloo`` group of CPU tensors, so they never force a host-device synchronization on CUDA.
"""

from __future__ import annotations

import contextlib
import datetime
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from nmt_preln.errors import UserError

T = TypeVar("T")


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job.

    Attributes:
        rank: global rank, 0 for a single process.
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        control_group: a gloo process group for CPU-side flags, None for a single process.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    control_group: Any = None

    @property
    def is_main(self) -> bool:
        """True on the one process that logs and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one process trains."""
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise UserError(f"environment variable {name}={value!r} is not an integer") from None


def init_distributed(*, device_type: str, timeout_minutes: float) -> DistributedContext:
    """Join the process group described by torchrun's environment variables.

    A rank that dies or hangs leaves the others blocked in a collective; after
    ``timeout_minutes`` they fail (a one-line UserError, see :func:`lost_rank_as_user_error`)
    and exit, which lets torchrun's agent restart the job (docs/SCALING.md). A killed rank is
    usually noticed at once (its sockets close); a stopped one only by this timeout.

    Args:
        device_type: "cuda" (NCCL backend, one GPU per local rank) or "cpu" (gloo).
        timeout_minutes: ``hardware.ddp_timeout_minutes``: how long a collective may wait
            for a missing rank before failing.

    Returns:
        The context; a single-process context when ``WORLD_SIZE`` is unset or 1.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    if world_size <= 1:
        return DistributedContext()
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", rank)
    if "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
        raise UserError("WORLD_SIZE > 1 needs MASTER_ADDR and MASTER_PORT (launch with torchrun)")
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    backend = "nccl" if device_type == "cuda" else "gloo"
    timeout = datetime.timedelta(minutes=timeout_minutes)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size, timeout=timeout)
    control = dist.new_group(backend="gloo", timeout=timeout) if backend != "gloo" else None
    return DistributedContext(
        rank=rank,
        world_size=world_size,
        local_rank=local_rank,
        control_group=control if control is not None else dist.group.WORLD,
    )


def shutdown(ctx: DistributedContext, *, wait_for_others: bool = True) -> None:
    """Leave the process group (no-op for a single process).

    Args:
        ctx: the context from :func:`init_distributed`.
        wait_for_others: meet the other ranks at a barrier first (on a clean exit); False
            after an error, when the others may never arrive.
    """
    if not (ctx.enabled and dist.is_initialized()):
        return
    if wait_for_others:
        with contextlib.suppress(RuntimeError):
            dist.barrier(group=ctx.control_group)
    dist.destroy_process_group()


def wrap_model(model: nn.Module, ctx: DistributedContext, device: torch.device) -> nn.Module:
    """Wrap the model in DistributedDataParallel when more than one process trains."""
    if not ctx.enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def sync_gradients(model: nn.Module, sync: bool) -> contextlib.AbstractContextManager[Any]:
    """Context for one backward pass: skip DDP's all-reduce on non-final micro-batches.

    Args:
        model: the (possibly DDP-wrapped) model.
        sync: True on the last micro-batch of an update (gradients are all-reduced then).
    """
    if sync or not isinstance(model, nn.parallel.DistributedDataParallel):
        return contextlib.nullcontext()
    return model.no_sync()


def all_reduce_sum(tensor: torch.Tensor, ctx: DistributedContext) -> torch.Tensor:
    """Sum ``tensor`` over all ranks in place and return it (identity for one process)."""
    if ctx.enabled:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def any_rank(flag: bool, ctx: DistributedContext) -> bool:
    """True when ``flag`` is set on at least one rank (CPU-only collective)."""
    if not ctx.enabled:
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    dist.all_reduce(value, op=dist.ReduceOp.MAX, group=ctx.control_group)
    return bool(value.item())


def all_gather_objects(obj: T, ctx: DistributedContext) -> list[T]:
    """Every rank's ``obj``, in rank order (``[obj]`` for one process)."""
    if not ctx.enabled:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(gathered, obj, group=ctx.control_group)
    return gathered


# How the backends word a lost peer: DDP's reducer raises them as plain RuntimeErrors.
_LOST_PEER_MARKERS = ("gloo", "nccl", "connection", "timed out", "timeout", "peer")


def _is_lost_peer(err: BaseException) -> bool:
    if isinstance(err, dist.DistError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and any(m in text for m in _LOST_PEER_MARKERS)


@contextlib.contextmanager
def lost_rank_as_user_error(ctx: DistributedContext) -> Iterator[None]:
    """Turn a collective that timed out or lost its peer into a one-line UserError."""
    if not ctx.enabled:
        yield
        return
    try:
        yield
    except (dist.DistError, RuntimeError) as err:
        if not _is_lost_peer(err):
            raise
        lines = [line for line in str(err).splitlines() if line.strip()]
        first = lines[0].strip() if lines else type(err).__name__
        raise UserError(
            f"rank {ctx.rank}: another rank stopped or timed out during a collective ({first})"
        ) from err
