"""Label-smoothed cross-entropy, as fairseq's ``label_smoothed_cross_entropy`` criterion.

The loss and the NLL come back as summed tensors (no ``.item()``: no device sync per batch);
the trainer divides by the token count and :func:`base2_per_token` / :func:`perplexity`
turn the sums into the numbers fairseq logs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor


def label_smoothed_nll_loss(
    lprobs: Tensor, target: Tensor, *, epsilon: float, ignore_index: int
) -> tuple[Tensor, Tensor]:
    """Summed label-smoothed NLL over the non-ignored targets (fairseq's current convention).

    With ``V`` the vocabulary size, ``eps_i = epsilon / (V - 1)`` and log-probabilities
    ``l`` of one position whose reference is ``y``::

        nll    = -l[y]
        smooth = -sum_v l[v]
        loss   = (1 - epsilon - eps_i) * nll + eps_i * smooth

    i.e. the cross-entropy against ``q = 1 - epsilon`` on ``y`` and ``epsilon / (V - 1)`` on
    every other symbol. (``F.cross_entropy(label_smoothing=a)`` spreads ``a / V`` over all
    ``V`` symbols instead; it equals this with ``a = epsilon * V / (V - 1)`` but gives no NLL.)
    Positions whose target is ``ignore_index`` contribute zero to both sums. Only ``lprobs``
    is vocabulary-sized; everything computed here is one value per position.

    Args:
        lprobs: (num_positions, vocab) log-probabilities.
        target: (num_positions,) reference indices.
        epsilon: smoothing mass in [0, 1).
        ignore_index: target index to skip (the padding index).

    Returns:
        ``(loss_sum, nll_sum)``: 0-dim tensors in ``lprobs``' dtype.
    """
    vocab = lprobs.size(-1)
    if vocab < 2:
        raise ValueError(f"label smoothing needs at least 2 symbols, got {vocab}")
    keep = target.ne(ignore_index)  # (N,)
    # gather with a pad target is harmless (pad is a valid index); masked to zero below.
    nll = -lprobs.gather(dim=-1, index=target.unsqueeze(-1)).squeeze(-1)  # (N,)
    smooth = -lprobs.sum(dim=-1)  # (N,)
    nll_sum = nll.masked_fill(~keep, 0.0).sum()
    smooth_sum = smooth.masked_fill(~keep, 0.0).sum()
    eps_i = epsilon / (vocab - 1)
    loss_sum = (1.0 - epsilon - eps_i) * nll_sum + eps_i * smooth_sum
    return loss_sum, nll_sum


def label_smoothed_cross_entropy(
    logits: Tensor, target: Tensor, *, epsilon: float, pad: int
) -> tuple[Tensor, Tensor]:
    """Label-smoothed cross-entropy of decoder logits, summed over the non-pad tokens.

    The log-softmax runs in float32 whatever the logits' dtype (half precision under
    autocast), in one kernel that casts on the fly instead of copying the logits first.
    See :func:`label_smoothed_nll_loss` for the formula.

    Args:
        logits: (batch, tgt_len, vocab) or (num_positions, vocab).
        target: (batch, tgt_len) or (num_positions,), padded with ``pad``.
        epsilon: ``TrainConfig.label_smoothing``.
        pad: padding index; those positions are ignored.

    Returns:
        ``(loss_sum, nll_sum)``: float32 0-dim tensors, in nats, summed over tokens.
    """
    vocab = logits.size(-1)
    if vocab < 2:
        raise ValueError(f"label smoothing needs at least 2 symbols, got {vocab}")
    loss, nll = _FusedSmoothedCrossEntropy.apply(
        logits.reshape(-1, vocab), target.reshape(-1), epsilon, pad
    )
    return loss, nll


class _FusedSmoothedCrossEntropy(torch.autograd.Function):
    """:func:`label_smoothed_nll_loss` of ``log_softmax(z)``, keeping no vocabulary-sized tensor.

    The forward needs the log-probabilities only for one gather and one sum, so autograd saves
    the logits (which it holds anyway) instead; the backward recomputes ``p = softmax(z)`` in
    one fused kernel and turns it into the gradient in place. With ``p = softmax(z)``::

        d loss / d z = (1 - epsilon - eps_i) * (p - onehot(y)) + eps_i * (V * p - 1)
        d nll  / d z = p - onehot(y)

    and zero on pad rows (the unfused version keeps lprobs, its gather/sum/masked_fill
    backward buffers and the log_softmax gradient: three to four ``(N, V)`` tensors).
    Both directions use PyTorch's fused (log_)softmax kernels, which cast half-precision
    logits to float32 on the fly: no logsumexp temporaries, no float32 copy of the logits.
    """

    @staticmethod
    def forward(
        ctx: Any, logits: Tensor, target: Tensor, epsilon: float, pad: int
    ) -> tuple[Tensor, Tensor]:
        vocab = logits.size(-1)
        lprobs = torch.log_softmax(logits, dim=-1, dtype=torch.float32)  # (N, V), freed below
        keep = target.ne(pad)  # (N,)
        nll = -lprobs.gather(1, target[:, None])[:, 0].masked_fill(~keep, 0.0)  # (N,)
        smooth = -lprobs.sum(dim=-1).masked_fill(~keep, 0.0)  # (N,)
        eps_i = epsilon / (vocab - 1)
        nll_sum = nll.sum()
        loss_sum = (1.0 - epsilon - eps_i) * nll_sum + eps_i * smooth.sum()
        ctx.save_for_backward(logits, target, keep)
        ctx.coefficients = (1.0 - epsilon - eps_i, eps_i)
        return loss_sum, nll_sum

    @staticmethod
    def backward(ctx: Any, grad_loss: Tensor, grad_nll: Tensor) -> tuple[Tensor, None, None, None]:
        logits, target, keep = ctx.saved_tensors
        c_nll, eps_i = ctx.coefficients
        vocab = logits.size(-1)
        keep = keep.float()  # (N,) pad rows get no gradient
        a = (c_nll * grad_loss + grad_nll) * keep  # (N,) weight of (p - onehot(y))
        b = eps_i * grad_loss * keep  # (N,) weight of (V * p - 1)
        grad = torch.softmax(logits, dim=-1, dtype=torch.float32)  # (N, V) = p
        grad.mul_((a + vocab * b)[:, None]).sub_(b[:, None])  # (N, V)
        grad.scatter_add_(1, target[:, None], -a[:, None])  # (N, V)
        return grad.to(logits.dtype), None, None, None


def base2_per_token(total: float | Tensor, ntokens: int) -> float:
    """A summed loss in nats as a per-token value in bits, as fairseq logs it.

    ``total / ntokens / ln 2``; 0.0 when ``ntokens`` is 0.
    """
    if ntokens == 0:
        return 0.0
    value = total.item() if isinstance(total, Tensor) else total
    return value / ntokens / math.log(2)


def perplexity(nll_base2: float) -> float:
    """``2 ** nll`` for a per-token NLL in bits (fairseq's ``ppl``); inf when it overflows."""
    try:
        return 2.0**nll_base2
    except OverflowError:
        return math.inf
