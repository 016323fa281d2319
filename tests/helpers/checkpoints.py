"""Tiny checkpoints: trained for a few updates, or random weights in the documented format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from nmt_preln.checkpoint.store import FORMAT_VERSION, LAST, config_to_plain, save_checkpoint
from nmt_preln.config import ModelConfig
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.models.transformer import build_model

# A 16-dim 1+1-layer Pre-LN model, one thread, logging every update (train_log.jsonl is the
# record the kill tests compare), validating and saving often so kills land in both.
TINY_TRAIN = [
    "+arch=preln_tiny",
    "hardware=cpu",
    "hardware.num_threads=1",
    "arch.encoder_layers=1",
    "arch.decoder_layers=1",
    "arch.d_model=16",
    "arch.ffn_dim=32",
    "arch.max_positions=128",  # cheap to decode up to the limit in the fuzz tests
    "schedule=constant",
    "optim.lr=3e-3",
    "data.max_tokens=160",
    "data.num_workers=0",
    "log_interval=1",
    "log_layer_grad_norms=false",
    "progress_bar=false",
    "tensorboard_dir=null",
]


def train_tiny(data_dir: Path, save_dir: Path, *overrides: str, max_update: int = 6) -> Path:
    """Train the :data:`TINY_TRAIN` model in-process for ``max_update`` updates.

    In-process (one torch start-up less) and inside ``fork_rng``, so the global random state
    of the calling test stays as it was.

    Args:
        data_dir: a finished nmt-preprocess directory.
        save_dir: the checkpoint folder to create.
        overrides: further nmt-train overrides, e.g. ``"arch.norm_position=post"``.
        max_update: number of updates.

    Returns:
        The path of ``checkpoint_last.pt``.
    """
    from nmt_preln.compose import compose_train_config
    from nmt_preln.train.trainer import train

    argv = [*TINY_TRAIN, f"data.path={data_dir}", f"checkpoint.save_dir={save_dir}"]
    cfg, _ = compose_train_config([*argv, f"max_update={max_update}", *overrides])
    with torch.random.fork_rng():
        train(cfg)
    return save_dir / LAST


def random_checkpoint(
    data_dir: Path,
    path: Path,
    *,
    seed: int = 0,
    arch: ModelConfig | None = None,
    num_updates: int = 0,
) -> Path:
    """Save a random-weight model for ``data_dir`` (de -> en) as a checkpoint at ``path``.

    Args:
        data_dir: a finished nmt-preprocess directory (its dictionaries and SentencePiece
            models go into the checkpoint).
        path: where to save.
        seed: torch seed of the initialisation.
        arch: the model (default: 1+1 layers, d_model 16, no dropout, 64 positions).
        num_updates: the update count recorded in the checkpoint.

    Returns:
        ``path``.
    """
    if arch is None:
        arch = ModelConfig(
            encoder_layers=1,
            decoder_layers=1,
            d_model=16,
            ffn_dim=32,
            num_heads=2,
            dropout=0.0,
            max_positions=64,
        )
    manifest = json.loads((data_dir / "manifest.json").read_text())
    src_dict = Dictionary.load(data_dir / "dict.de.txt")
    tgt_dict = Dictionary.load(data_dir / "dict.en.txt")
    torch.manual_seed(seed)
    model = build_model(arch, src_dict, tgt_dict)
    spm = {lang: (data_dir / name).read_bytes() for lang, name in manifest["spm_models"].items()}
    state = {
        "format_version": FORMAT_VERSION,
        "model": model.state_dict(),
        "config": {"arch": config_to_plain(arch)},
        "src_dict": src_dict.symbols,
        "tgt_dict": tgt_dict.symbols,
        "spm_models": spm,
        "source_lang": "de",
        "target_lang": "en",
        "num_updates": num_updates,
    }
    save_checkpoint(path, state)
    return path


def translate_lines(path: Path, lines: list[str], *, beam: int) -> list[str]:
    """Translate whitespace-segmented ``lines`` with the checkpoint at ``path`` (CPU, fp32)."""
    from nmt_preln.config import SearchConfig
    from nmt_preln.search.source_items import SourceItem
    from nmt_preln.search.translator import Translator, load_ensemble

    ensemble = load_ensemble(str(path), device=torch.device("cpu"))
    items = [
        SourceItem(id=i, src=np.array(ensemble.src_dict.encode(line.split()), dtype=np.int64))
        for i, line in enumerate(lines)
    ]
    translator = Translator(ensemble, search=SearchConfig(beam=beam), device=torch.device("cpu"))
    hyps = translator.translate(items)
    return [ensemble.tgt_dict.string(h[0].tokens) for h in hyps]
