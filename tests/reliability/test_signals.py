"""SIGTERM/SIGINT (cluster preemption, Ctrl-C): save a resumable checkpoint, exit cleanly.

The trainer documents (trainer.py): the current update finishes, ``checkpoint_last.pt`` is
saved, and the process exits with 143 (SIGTERM) or 130 (SIGINT); a second SIGINT stops at once
without saving. Resuming from that checkpoint reproduces the uninterrupted run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from nmt_preln.checkpoint.store import LAST, load_checkpoint

from .harness import (
    ENV,
    RUN,
    logged_updates,
    read_log,
    run_argv,
    start_training,
    train_command,
    wait_for,
)


def _resume_and_compare(data_dir: Path, save: Path, reference: dict[str, Any]) -> None:
    final = start_training(run_argv(data_dir, save))
    final.join(timeout=120)
    assert final.exitcode == 0
    assert read_log(save) == reference["train"]
    assert read_log(save, "valid") == reference["valid"]


def _interrupt(process: BaseProcess, save: Path, *signals: signal.Signals) -> None:
    wait_for(lambda: logged_updates(save) >= 5, timeout=60, what="5 updates")
    for signum in signals:
        os.kill(process.pid, signum)
        time.sleep(0.01)
    process.join(timeout=60)


def test_sigint_saves_a_resumable_checkpoint(
    data_dir: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    save, output = tmp_path / "run", tmp_path / "output.txt"
    process = start_training(run_argv(data_dir, save), output=output)
    _interrupt(process, save, signal.SIGINT)
    assert process.exitcode == 130
    text = output.read_text(encoding="utf-8")
    assert "Traceback" not in text and "error" not in text
    state = load_checkpoint(save / LAST)
    # The checkpoint holds exactly the updates that were logged: nothing lost, nothing extra.
    assert state["num_updates"] == read_log(save)[-1]["update"]
    assert f"received SIGINT: saved {LAST} at update {state['num_updates']}" in text
    _resume_and_compare(data_dir, save, reference)


def test_sigterm_to_a_real_nmt_train_process(
    data_dir: Path, tmp_path: Path, reference: dict[str, Any]
) -> None:
    save = tmp_path / "run"
    command = train_command(data_dir, save, *RUN)
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    wait_for(lambda: logged_updates(save) >= 3, timeout=90, what="3 updates")
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert b"Traceback" not in stderr
    saved = load_checkpoint(save / LAST)["num_updates"]
    assert f"received SIGTERM: saved {LAST} at update {saved}".encode() in stdout
    assert saved == read_log(save)[-1]["update"]
    _resume_and_compare(data_dir, save, reference)


def test_a_second_ctrl_c_stops_at_once_with_one_line(tmp_path: Path, data_dir: Path) -> None:
    save, output = tmp_path / "run", tmp_path / "output.txt"
    process = start_training(run_argv(data_dir, save), output=output)
    _interrupt(process, save, signal.SIGINT, signal.SIGINT)
    assert process.exitcode == 130
    text = output.read_text(encoding="utf-8")
    assert "Traceback" not in text
    if "received SIGINT" not in text:  # the second signal came before the first was handled
        errors = [ln for ln in text.splitlines() if ln.startswith("nmt-train: error:")]
        assert errors == ["nmt-train: error: interrupted; nothing saved since the last checkpoint"]
    load_checkpoint(save / LAST)  # whatever was saved last is whole
