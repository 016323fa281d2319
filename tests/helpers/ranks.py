"""Environment of a local two-process (or more) torchrun-style job on the loopback interface."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port nobody listens on right now (the rendezvous of one test's ranks)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rank_envs(world_size: int) -> list[dict[str, str]]:
    """torchrun's variables for each rank of one job: RANK, LOCAL_RANK, WORLD_SIZE, MASTER_*."""
    port = str(free_port())
    return [
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world_size),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
        }
        for rank in range(world_size)
    ]
