"""Building blocks of the Transformer, read top to bottom: FFN -> Residual -> layers.

Attention lives in :mod:`nmt_preln.models.attention`.

The one switch of this project lives in :class:`Residual`: which LayerNorms a residual block
has (inside the branch for Pre-LN, after the sum for Post-LN, ...) and how it scales the skip
connection, decided once at construction from the block's
:class:`~nmt_preln.models.placement.Placement`.
Every module initializes its own weights as fairseq does (see :func:`init_linear`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt_preln.config import Activation, InitMethod, ModelConfig
from nmt_preln.models.attention import MultiheadAttention, init_linear
from nmt_preln.models.placement import Placement, Side, placement_of


class Dropout(nn.Module):
    """``nn.Dropout`` with a cheaper mask on CPU.

    On CPU torch draws dropout masks with ``bernoulli_``, about three times the cost of drawing
    15-bit integers (torch 2.13): a tenth of a small model's training step. Here an element is
    dropped when its integer falls under ``round(p * 2**15)``, so the rate is ``p`` to within
    2**-16, and survivors are scaled by the exact inverse of the resulting keep rate. CUDA (and
    torch.compile) keep torch's own dropout. Both draw from torch's default generators (seeded,
    checkpointed).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self._threshold = round(p * 2**15)
        self._scale = 1.0 / (1.0 - self._threshold / 2**15)

    def forward(self, x: Tensor) -> Tensor:
        """x: any shape; identity in eval mode or with p = 0."""
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu" or torch.compiler.is_compiling():  # compile cannot trace random_
            return F.dropout(x, self.p, training=True)
        keep = torch.empty(x.shape, dtype=torch.int16).random_() >= self._threshold
        return (x * keep).mul_(self._scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class FeedForward(nn.Module):
    """Position-wise FFN: fc2(drop(act(fc1(x)))), width d_model -> ffn_dim -> d_model."""

    def __init__(
        self,
        d_model: int,
        ffn_dim: int,
        *,
        activation: Activation,
        activation_dropout: float,
        init: InitMethod,
        gain: float = 1.0,
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d_model)
        self.activation: nn.Module = nn.GELU() if activation == Activation.gelu else nn.ReLU()
        self.activation_dropout = Dropout(activation_dropout)
        # gain: the placement's init_gain (DeepNorm's beta; 1 for Pre-LN and Post-LN)
        init_linear(self.fc1, method=init, gain=gain)
        init_linear(self.fc2, method=init, gain=gain)

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, length, d_model) -> (batch, length, d_model)."""
        hidden = self.activation_dropout(self.activation(self.fc1(x)))  # (B, T, F)
        return self.fc2(hidden)  # (B, T, D)


def _norm(d_model: int, present: bool) -> nn.Module:
    return nn.LayerNorm(d_model) if present else nn.Identity()


class Residual(nn.Module):
    """post_norm(alpha * x + drop(branch_norm(f(pre_norm(x))))).

    Pre-LN: x + drop(f(norm(x))).  Post-LN: norm(x + drop(f(x))). The placement
    (:mod:`nmt_preln.models.placement`) is decided here, once: each ``*_norm`` is a LayerNorm
    or an ``nn.Identity`` and ``alpha`` a constant, so :meth:`forward` has no branch at all.

    Args:
        d_model: width D.
        placement: which norms this block has.
        dropout: dropout on the branch output.
        alpha: the factor of the skip connection (the placement's ``residual_scale``).
    """

    def __init__(
        self, d_model: int, *, placement: Placement, dropout: float, alpha: float = 1.0
    ) -> None:
        super().__init__()
        self.pre_norm = _norm(d_model, placement.pre_norm)
        self.branch_norm = _norm(d_model, placement.branch_norm)
        self.post_norm = _norm(d_model, placement.post_norm)
        self.dropout = Dropout(dropout)
        self.alpha = alpha

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        """x: (batch, length, d_model); ``sublayer`` maps (B, T, D) -> (B, T, D)."""
        branch = self.dropout(self.branch_norm(sublayer(self.pre_norm(x))))  # (B, T, D)
        # branch + alpha * x in one kernel; with alpha = 1 bitwise equal to x + branch.
        return self.post_norm(torch.add(branch, x, alpha=self.alpha))  # (B, T, D)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha:g}"


def _depth_rule(cfg: ModelConfig, side: Side, *, init: bool) -> float:
    """The placement's init gain (``init``) or residual scale for this side's blocks."""
    placement = placement_of(cfg.norm_position)
    rule = placement.init_gain if init else placement.residual_scale
    return rule(cfg.encoder_layers, cfg.decoder_layers, side)


def _attention(cfg: ModelConfig, side: Side) -> MultiheadAttention:
    return MultiheadAttention(
        cfg.d_model,
        cfg.num_heads,
        attention_dropout=cfg.attention_dropout,
        init=cfg.init,
        value_gain=_depth_rule(cfg, side, init=True),
    )


def _feed_forward(cfg: ModelConfig, side: Side) -> FeedForward:
    return FeedForward(
        cfg.d_model,
        cfg.ffn_dim,
        activation=cfg.activation,
        activation_dropout=cfg.activation_dropout,
        init=cfg.init,
        gain=_depth_rule(cfg, side, init=True),
    )


def _residual(cfg: ModelConfig, side: Side) -> Residual:
    return Residual(
        cfg.d_model,
        placement=placement_of(cfg.norm_position),
        dropout=cfg.dropout,
        alpha=_depth_rule(cfg, side, init=False),
    )


class EncoderLayer(nn.Module):
    """Self-attention then FFN, each wrapped in a :class:`Residual`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.self_attn = _attention(cfg, "encoder")
        self.self_attn_residual = _residual(cfg, "encoder")
        self.ffn = _feed_forward(cfg, "encoder")
        self.ffn_residual = _residual(cfg, "encoder")

    def forward(self, x: Tensor, *, mask: Tensor) -> Tensor:
        """x: (batch, src_len, d_model); mask: (batch, 1, 1, src_len) True = real token."""
        x = self.self_attn_residual(x, lambda h: self.self_attn(h, mask=mask))  # (B, S, D)
        return self.ffn_residual(x, self.ffn)  # (B, S, D)


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder, then FFN; each in a Residual."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.self_attn = _attention(cfg, "decoder")
        self.self_attn_residual = _residual(cfg, "decoder")
        self.cross_attn = _attention(cfg, "decoder")
        self.cross_attn_residual = _residual(cfg, "decoder")
        self.ffn = _feed_forward(cfg, "decoder")
        self.ffn_residual = _residual(cfg, "decoder")

    def forward(
        self,
        x: Tensor,
        *,
        cross_kv: tuple[Tensor, Tensor],
        mask: Tensor,
        attention_out: list[Tensor] | None = None,
    ) -> Tensor:
        """Full causal pass over the target prefix.

        Args:
            x: (batch, tgt_len, d_model).
            cross_kv: keys and values of the encoder states, each (batch, heads, src_len, head_dim).
            mask: (batch, 1, 1, src_len), True = real source token.
            attention_out: when given, the head-averaged cross-attention weights
                (batch, tgt_len, src_len) are appended to it (see :meth:`_cross_and_ffn`).

        Returns:
            (batch, tgt_len, d_model).
        """
        # Right-padded targets need no key padding mask: causality already hides later pads.
        x = self.self_attn_residual(x, lambda h: self.self_attn(h, causal=True))  # (B, T, D)
        return self._cross_and_ffn(
            x, cross_kv=cross_kv, mask=mask, attention_out=attention_out
        )  # (B, T, D)

    def step(
        self,
        x: Tensor,
        *,
        step: int,
        self_kv: tuple[Tensor, Tensor],
        cross_kv: tuple[Tensor, Tensor],
        mask: Tensor,
        attention_out: list[Tensor] | None = None,
    ) -> Tensor:
        """One incremental step: writes this position's keys/values into preallocated buffers.

        Args:
            x: (batch, 1, d_model), the embedding of the token at position ``step``.
            step: position of the token; buffers hold positions [0, step) already.
            self_kv: key and value buffers, each (batch, heads, max_len, head_dim), written
                in place.
            cross_kv: keys and values of the encoder states, each (sentences, heads, src_len,
                head_dim), where batch = sentences * g (see :meth:`_cross_and_ffn`).
            mask: (sentences, 1, 1, src_len), True = real source token.
            attention_out: when given, the head-averaged cross-attention weights
                (batch, 1, src_len) are appended to it.

        Returns:
            (batch, 1, d_model).
        """
        key_buf, value_buf = self_kv

        def cached_self_attn(h: Tensor) -> Tensor:
            q, k, v = self.self_attn.project_qkv(h)  # (B, H, 1, Dh) each
            key_buf[:, :, step : step + 1] = k  # (B, H, 1, Dh)
            value_buf[:, :, step : step + 1] = v  # (B, H, 1, Dh)
            keys = key_buf[:, :, : step + 1]  # (B, H, step+1, Dh)
            values = value_buf[:, :, : step + 1]  # (B, H, step+1, Dh)
            return self.self_attn.attend(q, keys, values)  # (B, 1, D)

        x = self.self_attn_residual(x, cached_self_attn)  # (B, 1, D)
        return self._cross_and_ffn(
            x, cross_kv=cross_kv, mask=mask, attention_out=attention_out
        )  # (B, 1, D)

    def _cross_and_ffn(
        self,
        x: Tensor,
        *,
        cross_kv: tuple[Tensor, Tensor],
        mask: Tensor,
        attention_out: list[Tensor] | None = None,
    ) -> Tensor:
        """Cross-attention and FFN sublayers, shared by the full and incremental paths.

        ``cross_kv`` and ``mask`` may hold fewer sentences than ``x`` has rows: in beam search
        the ``g`` consecutive rows of a sentence share its keys, and attend to them as one
        ``(g * T)``-query sequence (cross-attention treats its queries independently), so the
        encoder state is never copied per beam. The attention weights are only computed when
        ``attention_out`` is given (then appended as ``(rows, T, src_len)`` float32).
        """
        k, v = cross_kv  # (n, H, S, Dh), rows = n * g

        def cross_attn(h: Tensor) -> Tensor:
            rows, length, d_model = h.shape
            grouped = h.reshape(k.size(0), -1, d_model)  # (n, g*T, D)
            q = self.cross_attn.project_q(grouped)  # (n, H, g*T, Dh)
            if attention_out is not None:
                weights = self.cross_attn.attention_weights(q, k, mask=mask)  # (n, g*T, S)
                attention_out.append(weights.view(rows, length, -1))  # (B, T, S)
            out = self.cross_attn.attend(q, k, v, mask=mask)  # (n, g*T, D)
            return out.view(rows, length, d_model)  # (B, T, D)

        x = self.cross_attn_residual(x, cross_attn)  # (B, T, D)
        return self.ffn_residual(x, self.ffn)  # (B, T, D)
