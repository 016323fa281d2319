"""Candidate selection by sampling (fairseq's ``--sampling``), used by the beam-search loop.

With ``--beam k`` each sentence keeps ``k`` independent samples, as fairseq does: at the first
step ``k`` tokens are drawn (with replacement) from the one live beam, afterwards every beam draws
one token from its own distribution. Finished samples leave their slot empty, so a sentence is
done when all ``k`` samples have produced ``</s>`` (or hit the length limit).

The recorded score of a token is the model's log-probability (after temperature and the
constraints), not the renormalized probability of the truncated distribution it was drawn from.
"""

from __future__ import annotations

import torch
from torch import Tensor


def truncate_distribution(probs: Tensor, *, topk: int, topp: float) -> Tensor:
    """Zero out the tokens outside the top-k set or the nucleus.

    Top-p keeps the smallest set of most probable tokens whose mass reaches ``topp``
    (the most probable token is always kept): keep ``i`` iff ``sum_{j < i} p_(j) < topp``
    with ``p_(j)`` sorted in decreasing order.

    Args:
        probs: ``(rows, vocab)`` non-negative weights.
        topk: keep the ``topk`` most probable tokens; <= 0 disables.
        topp: nucleus mass in (0, 1]; <= 0 disables.

    Returns:
        ``(rows, vocab)`` weights with the excluded tokens set to 0 (not renormalized).
    """
    if topk > 0 and topk < probs.size(-1):
        kth = probs.topk(topk, dim=-1).values[:, -1:]  # (rows, 1)
        probs = probs.masked_fill(probs < kth, 0.0)
    if topp > 0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)  # (rows, V)
        mass = sorted_probs.sum(-1, keepdim=True).clamp_min(1e-30)
        before = (sorted_probs.cumsum(-1) - sorted_probs) / mass  # mass strictly before each
        drop_sorted = before >= topp
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
    return probs


def sample_candidates(
    lprobs: Tensor,
    cum_scores: Tensor,
    *,
    beam: int,
    step: int,
    topk: int,
    topp: float,
    generator: torch.Generator | None,
    fallback_token: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """Draw one continuation per beam (``beam`` of them from the sentence's one row at step 0).

    Args:
        lprobs: ``(batch, rows, vocab)`` log-probs after the constraints (``-inf`` = blocked);
            ``rows`` is 1 at step 0 and ``beam`` after.
        cum_scores: ``(batch, rows)`` summed log-probs of the prefixes (``-inf`` = empty slot).
        beam: candidates per sentence.
        step: the decoding step (0 for the first target token).
        topk: see :func:`truncate_distribution`.
        topp: see :func:`truncate_distribution`.
        generator: the seeded random generator.
        fallback_token: drawn by rows with nothing left to draw (their score stays ``-inf``).

    Returns:
        ``(scores, beams, tokens)``, each ``(batch, beam)``: the new cumulative score, the
        parent beam and the drawn token of every candidate.
    """
    bsz, _, vocab = lprobs.shape
    probs = truncate_distribution(lprobs.exp().reshape(-1, vocab), topk=topk, topp=topp)
    empty = probs.sum(-1) <= 0  # (rows,) dead rows: multinomial rejects all-zero weights
    probs[:, fallback_token] += empty.to(probs.dtype)
    if step == 0:
        tokens = torch.multinomial(probs, beam, replacement=True, generator=generator)  # (B, k)
        beams = torch.zeros_like(tokens)
    else:
        tokens = torch.multinomial(probs, 1, generator=generator).view(bsz, beam)  # (B, k)
        beams = torch.arange(beam, device=lprobs.device).expand(bsz, beam)
    step_scores = lprobs.gather(1, beams[:, :, None].expand(-1, -1, vocab))  # (B, k, V)
    step_scores = step_scores.gather(2, tokens[:, :, None]).squeeze(2)  # (B, k)
    scores = cum_scores.gather(1, beams) + step_scores
    return scores, beams, tokens
