"""The encoder-decoder Transformer of fairseq's ``transformer`` family, Pre-LN or Post-LN.

Read top to bottom: positions -> embeddings -> encoder -> decoder (full and incremental, with a
preallocated key/value cache) -> the model -> builders.  Batches are batch-first and
right-padded; position t is simply the t-th token (0-based), so source padding never shifts the
positions of real tokens and ``decode_step`` number n sits at position n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn

from nmt_preln.config import ModelConfig
from nmt_preln.errors import UserError
from nmt_preln.models.attention import MultiheadAttention
from nmt_preln.models.decoder_cache import DecoderCache
from nmt_preln.models.layers import DecoderLayer, Dropout, EncoderLayer, FeedForward
from nmt_preln.models.placement import placement_of


def sinusoidal_table(num_positions: int, d_model: int) -> Tensor:
    """fairseq's sinusoidal table: the first half of each row is sin, the second half cos.

    PE[p, i] = sin(p * w_i) and PE[p, half + i] = cos(p * w_i), with
    w_i = 10000^(-i / (half - 1)), half = d_model // 2 (an odd d_model gets a zero last column).

    Returns:
        (num_positions, d_model) float32.
    """
    half = d_model // 2
    rate = math.log(10000) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * -rate)  # (half,)
    angles = torch.arange(num_positions, dtype=torch.float32)[:, None] * freqs[None]  # (P, half)
    table = torch.cat([angles.sin(), angles.cos()], dim=1)  # (P, 2*half)
    if d_model % 2:
        table = torch.cat([table, table.new_zeros(num_positions, 1)], dim=1)  # (P, D)
    return table


class SinusoidalPositions(nn.Module):
    """Fixed positions; the table is precomputed up to ``max_positions`` and extended on demand."""

    def __init__(self, d_model: int, *, max_positions: int) -> None:
        super().__init__()
        self.d_model = d_model
        # Not persistent: derived from the config, so checkpoints do not carry it.
        self.register_buffer("table", sinusoidal_table(max_positions, d_model), persistent=False)

    def forward(self, start: int, length: int) -> Tensor:
        """Embeddings of positions [start, start + length): (length, d_model)."""
        table: Tensor = self.table  # type: ignore[assignment]
        if start + length > table.size(0):
            table = sinusoidal_table(start + length, self.d_model).to(table)  # (P', D)
        return table[start : start + length]  # (T, D)


class LearnedPositions(nn.Module):
    """Learned positions, N(0, d_model^-0.5) like fairseq's LearnedPositionalEmbedding."""

    def __init__(self, d_model: int, *, max_positions: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(max_positions, d_model) * d_model**-0.5)  # (P, D)

    def forward(self, start: int, length: int) -> Tensor:
        """Embeddings of positions [start, start + length): (length, d_model)."""
        if start + length > self.weight.size(0):
            raise UserError(
                f"a sequence of {start + length} tokens is longer than "
                f"arch.max_positions={self.weight.size(0)} (learned positions)"
            )
        return self.weight[start : start + length]  # (T, D)


class TransformerEmbedding(nn.Module):
    """dropout(sqrt(d_model) * E[token] + PE[position])."""

    def __init__(self, embed_tokens: nn.Embedding, cfg: ModelConfig) -> None:
        super().__init__()
        self.embed_tokens = embed_tokens
        self.scale = math.sqrt(cfg.d_model)
        position_cls = LearnedPositions if cfg.learned_positions else SinusoidalPositions
        self.positions = position_cls(cfg.d_model, max_positions=cfg.max_positions)
        self.dropout = Dropout(cfg.dropout)

    def forward(self, tokens: Tensor, *, start: int = 0) -> Tensor:
        """tokens: (batch, length), the first at position ``start`` -> (batch, length, d_model)."""
        x = self.scale * self.embed_tokens(tokens)  # (B, T, D)
        x = x + self.positions(start, tokens.size(1))  # (B, T, D)
        return self.dropout(x)  # (B, T, D)


def _final_norm(cfg: ModelConfig) -> nn.Module:
    """A LayerNorm on the stack's output where the placement's residual stream needs one."""
    present = placement_of(cfg.norm_position).final_norm
    return nn.LayerNorm(cfg.d_model) if present else nn.Identity()


