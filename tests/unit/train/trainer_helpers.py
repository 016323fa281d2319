"""Helpers of the trainer tests (a uniquely named module: ``from conftest import`` would pick
whichever folder's conftest.py was imported first when the whole suite runs)."""

from __future__ import annotations

import json
import random
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
    PreprocessConfig,
    ScheduleConfig,
    ScheduleName,
    Segmentation,
    TrainConfig,
)
from nmt_preln.data.preprocess import preprocess

_WORDS = [f"w{i}" for i in range(24)]


def write_corpus(prefix: Path, n: int, *, seed: int) -> None:
    """A learnable toy task: the target is the source reversed, each word renamed."""
    rng = random.Random(seed)
    src_lines, tgt_lines = [], []
    for _ in range(n):
        words = [rng.choice(_WORDS) for _ in range(rng.randint(2, 9))]
        src_lines.append(" ".join(words))
        tgt_lines.append(" ".join(w.replace("w", "v") for w in reversed(words)))
    prefix.with_suffix(".de").write_text("\n".join(src_lines) + "\n", encoding="utf-8")
    prefix.with_suffix(".en").write_text("\n".join(tgt_lines) + "\n", encoding="utf-8")


def make_data_dir(dest: Path, *, train_pairs: int = 240, valid_pairs: int = 40) -> str:
    """Generate the toy corpus and run ``preprocess`` on it (de->en, whitespace segmentation)."""
    raw = dest.parent / f"{dest.name}-raw"
    raw.mkdir(parents=True, exist_ok=True)
    write_corpus(raw / "train", train_pairs, seed=1)
    write_corpus(raw / "valid", valid_pairs, seed=2)
    preprocess(
        PreprocessConfig(
            source_lang="de",
            target_lang="en",
            trainpref=str(raw / "train"),
            validpref=str(raw / "valid"),
            destdir=str(dest),
            segmentation=Segmentation.none,
        )
    )
    return str(dest)


def tiny_config(data_dir: str, save_dir: Path, **overrides: Any) -> TrainConfig:
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
        "data": DataConfig(path=data_dir, max_tokens=160, num_workers=0),
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
