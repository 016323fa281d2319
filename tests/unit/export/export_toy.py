"""Small trained checkpoints for the export tests (on the generate tests' toy corpus)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from nmt_preln.checkpoint.store import (
    FORMAT_VERSION,
    config_to_plain,
    save_checkpoint,
)
from nmt_preln.config import ModelConfig, NormPosition
from nmt_preln.data.collate import collate_indices
from nmt_preln.data.dataset import LanguagePairDataset
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.models.transformer import build_model


def _fit(model: torch.nn.Module, data_dir: Path, *, steps: int) -> None:
    """A few Adam steps on the toy corpus, so that greedy outputs differ between sentences."""
    data = LanguagePairDataset(str(data_dir), "train")
    batch = collate_indices(data, np.arange(len(data)))
    assert batch.prev_output_tokens is not None and batch.target is not None
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(steps):
        logits = model(batch.src_tokens, batch.prev_output_tokens)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.target.flatten(), ignore_index=1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


def make_checkpoint(data_dir: Path, path: Path, *, norm: NormPosition, seed: int = 0) -> Path:
    """A random 2+2-layer d32 model with tied embeddings (joined dictionary) at ``path``."""
    src_dict = Dictionary.load(data_dir / "dict.de.txt")
    tgt_dict = Dictionary.load(data_dir / "dict.en.txt")
    arch = ModelConfig(
        encoder_layers=2,
        decoder_layers=2,
        d_model=32,
        ffn_dim=64,
        num_heads=4,
        dropout=0.0,
        max_positions=64,
        norm_position=norm,
        share_all_embeddings=True,
    )
    torch.manual_seed(seed)
    model = build_model(arch, src_dict, tgt_dict)
    with torch.no_grad():  # LayerNorm gains/biases away from 1/0, so a misplaced one shows
        for name, param in model.named_parameters():
            if "norm" in name:
                param.add_(0.3 * torch.randn_like(param))
    _fit(model, data_dir, steps=40)
    state = {
        "format_version": FORMAT_VERSION,
        "model": model.state_dict(),
        "config": {"arch": config_to_plain(arch)},
        "src_dict": src_dict.symbols,
        "tgt_dict": tgt_dict.symbols,
        "spm_models": {"de": (data_dir / "spm.model").read_bytes()},
        "source_lang": "de",
        "target_lang": "en",
        "num_updates": 0,
    }
    save_checkpoint(path, state)
    return path