@dataclass
class EncoderOut:
    """Encoder states and the source padding.

    Attributes:
        states: (batch, src_len, d_model).
        padding_mask: (batch, src_len) bool, True at pad positions.
    """

    states: Tensor
    padding_mask: Tensor

    @property
    def attention_mask(self) -> Tensor:
        """(batch, 1, 1, src_len) bool, True where attention may look (SDPA's convention)."""
        return ~self.padding_mask[:, None, None, :]  # (B, 1, 1, S)

    def reorder(self, order: Tensor) -> EncoderOut:
        """Rows ``order`` (batch',) of the batch, e.g. each sentence repeated beam times."""
        return EncoderOut(
            states=self.states.index_select(0, order),  # (B', S, D)
            padding_mask=self.padding_mask.index_select(0, order),  # (B', S)
        )


class Encoder(nn.Module):
    """Embeddings, ``encoder_layers`` layers, and the final LayerNorm of Pre-LN."""

    def __init__(self, cfg: ModelConfig, embed_tokens: nn.Embedding, *, pad: int) -> None:
        super().__init__()
        self.pad = pad
        self.embed = TransformerEmbedding(embed_tokens, cfg)
        # Typed as a list so that mypy knows the layer class (a ModuleList iterates as Module).
        self.layers: list[EncoderLayer] = nn.ModuleList(  # type: ignore[assignment]
            EncoderLayer(cfg) for _ in range(cfg.encoder_layers)
        )
        self.final_norm = _final_norm(cfg)

    def forward(self, src_tokens: Tensor) -> EncoderOut:
        """src_tokens: (batch, src_len), right-padded with ``pad``."""
        padding_mask = src_tokens.eq(self.pad)  # (B, S)
        mask = ~padding_mask[:, None, None, :]  # (B, 1, 1, S)
        x = self.embed(src_tokens)  # (B, S, D)
        for layer in self.layers:
            x = layer(x, mask=mask)  # (B, S, D)
        return EncoderOut(states=self.final_norm(x), padding_mask=padding_mask)


class Decoder(nn.Module):
    """Embeddings, ``decoder_layers`` causal layers, Pre-LN's final LayerNorm, output projection."""

    def __init__(self, cfg: ModelConfig, embed_tokens: nn.Embedding, *, tied: bool) -> None:
        super().__init__()
        vocab_size, d_model = embed_tokens.weight.shape
        self.embed = TransformerEmbedding(embed_tokens, cfg)
        self.layers: list[DecoderLayer] = nn.ModuleList(  # type: ignore[assignment]
            DecoderLayer(cfg) for _ in range(cfg.decoder_layers)
        )
        self.final_norm = _final_norm(cfg)
        self.output_projection = nn.Linear(d_model, vocab_size, bias=False)
        if tied:
            self.output_projection.weight = embed_tokens.weight  # (V, D), the same Parameter
        else:
            nn.init.normal_(self.output_projection.weight, std=d_model**-0.5)

    def forward(self, prev_output_tokens: Tensor, enc: EncoderOut) -> Tensor:
        """Full causal pass: prev_output_tokens (B, tgt_len) -> logits (B, tgt_len, vocab)."""
        return self._forward(prev_output_tokens, enc, attention_out=None)  # (B, T, V)

    def forward_with_attention(
        self, prev_output_tokens: Tensor, enc: EncoderOut
    ) -> tuple[Tensor, Tensor]:
        """:meth:`forward` plus the last layer's cross-attention, averaged over heads.

        Returns:
            logits (B, tgt_len, vocab) and attention (B, tgt_len, src_len) float32.
        """
        attention: list[Tensor] = []
        logits = self._forward(prev_output_tokens, enc, attention_out=attention)  # (B, T, V)
        return logits, attention[0]  # (B, T, V), (B, T, S)

    def _forward(
        self, prev_output_tokens: Tensor, enc: EncoderOut, *, attention_out: list[Tensor] | None
    ) -> Tensor:
        mask = enc.attention_mask  # (B, 1, 1, S)
        x = self.embed(prev_output_tokens)  # (B, T, D)
        last = len(self.layers) - 1  # fairseq's default alignment layer
        for i, layer in enumerate(self.layers):
            cross_kv = layer.cross_attn.project_kv(enc.states)  # (B, H, S, Dh) x2
            sink = attention_out if i == last else None
            x = layer(x, cross_kv=cross_kv, mask=mask, attention_out=sink)  # (B, T, D)
        return self.output_projection(self.final_norm(x))  # (B, T, V)

    def init_cache(self, enc: EncoderOut, *, max_len: int) -> DecoderCache:
        """Project the encoder states for every layer once; allocate the self-attention buffers."""
        cross = [layer.cross_attn.project_kv(enc.states) for layer in self.layers]
        cross_k = torch.stack([k for k, _ in cross])  # (L, B, H, S, Dh)
        cross_v = torch.stack([v for _, v in cross])  # (L, B, H, S, Dh)
        layers, batch, heads, _, head_dim = cross_k.shape
        shape = (layers, batch, heads, max_len, head_dim)
        # Uninitialized: step n writes position n before attention reads [0, n].
        self_kv = (cross_k.new_empty(shape), cross_v.new_empty(shape))  # (L, B, H, M, Dh) x2
        return DecoderCache(self_kv, (cross_k, cross_v), enc.attention_mask)

    def step(self, tokens: Tensor, cache: DecoderCache) -> Tensor:
        """One position: tokens (rows,) -> float32 logits (rows, vocab); advances ``cache``."""
        return self._step(tokens, cache, attention_out=None)  # (R, V)

    def step_with_attention(self, tokens: Tensor, cache: DecoderCache) -> tuple[Tensor, Tensor]:
        """:meth:`step` plus the last layer's head-averaged cross-attention (rows, src_len)."""
        attention: list[Tensor] = []
        logits = self._step(tokens, cache, attention_out=attention)  # (R, V)
        return logits, attention[0][:, 0]  # (R, V), (R, S)

    def _step(
        self, tokens: Tensor, cache: DecoderCache, *, attention_out: list[Tensor] | None
    ) -> Tensor:
        if cache.step >= cache.max_len:
            raise ValueError(f"decode_step past the cache's max_len={cache.max_len}")
        x = self.embed(tokens[:, None], start=cache.step)  # (R, 1, D)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer.step(
                x,
                step=cache.step,
                self_kv=(cache.self_k[i], cache.self_v[i]),  # (R, H, M, Dh) views, written in place
                cross_kv=(cache.cross_k[i], cache.cross_v[i]),  # (n, H, S, Dh)
                mask=cache.cross_mask,  # (n, 1, 1, S)
                attention_out=attention_out if i == last else None,
            )  # (R, 1, D)
        cache.step += 1
        return self.output_projection(self.final_norm(x))[:, 0].float()  # (R, V)


