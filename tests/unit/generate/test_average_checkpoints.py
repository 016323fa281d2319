"""nmt-average: mean weights, the rest from the newest checkpoint, fairseq's file selection."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from nmt_preln.cli.average import main

from nmt_preln.config import AverageConfig
from nmt_preln.errors import UserError
from nmt_preln.generate.average import average, select_checkpoints
from nmt_preln.train.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint


def write(path: Path, value: float, *, updates: int, extra: str = "w") -> Path:
    state = {
        "format_version": FORMAT_VERSION,
        "model": {
            extra: torch.full((2, 3), value),
            "half": torch.full((2,), value, dtype=torch.float16),
            "steps": torch.tensor([updates]),
        },
        "optimizer": {"lr": updates},
        "num_updates": updates,
    }
    save_checkpoint(path, state)
    return path


def test_average_of_three(tmp_path: Path) -> None:
    paths = [
        write(tmp_path / f"c{i}.pt", v, updates=u)
        for i, (v, u) in enumerate([(1.0, 10), (2.0, 30), (6.0, 20)])
    ]
    average(AverageConfig(inputs=[str(p) for p in paths], output=str(tmp_path / "avg.pt")))
    state = load_checkpoint(tmp_path / "avg.pt")
    assert torch.equal(state["model"]["w"], torch.full((2, 3), 3.0))
    assert state["model"]["half"].dtype == torch.float16 and float(state["model"]["half"][0]) == 3.0
    assert state["model"]["steps"].tolist() == [30]  # non-float entries: the newest's
    assert state["num_updates"] == 30 and state["optimizer"] == {"lr": 30}


def test_selects_the_last_epoch_or_update_checkpoints(tmp_path: Path) -> None:
    for epoch in (1, 2, 3, 10):
        write(tmp_path / f"checkpoint{epoch}.pt", float(epoch), updates=epoch * 100)
        write(tmp_path / f"checkpoint_{epoch}_{epoch * 100}.pt", float(epoch), updates=epoch * 100)
    write(tmp_path / "checkpoint_last.pt", 99.0, updates=1000)
    cfg = AverageConfig(inputs=[str(tmp_path)], output="x", num_epoch_checkpoints=2)
    assert [p.name for p in select_checkpoints(cfg)] == ["checkpoint10.pt", "checkpoint3.pt"]
    cfg = AverageConfig(
        inputs=[str(tmp_path)], output="x", num_update_checkpoints=3, checkpoint_upper_bound=300
    )
    assert [p.name for p in select_checkpoints(cfg)] == [
        "checkpoint_3_300.pt",
        "checkpoint_2_200.pt",
        "checkpoint_1_100.pt",
    ]
    with pytest.raises(UserError, match=r"4 checkpoints match .* 5 requested"):
        select_checkpoints(
            AverageConfig(inputs=[str(tmp_path)], output="x", num_epoch_checkpoints=5)
        )
    with pytest.raises(UserError, match="directory needs"):
        select_checkpoints(AverageConfig(inputs=[str(tmp_path)], output="x"))


def test_mismatched_models_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write(tmp_path / "a.pt", 1.0, updates=1)
    b = write(tmp_path / "b.pt", 3.0, updates=2, extra="other")
    assert main(["--inputs", str(a), str(b), "--output", str(tmp_path / "o.pt")]) == 1
    assert "b.pt: its weights have other names than" in capsys.readouterr().err
    c = write(tmp_path / "c.pt", 3.0, updates=2)
    assert main(["--inputs", str(a), str(c), "--output", str(tmp_path / "o.pt")]) == 0
    assert float(load_checkpoint(tmp_path / "o.pt")["model"]["w"][0, 0]) == 2.0
    assert main(["--inputs", str(tmp_path / "nope.pt"), "--output", str(tmp_path / "o.pt")]) == 1
    assert "nope.pt does not exist" in capsys.readouterr().err
