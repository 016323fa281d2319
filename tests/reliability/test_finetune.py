"""Fine-tuning and fairseq's resets: what a run takes from the checkpoint it starts from.

``checkpoint.finetune_from_model`` takes the weights only and starts a new run (until the run
has its own ``checkpoint_last.pt``); ``reset_optimizer``, ``reset_lr_scheduler``,
``reset_dataloader`` and ``reset_meters`` each drop their part of a restored checkpoint.
Another optimizer than the checkpoint's stops with one line, or starts fresh with
``reset_optimizer`` (it used to fail at the first step with ``KeyError: 'momentum'``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from nmt_preln.cli import train as train_cli

from nmt_preln.checkpoint import store as ckpt
from nmt_preln.compose import compose_train_config
from nmt_preln.train.distributed import DistributedContext
from nmt_preln.train.session import Session, build_session

from .harness import TINY_TRAIN, assert_clean_failure, run_main


def _argv(data_dir: Path, save: Path, *extra: str) -> list[str]:
    return [*TINY_TRAIN, f"data.path={data_dir}", f"checkpoint.save_dir={save}", *extra]


@pytest.fixture
def session(data_dir: Path, tmp_path: Path) -> Iterator[Any]:
    """``session(*overrides)`` -> the Session nmt-train would build (nothing trained)."""
    opened: list[Session] = []

    def build(*extra: str) -> Session:
        cfg, _ = compose_train_config(_argv(data_dir, tmp_path / "run", *extra))
        with torch.random.fork_rng():
            opened.append(build_session(cfg, DistributedContext(), "cpu"))
        return opened[-1]

    yield build
    for s in opened:
        s.metrics.close()


@pytest.fixture
def decayed(trained: Path, tmp_path: Path) -> Path:
    """The trained checkpoint, with a step schedule's decay start recorded (update 3)."""
    state = ckpt.load_checkpoint(trained)
    state["scheduler"] = {"decay_start_update": 3}
    path = tmp_path / "decayed.pt"
    ckpt.save_checkpoint(path, state)
    return path


def _weights_equal(s: Session, state: dict[str, Any]) -> bool:
    ours = s.model.state_dict()
    return all(torch.equal(ours[k], v) for k, v in state["model"].items())


def test_finetune_takes_the_weights_and_nothing_else(session: Any, decayed: Path) -> None:
    state = ckpt.load_checkpoint(decayed)
    assert state["num_updates"] == 6 and state["best_metric"] is not None
    restored = session(f"checkpoint.restore_file={decayed}")
    assert _weights_equal(restored, state) and restored.optimizer.state
    assert restored.progress.num_updates == 6
    tuned = session(f"checkpoint.finetune_from_model={decayed}", "arch.dropout=0.2")
    assert _weights_equal(tuned, state)
    assert not tuned.optimizer.state  # no Adam moments
    p = tuned.progress
    assert (p.epoch, p.batch_index, p.num_updates, p.best_metric) == (1, 0, 0, None)
    assert tuned.scheduler.decay_start_update is None


@pytest.mark.parametrize("reset", ["none", "optimizer", "lr_scheduler", "dataloader", "meters"])
def test_each_reset_drops_its_part(session: Any, decayed: Path, reset: str) -> None:
    state = ckpt.load_checkpoint(decayed)
    extra = [] if reset == "none" else [f"checkpoint.reset_{reset}=true"]
    s = session(f"checkpoint.restore_file={decayed}", *extra)
    p, saved = s.progress, state["iterator"]
    assert _weights_equal(s, state)
    assert bool(s.optimizer.state) == (reset != "optimizer")
    # As in fairseq, the update count lives with the optimizer's history.
    assert p.num_updates == (0 if reset == "optimizer" else state["num_updates"])
    kept_schedule = reset not in ("optimizer", "lr_scheduler")
    assert s.scheduler.decay_start_update == (3 if kept_schedule else None)
    position = (1, 0) if reset == "dataloader" else (saved["epoch"], saved["batch_index"])
    assert (p.epoch, p.batch_index) == position
    kept_best = reset not in ("optimizer", "meters")
    assert p.best_metric == (state["best_metric"] if kept_best else None)


def test_finetune_then_restart_resumes_the_new_run(
    data_dir: Path, tmp_path: Path, trained: Path
) -> None:
    save = tmp_path / "tuned"
    argv = _argv(data_dir, save, f"checkpoint.finetune_from_model={trained}")
    first = run_main(train_cli.main, [*argv, "max_update=2"])
    assert first.code == 0, first.stderr
    assert f"fine-tuning from {trained}: weights only" in first.stdout
    assert ckpt.load_checkpoint(save / ckpt.LAST)["num_updates"] == 2
    again = run_main(train_cli.main, [*argv, "max_update=4"])  # the same command, restarted
    assert again.code == 0, again.stderr
    assert f"resumed from {save / ckpt.LAST}" in again.stdout
    assert ckpt.load_checkpoint(save / ckpt.LAST)["num_updates"] == 4


def test_another_optimizer_needs_reset_optimizer(
    data_dir: Path, tmp_path: Path, trained: Path
) -> None:
    sgd = ["optim=sgd", "optim.momentum=0.9", f"checkpoint.restore_file={trained}"]
    line = assert_clean_failure(
        run_main(train_cli.main, _argv(data_dir, tmp_path / "a", *sgd, "max_update=8")),
        "nmt-train",
    )
    assert "adam optimizer state" in line and "checkpoint.reset_optimizer=true" in line
    argv = _argv(data_dir, tmp_path / "b", *sgd, "checkpoint.reset_optimizer=true", "max_update=2")
    result = run_main(train_cli.main, argv)
    assert result.code == 0, result.stderr
    state = ckpt.load_checkpoint(tmp_path / "b" / ckpt.LAST)
    assert state["num_updates"] == 2
    assert state["optimizer"]["param_groups"][0]["momentum"] == 0.9
    assert all("momentum_buffer" in v for v in state["optimizer"]["state"].values())


def test_this_runs_optimizer_settings_win_over_the_checkpoints(session: Any, trained: Path) -> None:
    saved = ckpt.load_checkpoint(trained)["optimizer"]["param_groups"][0]
    s = session(f"checkpoint.restore_file={trained}", "optim.betas=[0.8,0.9]", "optim.eps=1e-6")
    group = s.optimizer.param_groups[0]
    assert tuple(saved["betas"]) != (0.8, 0.9)
    assert tuple(group["betas"]) == (0.8, 0.9) and group["eps"] == 1e-6
    assert s.optimizer.state  # the moments were restored all the same


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["arch.d_model=32", "arch.ffn_dim=64"], "does not fit arch of this run (arch.d_model=16"),
        (["checkpoint.restore_file=x.pt"], "cannot be used together"),
        (["checkpoint.reset_dataloader=true"], "drop checkpoint.reset_dataloader"),
    ],
)
def test_finetune_errors_are_one_line(
    data_dir: Path, tmp_path: Path, trained: Path, extra: list[str], expected: str
) -> None:
    argv = _argv(data_dir, tmp_path / "run", f"checkpoint.finetune_from_model={trained}", *extra)
    line = assert_clean_failure(run_main(train_cli.main, [*argv, "max_update=1"]), "nmt-train")
    assert expected in line