def _embedding(vocab_size: int, d_model: int, *, pad: int) -> nn.Embedding:
    """Token embeddings N(0, d_model^-0.5) with a zero pad row, as in fairseq."""
    embedding = nn.Embedding(vocab_size, d_model, padding_idx=pad)
    nn.init.normal_(embedding.weight, mean=0.0, std=d_model**-0.5)
    with torch.no_grad():
        embedding.weight[pad].zero_()
    return embedding


def _validate(cfg: ModelConfig, *, src_vocab_size: int, tgt_vocab_size: int) -> None:
    # cfg's own ranges are ModelConfig.validate's; here only what the dictionaries decide.
    if cfg.share_all_embeddings and src_vocab_size != tgt_vocab_size:
        raise UserError(
            "arch.share_all_embeddings=true needs one joined dictionary, but the source has "
            f"{src_vocab_size} symbols and the target {tgt_vocab_size} (preprocess with "
            "--joined-dictionary)"
        )


class Transformer(nn.Module):
    """Encoder-decoder Transformer with the norm placement of ``cfg.norm_position``.

    Args:
        cfg: dimensions, dropout, norm placement, embedding sharing, initialization.
        src_vocab_size: source dictionary size.
        tgt_vocab_size: target dictionary size.
        pad: padding index (the same in both dictionaries).
    """

    def __init__(
        self, cfg: ModelConfig, *, src_vocab_size: int, tgt_vocab_size: int, pad: int
    ) -> None:
        super().__init__()
        _validate(cfg, src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size)
        self.cfg = cfg
        self.pad = pad
        src_embed = _embedding(src_vocab_size, cfg.d_model, pad=pad)
        tgt_embed = (
            src_embed
            if cfg.share_all_embeddings
            else _embedding(tgt_vocab_size, cfg.d_model, pad=pad)
        )
        # As in fairseq, sharing all embeddings also ties the decoder's output projection.
        tied = cfg.share_decoder_input_output_embed or cfg.share_all_embeddings
        self.encoder = Encoder(cfg, src_embed, pad=pad)
        self.decoder = Decoder(cfg, tgt_embed, tied=tied)

    def forward(self, src_tokens: Tensor, prev_output_tokens: Tensor) -> Tensor:
        """src_tokens (batch, src_len), prev_output_tokens (batch, tgt_len) -> (B, T, vocab).

        The logits are in the compute dtype (half precision under autocast).
        """
        return self.decoder(prev_output_tokens, self.encoder(src_tokens))  # (B, T, V)

    def encode(self, src_tokens: Tensor) -> EncoderOut:
        """src_tokens: (batch, src_len), right-padded."""
        return self.encoder(src_tokens)

    def decode(self, prev_output_tokens: Tensor, enc: EncoderOut) -> Tensor:
        """Full causal decoding: (batch, tgt_len) -> logits (batch, tgt_len, vocab)."""
        return self.decoder(prev_output_tokens, enc)  # (B, T, V)

    def init_cache(self, enc: EncoderOut, *, max_len: int) -> DecoderCache:
        """A cache for up to ``max_len`` calls of :meth:`decode_step` on ``enc``'s batch."""
        return self.decoder.init_cache(enc, max_len=max_len)

    def decode_step(self, tokens: Tensor, cache: DecoderCache) -> Tensor:
        """tokens (rows,) at position ``cache.step`` -> float32 logits (rows, vocab).

        The cache holds what the decoder needs of the encoder output (see :meth:`init_cache`).
        """
        return self.decoder.step(tokens, cache)  # (R, V)

    def decode_with_attention(
        self, prev_output_tokens: Tensor, enc: EncoderOut
    ) -> tuple[Tensor, Tensor]:
        """:meth:`decode` plus the last decoder layer's cross-attention averaged over heads
        (fairseq's default ``alignment_layer``): (B, T, V) logits, (B, T, S) float32 weights."""
        return self.decoder.forward_with_attention(prev_output_tokens, enc)

    def decode_step_with_attention(
        self, tokens: Tensor, cache: DecoderCache
    ) -> tuple[Tensor, Tensor]:
        """:meth:`decode_step` plus that step's attention: (R, V) logits, (R, S) weights."""
        return self.decoder.step_with_attention(tokens, cache)


