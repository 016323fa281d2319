"""Resuming equals never stopping: same per-update losses, mid-epoch and at epoch ends."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.train_log import without_clock
from trainer_helpers import read_log

from nmt_preln.checkpoint.store import LAST, load_checkpoint
from nmt_preln.config import TrainConfig
from nmt_preln.errors import UserError
from nmt_preln.train.trainer import train

pytestmark = pytest.mark.usefixtures("one_thread")
MakeConfig = Callable[..., TrainConfig]
# 240 pairs at max_tokens=160 give 11 updates per epoch: update 16 is mid-epoch 2.
TOTAL, STOP = 16, 7


def _losses(cfg: TrainConfig) -> list[tuple[int, int, float, float, float]]:
    return [
        (r["epoch"], r["update"], r["loss"], r["nll"], r["gnorm"])
        for r in read_log(cfg.checkpoint.save_dir)
    ]


def _uninterrupted(make_config: MakeConfig, **overrides: Any) -> TrainConfig:
    cfg = make_config(save="uninterrupted", **overrides)
    train(cfg)
    return cfg


def test_resume_mid_epoch_reproduces_every_update(make_config: MakeConfig) -> None:
    # dropout 0.1 (the default here) makes the RNG state part of what must be restored.
    whole = _uninterrupted(
        make_config, max_update=TOTAL, checkpoint={"save_interval_updates": STOP}
    )
    train(make_config(save="resumed", max_update=STOP))
    state = load_checkpoint(Path(make_config(save="resumed").checkpoint.save_dir) / LAST)
    assert state["iterator"]["epoch"] == 1 and state["iterator"]["batch_index"] > 0
    resumed = make_config(save="resumed", max_update=TOTAL)
    result = train(resumed)

    assert result["num_updates"] == TOTAL
    assert _losses(resumed) == _losses(whole)
    assert len(_losses(whole)) == TOTAL

    def epoch_end_validation(cfg: TrainConfig) -> list[dict[str, Any]]:
        valid = read_log(cfg.checkpoint.save_dir, "valid")
        return without_clock([r for r in valid if r["update"] == 11])

    assert epoch_end_validation(resumed) == epoch_end_validation(whole) != []


def test_resume_at_an_epoch_boundary(make_config: MakeConfig) -> None:
    whole = _uninterrupted(make_config, max_epoch=2)
    train(make_config(save="resumed", max_epoch=1))
    resumed = make_config(save="resumed", max_epoch=2)
    result = train(resumed)
    assert _losses(resumed) == _losses(whole)
    assert {epoch for epoch, *_ in _losses(resumed)} == {1, 2}
    again = train(resumed)  # already finished: nothing more to do
    assert (again["epoch"], again["num_updates"]) == (2, result["num_updates"])
    assert _losses(resumed) == _losses(whole)
    assert sorted(p.name for p in Path(resumed.checkpoint.save_dir).glob("checkpoint?.pt")) == [
        "checkpoint1.pt",
        "checkpoint2.pt",
    ]


def test_updates_logged_after_the_last_checkpoint_are_replaced(make_config: MakeConfig) -> None:
    whole = _uninterrupted(make_config, max_update=TOTAL)
    crashed = make_config(save="crashed", max_update=10, checkpoint={"save_interval_updates": STOP})
    train(crashed)
    save_dir = Path(crashed.checkpoint.save_dir)
    # As if killed after update 10 was logged but before its checkpoint was written.
    shutil.copyfile(save_dir / f"checkpoint_1_{STOP}.pt", save_dir / LAST)
    assert max(u for _, u, *_ in _losses(crashed)) == 10
    resumed = make_config(save="crashed", max_update=TOTAL)
    train(resumed)
    assert _losses(resumed) == _losses(whole)


def test_restore_file_and_mismatched_architecture(make_config: MakeConfig) -> None:
    first = make_config(save="first", max_update=3)
    train(first)
    source = str(Path(first.checkpoint.save_dir) / LAST)
    warm = make_config(save="second", max_update=5, checkpoint={"restore_file": source})
    assert train(warm)["num_updates"] == 5
    wider = make_config(save="third", arch={"d_model": 32}, checkpoint={"restore_file": source})
    with pytest.raises(UserError, match=r"checkpoint_last\.pt: does not fit arch"):
        train(wider)
