"""Out of memory on a batch: skip that update with a warning (as fairseq), abort when it repeats.

The model's forward is patched to raise the errors PyTorch raises when memory runs out (CUDA's
``torch.cuda.OutOfMemoryError`` and the CPU allocator's RuntimeError) on chosen training
batches; validation batches are left alone.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch
from nmt_preln.cli import train as train_cli

from nmt_preln.checkpoint import store as ckpt
from nmt_preln.models.transformer import Transformer
from nmt_preln.train import trainer

from .harness import TINY_TRAIN, assert_clean_failure, read_log, run_main

CUDA_OOM = torch.cuda.OutOfMemoryError(
    "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity)"
)
CPU_OOM = RuntimeError(
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 8589934592 bytes. Error code 12 (Cannot allocate memory)"
)


def _failing_forward(monkeypatch: pytest.MonkeyPatch, fail: Any, error: BaseException) -> None:
    """Make the training forward pass number n (1-based) raise ``error`` when ``fail(n)``."""
    real_forward, calls = Transformer.forward, []

    def forward(self: Transformer, *args: Any, **kwargs: Any) -> torch.Tensor:
        if self.training:
            calls.append(1)
            if fail(len(calls)):
                raise error
        return real_forward(self, *args, **kwargs)

    monkeypatch.setattr(Transformer, "forward", forward)


def _argv(data_dir: Path, save: Path, *extra: str) -> list[str]:
    return [*TINY_TRAIN, f"data.path={data_dir}", f"checkpoint.save_dir={save}", *extra]


@pytest.mark.parametrize("error", [CUDA_OOM, CPU_OOM], ids=["cuda", "cpu"])
def test_an_oom_batch_is_skipped_with_a_warning(
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    error: BaseException,
) -> None:
    _failing_forward(monkeypatch, lambda n: n in (3, 7, 8), error)
    save = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        result = run_main(train_cli.main, _argv(data_dir, save, "max_update=10"))
    assert result.code == 0, result.stderr
    warnings = [r.getMessage() for r in caplog.records if "out of memory" in r.getMessage()]
    assert len(warnings) == 3, warnings
    assert all("skipp" in w and "data.max_tokens" in w for w in warnings)
    log = read_log(save)
    assert [r["update"] for r in log] == list(range(1, 11))  # every update was still made
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log)
    state = ckpt.load_checkpoint(save / ckpt.LAST)
    # 10 updates took 13 batches: the three skipped ones were consumed, not retried.
    assert state["num_updates"] == 10
    assert state["iterator"] == {"epoch": 2, "batch_index": 2}


def test_repeated_oom_aborts_with_one_line(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_forward(monkeypatch, lambda n: n >= 4, CUDA_OOM)
    save = tmp_path / "run"
    result = run_main(
        train_cli.main, _argv(data_dir, save, "max_update=20", "checkpoint.save_interval_updates=1")
    )
    line = assert_clean_failure(result, "nmt-train")
    assert "out of memory" in line and "data.max_tokens" in line
    assert f"{trainer.MAX_OOM_UPDATES} updates in a row" in line
    assert ckpt.load_checkpoint(save / ckpt.LAST)["num_updates"] == 3


def test_other_runtime_errors_are_not_swallowed(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_forward(monkeypatch, lambda n: n == 2, RuntimeError("mat1 and mat2 shapes differ"))
    with pytest.raises(AssertionError, match="mat1 and mat2"):  # a bug must stay loud
        run_main(train_cli.main, _argv(data_dir, tmp_path / "run", "max_update=5"))
