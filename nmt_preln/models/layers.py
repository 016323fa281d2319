"""Building blocks of the Transformer, read top to bottom: attention -> FFN -> Residual -> layers.

The one switch of this project lives in :class:`Residual`: the LayerNorm goes inside the
residual branch (Pre-LN) or after the sum (Post-LN), decided once at construction.
Every module initializes its own weights as fairseq does (see :func:`init_linear`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt_preln.config import Activation, InitMethod, ModelConfig, NormPosition


def init_linear(linear: nn.Linear, *, method: InitMethod, gain: float = 1.0) -> None:
    """Xavier-initialize a projection (uniform or normal) and zero its bias, as fairseq does."""
    if method == InitMethod.xavier_normal:
        nn.init.xavier_normal_(linear.weight, gain=gain)
    else:
        nn.init.xavier_uniform_(linear.weight, gain=gain)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


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


class MultiheadAttention(nn.Module):
    """Scaled dot-product attention with named ``q_proj``/``k_proj``/``v_proj``/``out_proj``.

    The projections stay separate parameters so that the paper's per-matrix gradient norms
    (W^Q, W^K, W^V, W^O) can be read off by name; the forward pass still runs them as one fused
    matrix multiply by concatenating the weights (cheap next to the activations).

    Args:
        d_model: model width D; each of ``num_heads`` heads gets D / num_heads dimensions.
        num_heads: number of heads H.
        attention_dropout: dropout on the attention probabilities (training only).
        init: Xavier variant for the projections.
    """

    def __init__(
        self, d_model: int, num_heads: int, *, attention_dropout: float, init: InitMethod
    ) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = d_model // num_heads
        self.attention_dropout = attention_dropout
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        # fairseq scales q/k/v by 1/sqrt(2) when they share one width: their fused
        # in-projection would otherwise be initialized with a larger fan-out.
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            init_linear(proj, method=init, gain=1 / math.sqrt(2))
        init_linear(self.out_proj, method=init)
        # Stacked q/k/v (3 projections) or k/v (2) weights for gradient-free calls.
        self._fused_cache: dict[int, tuple[tuple[tuple[int, int], ...], Tensor, Tensor]] = {}

    def train(self, mode: bool = True) -> MultiheadAttention:
        # Fused optimizer kernels (Adam(fused=True)) update weights in place without bumping
        # ``_version``, so the cache could outlive a step; every switch between training and
        # evaluation (validation calls eval()) therefore starts from the current weights.
        self._fused_cache.clear()
        return super().train(mode)

    def _split_heads(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, H, T, Dh)."""
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, Dh)

    def _fused_weights(self, projections: tuple[nn.Linear, ...]) -> tuple[Tensor, Tensor]:
        """The projections' weights (n*D, D) and biases (n*D,) stacked.

        Without autograd (decoding calls this every step) the result is cached until a weight
        changes: ``_version`` counts in-place updates (optimizer steps, load_state_dict).
        """
        params = [t for p in projections for t in (p.weight, p.bias)]
        if torch.is_grad_enabled() and any(t.requires_grad for t in params):
            weight = torch.cat([p.weight for p in projections])  # (n*D, D)
            return weight, torch.cat([p.bias for p in projections])  # (n*D,)
        key = tuple((t.data_ptr(), t._version) for t in params)
        cached = self._fused_cache.get(len(projections))
        if cached is None or cached[0] != key:
            weight = torch.cat([p.weight.detach() for p in projections])  # (n*D, D)
            bias = torch.cat([p.bias.detach() for p in projections])  # (n*D,)
            cached = (key, weight, bias)
            self._fused_cache[len(projections)] = cached
        return cached[1], cached[2]

    def _project(self, x: Tensor, projections: tuple[nn.Linear, ...]) -> list[Tensor]:
        """Several projections of x (B, T, D) as one matmul; each result is (B, H, T, Dh)."""
        weight, bias = self._fused_weights(projections)  # (n*D, D), (n*D,)
        fused = F.linear(x, weight, bias)  # (B, T, n*D)
        return [self._split_heads(part) for part in fused.chunk(len(projections), dim=-1)]

    def project_qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys and values of self-attention: x (B, T, D) -> three (B, H, T, Dh)."""
        q, k, v = self._project(x, (self.q_proj, self.k_proj, self.v_proj))
        return q, k, v

    def project_q(self, x: Tensor) -> Tensor:
        """Queries of cross-attention: x (B, T, D) -> (B, H, T, Dh)."""
        return self._split_heads(self.q_proj(x))  # (B, H, T, Dh)

    def project_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values of cross-attention: memory (B, S, D) -> two (B, H, S, Dh)."""
        k, v = self._project(memory, (self.k_proj, self.v_proj))
        return k, v

    def attend(
        self, q: Tensor, k: Tensor, v: Tensor, *, mask: Tensor | None = None, causal: bool = False
    ) -> Tensor:
        """softmax(q k^T / sqrt(Dh)) v, heads merged, then ``out_proj``.

        Args:
            q: (batch, heads, tgt_len, head_dim).
            k, v: (batch, heads, src_len, head_dim).
            mask: boolean (batch, 1, 1, src_len), True where a key may be attended to.
            causal: mask future keys (top-left aligned, tgt_len == src_len).

        Returns:
            (batch, tgt_len, d_model).
        """
        dropout_p = self.attention_dropout if self.training else 0.0
        if q.dtype == torch.bfloat16 and q.device.type == "cpu":
            # The CPU flash-attention backward is ~5x slower in bf16 than in float32 (torch
            # 2.13): attend in float32 there; the projections around it stay in bf16.
            with torch.autocast("cpu", enabled=False):
                out = F.scaled_dot_product_attention(
                    q.float(), k.float(), v.float(), attn_mask=mask, dropout_p=dropout_p,
                    is_causal=causal,
                ).to(q.dtype)  # fmt: skip
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal
            )  # (B, H, T, Dh)
        batch, _, length, _ = out.shape
        out = out.transpose(1, 2).reshape(batch, length, -1)  # (B, T, D)
        return self.out_proj(out)  # (B, T, D)

    def attention_weights(self, q: Tensor, k: Tensor, *, mask: Tensor | None = None) -> Tensor:
        """The attention probabilities that :meth:`attend` applies, averaged over heads.

        SDPA does not return them, so they are recomputed (in float32) for the callers that
        ask: fairseq's ``--print-alignment`` reads them off the last decoder layer.

        Args:
            q: (batch, heads, tgt_len, head_dim).
            k: (batch, heads, src_len, head_dim).
            mask: boolean (batch, 1, 1, src_len), True where a key may be attended to.

        Returns:
            (batch, tgt_len, src_len) float32, mean over heads of softmax(q k^T / sqrt(Dh)).
        """
        # Autocast would run this matmul in half precision whatever the inputs' dtype.
        with torch.autocast(q.device.type, enabled=False):
            scores = q.float() @ k.float().transpose(-1, -2) * self.head_dim**-0.5  # (B,H,T,S)
            if mask is not None:
                scores = scores.masked_fill(~mask, -math.inf)  # (B, H, T, S)
            return scores.softmax(dim=-1).mean(dim=1)  # (B, T, S)

    def forward(self, x: Tensor, *, mask: Tensor | None = None, causal: bool = False) -> Tensor:
        """Self-attention: x (B, T, D) -> (B, T, D); ``mask``, ``causal`` as in :meth:`attend`."""
        q, k, v = self.project_qkv(x)  # (B, H, T, Dh) each
        return self.attend(q, k, v, mask=mask, causal=causal)  # (B, T, D)


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
    ) -> None:
        super().__init__()
        self.fc1 = nn.Linear(d_model, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, d_model)
        self.activation: nn.Module = nn.GELU() if activation == Activation.gelu else nn.ReLU()
        self.activation_dropout = Dropout(activation_dropout)
        init_linear(self.fc1, method=init)
        init_linear(self.fc2, method=init)

    def forward(self, x: Tensor) -> Tensor:
        """x: (batch, length, d_model) -> (batch, length, d_model)."""
        hidden = self.activation_dropout(self.activation(self.fc1(x)))  # (B, T, F)
        return self.fc2(hidden)  # (B, T, D)


