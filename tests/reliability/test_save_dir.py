"""One run per save directory, checked before training: lock, writability, stale temp files.

* a second ``nmt-train`` into a directory a live run holds stops with one line naming it;
* a lock file left by a run that died is stale (the kernel dropped its flock): taken over;
* a directory that exists but cannot be written fails before training, in one line (tests
  run as root, for whom chmod changes nothing: ``/sys`` refuses new files even to root, and
  a probe write failing with EROFS stands in for a read-only mount);
* temp files of our own naming left by a kill mid-save are removed at start-up, others not.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest
from nmt_preln.cli import train as train_cli

from nmt_preln.checkpoint import store as ckpt
from nmt_preln.train import save_dir
from nmt_preln.train.save_dir import LOCK_NAME, SaveDirLock, remove_stale_temp_files

from .harness import (
    PYTHON,
    TINY_TRAIN,
    assert_clean_failure,
    logged_updates,
    run_main,
    start_training,
    wait_for,
)


def _argv(data_dir: Path, save: Path, *extra: str) -> list[str]:
    return [*TINY_TRAIN, f"data.path={data_dir}", f"checkpoint.save_dir={save}", *extra]


# Temp files as checkpoint._write_atomically, metrics.truncate_log and the probe name them.
OURS = [
    ".checkpoint_last.pt.k3j_9x2a.tmp",
    ".checkpoint_best.pt.abcdefgh.tmp",
    ".checkpoint7.pt.00000000.tmp",
    ".checkpoint_2_120.pt.zz_zz_zz.tmp",
    ".train_log.jsonl.q1w2e3r4.tmp",
    "train_log.jsonl.tmp",
    ".nmt-write-probe.a1b2c3d4",  # the writability probe (save_dir.check_writable)
]
# Look-alikes that are not ours: another program's file, no random part, wrong length,
# another suffix, a name that only ends like ours.
NOT_OURS = [
    ".notes.txt.abcdefgh.tmp",
    ".checkpoint_last.pt.tmp",
    ".checkpoint_last.pt.abc.tmp",
    ".checkpoint_last.pt.abcdefgh.tmp.bak",
    ".averaged.pt.abcdefgh.tmp",
    "x.checkpoint_last.pt.abcdefgh.tmp",
    "checkpoint_last.pt.abcdefgh.tmp",
]


def test_a_second_run_into_a_locked_save_dir_stops_naming_the_first(
    data_dir: Path, tmp_path: Path
) -> None:
    save = tmp_path / "run"
    first = start_training(_argv(data_dir, save, "max_update=100000"))
    try:
        wait_for(lambda: logged_updates(save) >= 1, timeout=90, what="the first run's update")
        save.joinpath(OURS[0]).write_bytes(b"the first run's checkpoint being written")
        result = run_main(train_cli.main, _argv(data_dir, save, "max_update=1"))
        line = assert_clean_failure(result, "nmt-train")
        assert f"pid {first.pid}" in line and str(save) in line and "in use" in line
        assert save.joinpath(OURS[0]).exists()  # the live run's temp file was left alone
        assert first.is_alive()
    finally:
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        first.join(timeout=10)
    # SIGKILL left the lock file behind; the kernel dropped the flock: the next run may go.
    assert json.loads(save.joinpath(LOCK_NAME).read_text())["pid"] == first.pid
    result = run_main(train_cli.main, _argv(data_dir, save, "max_update=2"))
    assert result.code == 0, result.stderr
    assert f"took over the lock of an ended run (pid {first.pid}" in result.stdout
    assert not save.joinpath(LOCK_NAME).exists()  # released on exit
    assert not save.joinpath(OURS[0]).exists()


def test_the_lock_is_released_on_failure_and_excludes_other_processes(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), save_dir.open_save_dir(str(tmp_path), tensorboard_dir=None):
        raise RuntimeError("training failed")
    assert not (tmp_path / LOCK_NAME).exists()
    lock = SaveDirLock(str(tmp_path))
    try:
        holder = subprocess.run(
            [
                PYTHON,
                "-c",
                "import sys; from nmt_preln.train.save_dir import SaveDirLock\n"
                "try:\n    SaveDirLock(sys.argv[1])\n"
                "except Exception as e:\n    print(e)\n    sys.exit(3)",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        lock.release()
    assert holder.returncode == 3, holder.stderr
    assert f"pid {os.getpid()}" in holder.stdout
    SaveDirLock(str(tmp_path)).release()  # free again


def test_stale_temp_files_of_our_naming_are_removed_others_kept(
    data_dir: Path, tmp_path: Path
) -> None:
    save = tmp_path / "run"
    save.mkdir()
    for name in OURS + NOT_OURS:
        save.joinpath(name).write_bytes(b"x" * 1000)
    save.joinpath(".checkpoint_best.pt.dirdirdi.tmp").mkdir()  # not a file: kept
    result = run_main(train_cli.main, _argv(data_dir, save, "max_update=1"))
    assert result.code == 0, result.stderr
    names = {p.name for p in save.iterdir()}
    assert not names & set(OURS), names
    assert set(NOT_OURS) <= names
    assert ".checkpoint_best.pt.dirdirdi.tmp" in names
    assert ckpt.load_checkpoint(save / ckpt.LAST)["num_updates"] == 1
    for name in OURS:
        assert f"removed {save / name}" in result.stdout


KILLED_MID_SAVE = """
import os, signal, sys, torch
from nmt_preln.checkpoint import store as ckpt

