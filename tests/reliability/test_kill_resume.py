"""kill -9 at random moments: resuming reproduces the uninterrupted run, checkpoints stay whole.

Each trial starts ``nmt-train`` (its ``main``, in a forked child so that torch is already
imported: a kill costs no interpreter start-up), waits until training has begun, sleeps a
seeded random time and sends SIGKILL; the run is then resumed, possibly killed again, and
finally run to completion. Saving every update (``save_interval_updates=1``) and validating
every 3 updates makes some kills land inside a checkpoint write or a validation. Afterwards:

* the per-update records of ``train_log.jsonl`` (epoch, update, loss, nll, lr, gnorm, tokens)
  and the validation records equal those of an uninterrupted reference run, bit for bit;
* every ``*.pt`` in the save directory loads with ``load_checkpoint`` (none is truncated).

One default test kills a real ``nmt-train`` subprocess; the slow variant repeats the random
trials for at least 20 kills.
"""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from nmt_preln.checkpoint.store import load_checkpoint

from .harness import (
    ENV,
    MAX_UPDATE,
    RUN,
    logged_updates,
    read_log,
    run_argv,
    start_training,
    train_command,
    wait_for,
)


def _log_lines(save_dir: Path) -> int:
    try:
        return (save_dir / "train_log.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return -1


def _kill_at_random(process: Any, save_dir: Path, rng: random.Random) -> bool:
    """SIGKILL ``process`` at a random moment after it logged 1-3 more records (resumed or
    trained); True when it was still running then.

    Counting records rather than seconds keeps most kills inside the run however fast the
    machine trains; the extra random delay of up to a fraction of an update lands some of
    them inside a checkpoint write or a validation.
    """
    target = _log_lines(save_dir) + rng.randint(1, 3)
    wait_for(
        lambda: _log_lines(save_dir) >= target or not process.is_alive(),
        timeout=60,
        what="training to log",
    )
    time.sleep(rng.uniform(0.0, 0.05))
    alive = process.is_alive()
    if alive:
        os.kill(process.pid, signal.SIGKILL)
    process.join(timeout=30)
    return alive and process.exitcode == -signal.SIGKILL


def _check_checkpoints(save_dir: Path) -> None:
    files = sorted(save_dir.glob("*.pt"))
    assert files
    for path in files:
        state = load_checkpoint(path)  # raises CheckpointError when truncated or unreadable
        assert 0 <= state["num_updates"] <= MAX_UPDATE


def kill_and_resume(data_dir: Path, save_dir: Path, *, kills: int, seed: int) -> tuple[int, int]:
    """Kill ``kills`` times, then finish; returns (kills that hit, kills inside a save)."""
    rng = random.Random(seed)
    argv = run_argv(data_dir, save_dir)
    hits = inside_save = 0
    for _ in range(kills):
        if _kill_at_random(start_training(argv), save_dir, rng):
            hits += 1
            # A temp file left behind means the kill interrupted a checkpoint write.
            inside_save += any(save_dir.glob(".checkpoint*.tmp"))
            _check_checkpoints(save_dir)
    final = start_training(argv)
    final.join(timeout=120)
    assert final.exitcode == 0
    _check_checkpoints(save_dir)
    return hits, inside_save


def test_kill_9_then_resume_equals_uninterrupted(
    data_dir: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    hits, _ = kill_and_resume(data_dir, tmp_path / "run", kills=3, seed=7)
    assert hits >= 2  # the kill times are seeded: most land while training runs
    assert read_log(tmp_path / "run") == reference["train"]
    assert read_log(tmp_path / "run", "valid") == reference["valid"]


def test_kill_9_of_a_real_nmt_train_process(
    data_dir: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    import subprocess

    save = tmp_path / "run"
    command = train_command(data_dir, save, *RUN)
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL)
    wait_for(lambda: logged_updates(save) >= 4, timeout=90, what="4 updates")
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    _check_checkpoints(save)
    final = start_training(run_argv(data_dir, save))
    final.join(timeout=120)
    assert final.exitcode == 0
    assert read_log(save) == reference["train"]
    assert read_log(save, "valid") == reference["valid"]


@pytest.mark.slow
def test_twenty_kills(data_dir: Path, tmp_path: Path, reference: dict[str, Any]) -> None:
    total_hits = total_inside = 0
    for trial in range(8):
        save = tmp_path / f"run{trial}"
        hits, inside = kill_and_resume(data_dir, save, kills=4, seed=100 + trial)
        total_hits += hits
        total_inside += inside
        assert read_log(save) == reference["train"]
        assert read_log(save, "valid") == reference["valid"]
    print(f"\nkills survived: {total_hits}, of them inside a checkpoint write: {total_inside}")
    assert total_hits >= 20


def test_a_log_line_cut_by_a_kill_is_dropped_on_resume(
    data_dir: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    save = tmp_path / "run"
    first = start_training(run_argv(data_dir, save, "max_update=5"))
    first.join(timeout=120)
    assert first.exitcode == 0
    with open(save / "train_log.jsonl", "a", encoding="utf-8") as f:
        f.write('{"split": "train", "epoch": 1, "upd')  # as if killed mid-append
    final = start_training(run_argv(data_dir, save))
    final.join(timeout=120)
    assert final.exitcode == 0
    assert read_log(save) == reference["train"]


def test_validation_sees_the_weights_of_a_fused_optimizer_step() -> None:
    # Found by the kill tests: validation used q/k/v weights cached before fused Adam steps
    # (which do not bump a tensor's _version), so resumed runs validated differently.
    from nmt_preln.config import ModelConfig
    from nmt_preln.models.transformer import Transformer

    torch.manual_seed(0)
    cfg = ModelConfig(encoder_layers=1, decoder_layers=1, d_model=16, ffn_dim=32, num_heads=2)
    model = Transformer(cfg, src_vocab_size=12, tgt_vocab_size=12, pad=1)
    src, prev = torch.randint(4, 12, (3, 5)), torch.randint(4, 12, (3, 4))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    for _ in range(2):
        model.eval()
        with torch.no_grad():
            model(src, prev)  # fills the decoding caches
        model.train()
        model(src, prev).sum().backward()
        optimizer.step()
    model.eval()
    fresh = Transformer(cfg, src_vocab_size=12, tgt_vocab_size=12, pad=1).eval()
    fresh.load_state_dict(model.state_dict())
    with torch.no_grad():
        assert torch.equal(model(src, prev), fresh(src, prev))