class Residual(nn.Module):
    """Pre-LN: x + drop(f(norm(x))).  Post-LN: norm(x + drop(f(x))).

    The placement is decided here, once: exactly one of ``pre_norm`` / ``post_norm`` is a
    LayerNorm and the other an ``nn.Identity``, so :meth:`forward` has no branch at all.
    """

    def __init__(self, d_model: int, *, norm_position: NormPosition, dropout: float) -> None:
        super().__init__()
        pre = norm_position == NormPosition.pre
        self.pre_norm: nn.Module = nn.LayerNorm(d_model) if pre else nn.Identity()
        self.post_norm: nn.Module = nn.Identity() if pre else nn.LayerNorm(d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor, sublayer: Callable[[Tensor], Tensor]) -> Tensor:
        """x: (batch, length, d_model); ``sublayer`` maps (B, T, D) -> (B, T, D)."""
        return self.post_norm(x + self.dropout(sublayer(self.pre_norm(x))))  # (B, T, D)


def _attention(cfg: ModelConfig) -> MultiheadAttention:
    return MultiheadAttention(
        cfg.d_model, cfg.num_heads, attention_dropout=cfg.attention_dropout, init=cfg.init
    )


def _feed_forward(cfg: ModelConfig) -> FeedForward:
    return FeedForward(
        cfg.d_model,
        cfg.ffn_dim,
        activation=cfg.activation,
        activation_dropout=cfg.activation_dropout,
        init=cfg.init,
    )


def _residual(cfg: ModelConfig) -> Residual:
    return Residual(cfg.d_model, norm_position=cfg.norm_position, dropout=cfg.dropout)


class EncoderLayer(nn.Module):
    """Self-attention then FFN, each wrapped in a :class:`Residual`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.self_attn = _attention(cfg)
        self.self_attn_residual = _residual(cfg)
        self.ffn = _feed_forward(cfg)
        self.ffn_residual = _residual(cfg)

    def forward(self, x: Tensor, *, mask: Tensor) -> Tensor:
        """x: (batch, src_len, d_model); mask: (batch, 1, 1, src_len) True = real token."""
        x = self.self_attn_residual(x, lambda h: self.self_attn(h, mask=mask))  # (B, S, D)
        return self.ffn_residual(x, self.ffn)  # (B, S, D)


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention to the encoder, then FFN; each in a Residual."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.self_attn = _attention(cfg)
        self.self_attn_residual = _residual(cfg)
        self.cross_attn = _attention(cfg)
        self.cross_attn_residual = _residual(cfg)
        self.ffn = _feed_forward(cfg)
        self.ffn_residual = _residual(cfg)

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
