"""Helpers of the trainer tests (a uniquely named module: ``from conftest import`` would pick
whichever folder's conftest.py was imported first when the whole suite runs).

The toy data directory is the session fixture ``data_dir`` of ``tests/conftest.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nmt_preln.config import (
    CheckpointConfig,
    DataConfig,
    Device,
    HardwareConfig,
    ModelConfig,
    NormPosition,
    OptimConfig,
    ScheduleConfig,
    ScheduleName,
    TrainConfig,
)


def tiny_config(data_dir: str | Path, save_dir: Path, **overrides: Any) -> TrainConfig:
    """A 16-dim, 1+1-layer Pre-LN model trained on CPU for a few updates.

    ``overrides`` set top-level fields; nested ones go as ``arch=dict(...)`` and so on.
    """
    sections: dict[str, Any] = {
        "arch": ModelConfig(
            encoder_layers=1,
            decoder_layers=1,
            d_model=16,
            ffn_dim=32,
            num_heads=2,
            dropout=0.1,
            norm_position=NormPosition.pre,
        ),
        "data": DataConfig(path=str(data_dir), max_tokens=160, num_workers=0),
        "optim": OptimConfig(lr=3e-3),
        "schedule": ScheduleConfig(name=ScheduleName.constant, warmup_updates=0),
        "hardware": HardwareConfig(device=Device.cpu),
        "checkpoint": CheckpointConfig(save_dir=str(save_dir)),
    }
    for name in list(sections):
        for key, value in (overrides.pop(name, None) or {}).items():
            setattr(sections[name], key, value)
    defaults: dict[str, Any] = {"max_epoch": 2, "log_interval": 5, "progress_bar": False}
    return TrainConfig(**sections, **{**defaults, **overrides})


def read_log(save_dir: str | Path, split: str = "train") -> list[dict[str, Any]]:
    """The records of ``train_log.jsonl`` of one split."""
    lines = (Path(save_dir) / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return [r for r in records if r["split"] == split]
