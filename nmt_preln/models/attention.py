"""Multi-head attention with separate, named projections, and the Xavier initialization.

Every projection initializes its own weights as fairseq does (see :func:`init_linear`).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt_preln.config import InitMethod


def init_linear(linear: nn.Linear, *, method: InitMethod, gain: float = 1.0) -> None:
    """Xavier-initialize a projection (uniform or normal) and zero its bias, as fairseq does."""
    if method == InitMethod.xavier_normal:
        nn.init.xavier_normal_(linear.weight, gain=gain)
    else:
        nn.init.xavier_uniform_(linear.weight, gain=gain)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)


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
        value_gain: extra Xavier gain of ``v_proj`` and ``out_proj`` (the placement's
            ``init_gain``; 1 for Pre-LN and Post-LN).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        *,
        attention_dropout: float,
        init: InitMethod,
        value_gain: float = 1.0,
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
        for proj in (self.q_proj, self.k_proj):
            init_linear(proj, method=init, gain=1 / math.sqrt(2))
        init_linear(self.v_proj, method=init, gain=value_gain / math.sqrt(2))
        init_linear(self.out_proj, method=init, gain=value_gain)
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