def half_then_killed(obj, f, *args, **kwargs):
    f.write(b"half a checkpoint")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

torch.save = half_then_killed
ckpt.save_checkpoint(sys.argv[1], {"format_version": ckpt.FORMAT_VERSION})
"""


def test_the_cleanup_removes_what_a_kill_mid_save_leaves(tmp_path: Path) -> None:
    target = tmp_path / ckpt.LAST
    killed = subprocess.run(
        [PYTHON, "-c", KILLED_MID_SAVE, str(target)], capture_output=True, timeout=60, check=False
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    leftover = [p for p in tmp_path.iterdir() if p.name != ckpt.LAST]
    assert len(leftover) == 1 and leftover[0].read_bytes() == b"half a checkpoint"
    assert remove_stale_temp_files(str(tmp_path)) == leftover
    assert not list(tmp_path.iterdir())


def _unwritable_dir() -> str:
    try:
        fd, probe = tempfile.mkstemp(dir="/sys")
    except OSError:
        return "/sys"
    os.close(fd)
    os.unlink(probe)
    pytest.skip("/sys accepts new files here")


@pytest.mark.parametrize("option", ["checkpoint.save_dir", "tensorboard_dir"])
def test_an_existing_unwritable_dir_fails_before_training(
    data_dir: Path, tmp_path: Path, option: str
) -> None:
    bad = _unwritable_dir()
    argv = _argv(data_dir, tmp_path / "run", "max_update=1", f"{option}={bad}")
    line = assert_clean_failure(run_main(train_cli.main, argv), "nmt-train")
    assert f"{option}={bad}" in line and "not writable" in line
    assert not (tmp_path / "run" / "train_log.jsonl").exists()


def test_a_read_only_save_dir_fails_in_one_line(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save = tmp_path / "run"
    save.mkdir()
    real = tempfile.mkstemp

    def read_only(*args: object, dir: object = None, **kwargs: object) -> tuple[int, str]:
        if dir is not None and Path(str(dir)) == save:
            raise OSError(errno.EROFS, "Read-only file system")
        return real(*args, dir=dir, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    line = assert_clean_failure(
        run_main(train_cli.main, _argv(data_dir, save, "max_update=1")), "nmt-train"
    )
    assert f"checkpoint.save_dir={save}" in line and "Read-only file system" in line


def test_a_file_system_without_locks_runs_unlocked_and_says_so(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(save_dir.fcntl, "flock", no_locks)
    save = tmp_path / "run"
    save.mkdir()
    save.joinpath(OURS[0]).write_bytes(b"maybe another run's live write")
    result = run_main(train_cli.main, _argv(data_dir, save, "max_update=1"))
    assert result.code == 0, result.stderr
    assert "the file system cannot lock (No locks available)" in result.stdout
    assert save.joinpath(OURS[0]).exists()  # unlocked: nothing is deleted
