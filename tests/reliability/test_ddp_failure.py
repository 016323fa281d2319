"""A DDP rank dies or hangs: the survivor exits with one clear error line instead of waiting.

Two CPU processes train with gloo (launched like torchrun would: RANK, WORLD_SIZE,
MASTER_ADDR, MASTER_PORT). Once training runs, rank 1 gets SIGKILL; rank 0 must notice at its
next collective and exit with status 1 and an ``nmt-train: error:`` line naming the lost rank.
A rank that hangs (SIGSTOP: its sockets stay open) is only noticed by the collective timeout,
``hardware.ddp_timeout_minutes``: set to 6 s here, rank 0 must give up about then.
torchrun's elastic restart would then resume from ``checkpoint_last.pt``, which must load.
"""

from __future__ import annotations

import os
import signal
import time
from multiprocessing.process import BaseProcess
from pathlib import Path

from helpers.ranks import rank_envs

from nmt_preln.checkpoint.store import LAST, load_checkpoint
from nmt_preln.train.save_dir import SaveDirLock

from .harness import logged_updates, run_argv, start_training, wait_for

# The survivor must give up well within this (gloo notices a closed socket at once).
BOUND_S = 30.0


def _start_ranks(argv: list[str], tmp_path: Path) -> list[BaseProcess]:
    return [
        start_training(argv, output=tmp_path / f"rank{rank}.txt", env=env)
        for rank, env in enumerate(rank_envs(2))
    ]


def _one_error_line(tmp_path: Path, survivor: BaseProcess) -> str:
    text = (tmp_path / "rank0.txt").read_text(encoding="utf-8")
    assert survivor.exitcode == 1, text
    assert "Traceback" not in text, text
    errors = [line for line in text.splitlines() if line.startswith("nmt-train: error:")]
    assert len(errors) == 1 and "rank 0: another rank stopped" in errors[0], text
    return errors[0]


def test_survivor_exits_with_a_clear_error(data_dir: Path, tmp_path: Path) -> None:
    save = tmp_path / "run"
    ranks = _start_ranks(run_argv(data_dir, save, "max_update=200"), tmp_path)
    survivor, victim = ranks
    try:
        wait_for(lambda: logged_updates(save) >= 3, timeout=90, what="3 DDP updates")
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        survivor.join(timeout=BOUND_S)
        waited = time.monotonic() - killed_at
        assert not survivor.is_alive(), f"rank 0 still running {BOUND_S}s after rank 1 died"
    finally:
        for process in ranks:
            if process.is_alive():
                os.kill(process.pid, signal.SIGKILL)
            process.join(timeout=10)
    _one_error_line(tmp_path, survivor)
    assert waited < BOUND_S
    print(f"\nrank 0 exited {waited:.1f}s after rank 1 was killed")
    load_checkpoint(save / LAST)  # what an elastic restart resumes from


# A stopped rank keeps its sockets open: only the collective timeout can free the others.
TIMEOUT_MINUTES = 0.1


def test_a_hung_rank_frees_the_others_after_the_ddp_timeout(data_dir: Path, tmp_path: Path) -> None:
    save = tmp_path / "run"
    timeout = f"hardware.ddp_timeout_minutes={TIMEOUT_MINUTES}"
    ranks = _start_ranks(run_argv(data_dir, save, "max_update=200", timeout), tmp_path)
    survivor, victim = ranks
    try:
        wait_for(lambda: logged_updates(save) >= 3, timeout=90, what="3 DDP updates")
        assert victim.pid is not None
        os.kill(victim.pid, signal.SIGSTOP)
        stopped_at = time.monotonic()
        survivor.join(timeout=TIMEOUT_MINUTES * 60 + BOUND_S)
        waited = time.monotonic() - stopped_at
        assert not survivor.is_alive(), f"rank 0 still waiting {waited:.0f}s after the stop"
    finally:
        for process in ranks:
            if process.is_alive():
                os.kill(process.pid, signal.SIGKILL)  # SIGKILL ends a stopped process too
            process.join(timeout=10)
    line = _one_error_line(tmp_path, survivor)
    assert "timed out" in line.lower() or "timeout" in line.lower(), line
    assert waited >= TIMEOUT_MINUTES * 60 * 0.9  # it did wait for the timeout, not less
    print(f"\nrank 0 exited {waited:.1f}s after rank 1 was stopped")
    load_checkpoint(save / LAST)


def test_a_locked_save_dir_stops_every_rank_at_once(data_dir: Path, tmp_path: Path) -> None:
    save = tmp_path / "run"
    save.mkdir()
    lock = SaveDirLock(str(save))  # another run holds the directory
    ranks: list[BaseProcess] = []
    try:
        ranks += _start_ranks(run_argv(data_dir, save, "max_update=200"), tmp_path)
        for process in ranks:
            process.join(timeout=BOUND_S)
        alive = [process.is_alive() for process in ranks]
    finally:
        lock.release()
        for process in ranks:
            if process.is_alive():
                os.kill(process.pid, signal.SIGKILL)
            process.join(timeout=10)
    assert alive == [False, False], "a rank waited instead of stopping"
    for rank, process in enumerate(ranks):
        text = (tmp_path / f"rank{rank}.txt").read_text(encoding="utf-8")
        errors = [line for line in text.splitlines() if line.startswith("nmt-train: error:")]
        assert process.exitcode == 1 and "Traceback" not in text, text
        assert len(errors) == 1 and f"pid {os.getpid()}" in errors[0], text
    assert not (save / LAST).exists()
