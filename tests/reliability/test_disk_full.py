"""A full disk or an unusable save directory: the last good checkpoint survives, one clear line.

Tests run as root, so chmod cannot make a directory unwritable: a full disk is simulated by
patching the writer (torch's serializer, the copy, fsync) to fail half-way, and an unusable
directory is a path below a regular file.
"""

from __future__ import annotations

import errno
import io
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from nmt_preln.cli import train as train_cli

from nmt_preln.checkpoint import store as ckpt

from .harness import TINY_TRAIN, assert_clean_failure, read_log, run_main

ENOSPC = OSError(errno.ENOSPC, "No space left on device")


def _state(value: float) -> dict[str, Any]:
    return {"format_version": ckpt.FORMAT_VERSION, "model": {"w": torch.full((64, 64), value)}}


REAL_SAVE = torch.save


def _half_then(error: BaseException) -> Callable[..., None]:
    """A torch.save that writes half of the real bytes, then fails like a full disk."""

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        buffer = io.BytesIO()
        REAL_SAVE(obj, buffer)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        raise error

    return save


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (ENOSPC, "No space left on device"),
        # torch's zip writer reports a failed write as a RuntimeError with its own wording.
        (RuntimeError("[enforce fail] file write failed\nmore detail"), "file write failed"),
        (OSError(errno.EIO, "Input/output error"), "Input/output error"),
    ],
)
def test_a_failed_write_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: BaseException, reason: str
) -> None:
    path = tmp_path / ckpt.LAST
    ckpt.save_checkpoint(path, _state(1.0))
    before = path.read_bytes()
    monkeypatch.setattr(torch, "save", _half_then(error))
    with pytest.raises(ckpt.CheckpointError) as info:
        ckpt.save_checkpoint(path, _state(2.0))
    message = str(info.value)
    assert "\n" not in message and str(path) in message and reason in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [ckpt.LAST]  # no temp file left


def test_a_failed_fsync_or_copy_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    last, best = tmp_path / ckpt.LAST, tmp_path / ckpt.BEST
    ckpt.save_checkpoint(last, _state(1.0))
    ckpt.copy_checkpoint(last, best)
    before = best.read_bytes()
    ckpt.save_checkpoint(tmp_path / "new.pt", _state(3.0))

    def broken_copy(src: Any, dst: Any, *args: Any) -> None:
        dst.write(src.read(100))
        raise ENOSPC

    monkeypatch.setattr(shutil, "copyfileobj", broken_copy)
    with pytest.raises(ckpt.CheckpointError, match="No space left on device"):
        ckpt.copy_checkpoint(tmp_path / "new.pt", best)
    monkeypatch.undo()

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EDQUOT, "Disk quota exceeded")

    monkeypatch.setattr(ckpt.os, "fsync", broken_fsync)
    with pytest.raises(ckpt.CheckpointError, match="Disk quota exceeded"):
        ckpt.copy_checkpoint(tmp_path / "new.pt", best)
    assert best.read_bytes() == before
    # A bare state (no config): read it raw, load_checkpoint would ask for the training fields.
    assert torch.load(best, weights_only=True)["model"]["w"][0, 0] == 1.0
    assert not list(tmp_path.glob(".*.tmp"))


def _argv(data_dir: Path, save: Path, *extra: str) -> list[str]:
    return [*TINY_TRAIN, f"data.path={data_dir}", f"checkpoint.save_dir={save}", *extra]


def test_disk_fills_up_during_training(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save = tmp_path / "run"
    calls = []

    def filling_disk(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(obj.get("num_updates") if isinstance(obj, dict) else None)
        if len(calls) <= 3:
            REAL_SAVE(obj, f, *args, **kwargs)
        else:
            _half_then(ENOSPC)(obj, f)

    monkeypatch.setattr(torch, "save", filling_disk)
    result = run_main(
        train_cli.main, _argv(data_dir, save, "max_update=8", "checkpoint.save_interval_updates=1")
    )
    line = assert_clean_failure(result, "nmt-train")
    assert "cannot write checkpoint" in line and "No space left on device" in line
    assert str(save) in line
    # Update 3's checkpoint is the last good one; nothing half-written replaced it.
    monkeypatch.undo()
    assert ckpt.load_checkpoint(save / ckpt.LAST)["num_updates"] == 3
    for path in save.glob("*.pt"):
        ckpt.load_checkpoint(path)
    assert not list(save.glob(".*.tmp"))
    assert max(r["update"] for r in read_log(save)) == 4  # the update whose save failed


def test_save_dir_below_a_file(data_dir: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory\n")
    result = run_main(train_cli.main, _argv(data_dir, blocker / "run", "max_update=2"))
    line = assert_clean_failure(result, "nmt-train")
    assert str(blocker) in line


def test_disk_fills_up_while_logging(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nmt_preln.train import metrics

    real_open, appends = open, []

    # Every update here appends twice: its train record, then the validation that each
    # mid-epoch save runs (as fairseq). Six appends are updates 1-3; update 4's train line fails.
    def full_after_six_appends(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if str(path).endswith("train_log.jsonl") and mode == "a":
            appends.append(1)
            if len(appends) > 6:
                raise ENOSPC
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(metrics, "open", full_after_six_appends, raising=False)
    save = tmp_path / "run"
    result = run_main(
        train_cli.main, _argv(data_dir, save, "max_update=8", "checkpoint.save_interval_updates=1")
    )
    line = assert_clean_failure(result, "nmt-train")
    assert "train_log.jsonl" in line and "No space left on device" in line
    assert ckpt.load_checkpoint(save / ckpt.LAST)["num_updates"] == 3
