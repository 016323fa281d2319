"""nmt-average: mean weights, the rest from the newest checkpoint, fairseq's file selection."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
from nmt_preln.cli.average import main

from nmt_preln.checkpoint.average import average, select_checkpoints
from nmt_preln.checkpoint.store import (
    FORMAT_VERSION,
    config_to_plain,
    load_checkpoint,
    save_checkpoint,
)
from nmt_preln.config import ModelConfig
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.errors import UserError
from nmt_preln.models.transformer import build_model
from nmt_preln.tools_config import AverageConfig

SYMBOLS = ["<s>", "<pad>", "</s>", "<unk>", "a", "b"]
ARCH = ModelConfig(encoder_layers=1, decoder_layers=1, d_model=8, ffn_dim=8, num_heads=2)
HALF = "encoder.final_norm.bias"  # stored in float16: the average keeps each weight's dtype


def write(path: Path, value: float, *, updates: int, ffn_dim: int = 8) -> Path:
    """A checkpoint of a tiny model (load_checkpoint validates it) whose weights all equal value."""
    arch = dataclasses.replace(ARCH, ffn_dim=ffn_dim)
    d = Dictionary.from_symbols(SYMBOLS)
    weights = {
        k: torch.full_like(v, value) for k, v in build_model(arch, d, d).state_dict().items()
    }
    weights[HALF] = weights[HALF].half()
    state = {
        "format_version": FORMAT_VERSION,
        "model": weights,
        "config": {"arch": config_to_plain(arch)},
        "src_dict": SYMBOLS,
        "tgt_dict": SYMBOLS,
        "num_updates": updates,
        "best_metric": float(updates),
    }
    save_checkpoint(path, state)
    return path


def test_average_of_three(tmp_path: Path) -> None:
    paths = [
        write(tmp_path / f"c{i}.pt", v, updates=u)
        for i, (v, u) in enumerate([(1.0, 10), (2.0, 30), (6.0, 20)])
    ]
    average(AverageConfig(inputs=[str(p) for p in paths], output=str(tmp_path / "avg.pt")))
    state = load_checkpoint(tmp_path / "avg.pt", kind="model")
    fc1 = state["model"]["encoder.layers.0.ffn.fc1.weight"]
    assert torch.equal(fc1, torch.full_like(fc1, 3.0))
    assert state["model"][HALF].dtype == torch.float16 and float(state["model"][HALF][0]) == 3.0
    assert state["num_updates"] == 30 and state["best_metric"] == 30.0  # the newest's


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
    b = write(tmp_path / "b.pt", 3.0, updates=2, ffn_dim=16)
    assert main(["--inputs", str(a), str(b), "--output", str(tmp_path / "o.pt")]) == 1
    assert "b.pt: config.arch.ffn_dim=16, but 8 in" in capsys.readouterr().err
    c = write(tmp_path / "c.pt", 3.0, updates=2)
    assert main(["--inputs", str(a), str(c), "--output", str(tmp_path / "o.pt")]) == 0
    fc1 = load_checkpoint(tmp_path / "o.pt", kind="model")["model"][
        "encoder.layers.0.ffn.fc1.weight"
    ]
    assert float(fc1[0, 0]) == 2.0
    assert main(["--inputs", str(tmp_path / "nope.pt"), "--output", str(tmp_path / "o.pt")]) == 1
    assert "nope.pt does not exist" in capsys.readouterr().err