class Vocabulary(Protocol):
    """What :func:`build_model` needs from a dictionary."""

    pad: int

    def __len__(self) -> int: ...


def build_model(cfg: ModelConfig, src_dict: Vocabulary, tgt_dict: Vocabulary) -> Transformer:
    """Build a freshly initialized Transformer for these dictionaries."""
    if src_dict.pad != tgt_dict.pad:
        raise UserError(f"source pad index {src_dict.pad} != target pad index {tgt_dict.pad}")
    src_symbols = getattr(src_dict, "symbols", None)
    tgt_symbols = getattr(tgt_dict, "symbols", None)
    if cfg.share_all_embeddings and src_symbols is not None and src_symbols != tgt_symbols:
        raise UserError(
            "arch.share_all_embeddings=true needs one joined dictionary, but the source and "
            "target dictionaries differ (preprocess with --joined-dictionary)"
        )
    return Transformer(
        cfg, src_vocab_size=len(src_dict), tgt_vocab_size=len(tgt_dict), pad=src_dict.pad
    )


def named_analysis_weights(model: Transformer) -> list[tuple[str, Tensor]]:
    """The weight matrices whose gradient norms the paper analyses, layer by layer.

    Names look like ``encoder.3.self_attn.q_proj``, ``decoder.0.cross_attn.out_proj`` and
    ``decoder.5.ffn.fc2``; encoder layers come first, each layer in forward order.
    """
    result: list[tuple[str, Tensor]] = []
    for i, enc_layer in enumerate(model.encoder.layers):
        result += _attention_weights(f"encoder.{i}.self_attn", enc_layer.self_attn)
        result += _ffn_weights(f"encoder.{i}.ffn", enc_layer.ffn)
    for i, dec_layer in enumerate(model.decoder.layers):
        result += _attention_weights(f"decoder.{i}.self_attn", dec_layer.self_attn)
        result += _attention_weights(f"decoder.{i}.cross_attn", dec_layer.cross_attn)
        result += _ffn_weights(f"decoder.{i}.ffn", dec_layer.ffn)
    return result


def _attention_weights(prefix: str, attn: MultiheadAttention) -> list[tuple[str, Tensor]]:
    projections = ("q_proj", "k_proj", "v_proj", "out_proj")
    return [(f"{prefix}.{name}", getattr(attn, name).weight) for name in projections]


def _ffn_weights(prefix: str, ffn: FeedForward) -> list[tuple[str, Tensor]]:
    return [(f"{prefix}.fc1", ffn.fc1.weight), (f"{prefix}.fc2", ffn.fc2.weight)]
