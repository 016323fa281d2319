"""Tiny Transformers and token batches for the model tests (d_model 32, 2 layers)."""

from dataclasses import replace
from typing import Any

import torch

from nmt_preln.config import ModelConfig, NormPosition
from nmt_preln.models.transformer import Transformer

PAD = 1
EOS = 2
SRC_VOCAB = 40
TGT_VOCAB = 48


def tiny_config(norm_position: NormPosition = NormPosition.pre, **overrides: Any) -> ModelConfig:
    cfg = ModelConfig(
        norm_position=norm_position,
        encoder_layers=2,
        decoder_layers=2,
        d_model=32,
        ffn_dim=64,
        num_heads=4,
        dropout=0.1,
        attention_dropout=0.1,
        activation_dropout=0.1,
        max_positions=64,
    )
    return replace(cfg, **overrides)


def tiny_model(norm_position: NormPosition = NormPosition.pre, **overrides: Any) -> Transformer:
    """A tiny Transformer in eval mode (dropout off)."""
    cfg = tiny_config(norm_position, **overrides)
    model = Transformer(cfg, src_vocab_size=SRC_VOCAB, tgt_vocab_size=TGT_VOCAB, pad=PAD)
    return model.eval()


def random_tokens(lengths: list[int], *, vocab: int, first: int | None = None) -> torch.Tensor:
    """A right-padded (B, max(lengths)) batch of random real tokens (ids >= 4)."""
    batch = torch.full((len(lengths), max(lengths)), PAD, dtype=torch.long)
    for row, length in enumerate(lengths):
        batch[row, :length] = torch.randint(4, vocab, (length,))
        if first is not None:
            batch[row, 0] = first
    return batch
