"""Non-finite losses, gradients and weights: skip what is skippable, stop clearly otherwise.

* fp16 overflow (a real float16 overflow on the CPU): the loss scaler skips the step, leaves
  the weights alone and halves the scale; below ``hardware.min_loss_scale`` it stops.
* a persistently NaN loss in fp32: the trainer skips, then stops with a message naming the
  update and the usual causes; the last good checkpoint is untouched.
* weights that became NaN: no checkpoint is written over the good ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from nmt_preln.cli import train as train_cli

from nmt_preln.checkpoint import store as ckpt
from nmt_preln.train import trainer
from nmt_preln.train.optim import DynamicLossScaler, LossScaleError, clip_grad_norm

from .harness import TINY_TRAIN, assert_clean_failure, read_log, run_main


def _overflowing_update(
    weight: torch.nn.Parameter, scaler: DynamicLossScaler, optimizer: torch.optim.Optimizer
) -> bool:
    loss = (weight.half() * 10000.0).sum()  # 40000: finite in fp16 until scaled
    scaler.scale(loss).backward()  # 40000 * scale >= 2 > 65504: fp16 overflows
    scaler.unscale_([weight])
    stepped = scaler.step(optimizer, grad_norm=clip_grad_norm([weight], 0.0))
    optimizer.zero_grad(set_to_none=True)
    return stepped


def test_fp16_overflow_is_skipped_and_halves_the_scale() -> None:
    weight = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    scaler = DynamicLossScaler(init_scale=128.0, scale_window=2, min_scale=1e-4)

    assert not _overflowing_update(weight, scaler, optimizer)
    assert scaler.loss_scale == 64.0
    assert torch.equal(weight.detach(), torch.ones(4))  # the step was not taken

    # A finite fp16 loss at the lowered scale steps normally; the window then doubles it.
    for _ in range(2):
        scaler.scale((weight.half() * 1.0).sum()).backward()
        scaler.unscale_([weight])
        assert scaler.step(optimizer, grad_norm=clip_grad_norm([weight], 0.0))
        optimizer.zero_grad(set_to_none=True)
    assert scaler.loss_scale == 128.0
    assert torch.isfinite(weight).all() and not torch.equal(weight.detach(), torch.ones(4))


def test_persistent_fp16_overflow_stops_at_the_floor() -> None:
    weight = torch.nn.Parameter(torch.ones(4))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    scaler = DynamicLossScaler(init_scale=128.0, scale_window=2, min_scale=8.0)
    with pytest.raises(LossScaleError) as info:
        for _ in range(10):
            _overflowing_update(weight, scaler, optimizer)
    message = str(info.value)
    assert "hardware.min_loss_scale" in message and "\n" not in message
    assert torch.equal(weight.detach(), torch.ones(4))


def _argv(data_dir: Path, save: Path, *extra: str) -> list[str]:
    return [
        *TINY_TRAIN,
        f"data.path={data_dir}",
        f"checkpoint.save_dir={save}",
        "checkpoint.save_interval_updates=1",
        *extra,
    ]


def test_persistent_nan_loss_stops_naming_the_update(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_loss, calls = trainer.label_smoothed_cross_entropy, []

    def nan_from_the_fourth_batch(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
        calls.append(1)
        loss, nll = real_loss(*args, **kwargs)
        return (loss * float("nan"), nll) if len(calls) >= 4 else (loss, nll)

    monkeypatch.setattr(trainer, "label_smoothed_cross_entropy", nan_from_the_fourth_batch)
    save = tmp_path / "run"
    line = assert_clean_failure(
        run_main(train_cli.main, _argv(data_dir, save, "max_update=20")), "nmt-train"
    )
    assert "update 4:" in line and "non-finite" in line
    assert "optim.lr" in line and "warmup_updates" in line  # the usual causes
    assert len(calls) == 3 + trainer.MAX_NONFINITE_UPDATES
    state = ckpt.load_checkpoint(save / ckpt.LAST)
    assert state["num_updates"] == 3
    assert all(torch.isfinite(w).all() for w in state["model"].values())
    assert [r["update"] for r in read_log(save)] == [1, 2, 3]


def test_nan_weights_never_replace_a_good_checkpoint(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step, steps = torch.optim.Adam.step, []

    def poisoning_step(self: torch.optim.Adam, *args: Any, **kwargs: Any) -> Any:
        result = real_step(self, *args, **kwargs)
        steps.append(1)
        if len(steps) == 4:  # the weights blow up although the gradient was finite
            with torch.no_grad():
                self.param_groups[0]["params"][0].fill_(float("inf"))
        return result

    monkeypatch.setattr(torch.optim.Adam, "step", poisoning_step)
    save = tmp_path / "run"
    line = assert_clean_failure(
        run_main(train_cli.main, _argv(data_dir, save, "max_update=20")), "nmt-train"
    )
    assert "update 4:" in line and "not saving" in line
    for path in save.glob("*.pt"):
        state = ckpt.load_checkpoint(path)
        assert state["num_updates"] <= 3
        assert all(torch.isfinite(w).all() for w in state["model"].values())
    assert ckpt.load_checkpoint(save / ckpt.LAST)["num_updates"] == 3
