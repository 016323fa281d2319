"""Diverse beam search (``--diverse-beam-groups G``; Vijayakumar et al. 2016, fairseq's
DiverseBeamSearch with the Hamming diversity penalty).

The beam of k hypotheses is split into G groups of k / G: group g holds beams g, g + G,
g + 2G, ... Each step the groups choose their 2k / G candidates one after the other; group g
first subtracts ``strength * count(token)`` from its scores, where ``count`` is how many
candidates of the earlier groups chose that token at this step. As in fairseq, the penalty
stays in the summed scores (so the printed scores of hypotheses include it), the candidates of
the groups are interleaved (best of every group, then second best ...), and a beam's group is
its position after the step, so hypotheses can move between groups when some finish.

With ``G = 1`` this is plain beam search. With ``G = k`` and ``strength = 0`` every group is
a beam of one that sees the same scores, so all k beams follow the greedy path: the k
hypotheses are copies of the greedy translation.
"""

from __future__ import annotations

import torch
from torch import Tensor


def diverse_candidates(
    lprobs: Tensor, cum: Tensor, *, beam: int, groups: int, strength: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Candidates ``(scores, beams, tokens)``, each ``(batch, 2 * beam)`` (fewer for a tiny
    vocabulary), interleaved across the groups.

    Args:
        lprobs: ``(batch, rows, vocab)`` next-token log-probs after the step rules; ``rows``
            is 1 at step 0 (every group starts from that row) and ``beam`` after.
        cum: ``(batch, rows)`` summed (penalized) scores; ``-inf`` = empty slot.
        beam: k, a multiple of ``groups``.
        groups: G.
        strength: ``--diverse-beam-strength``.

    Raises:
        ValueError: ``beam`` is not a multiple of ``groups``.
    """
    if beam % groups:
        raise ValueError(f"beam {beam} is not divisible by {groups} diverse beam groups")
    bsz, rows, vocab = lprobs.shape
    size = beam // groups
    total = cum[:, :, None] + lprobs  # (B, rows, V)
    counts = torch.zeros(bsz, vocab, dtype=lprobs.dtype, device=lprobs.device)
    chosen: list[tuple[Tensor, Tensor, Tensor]] = []
    for g in range(groups):
        members = total if rows == 1 else total[:, g::groups]  # (B, size | 1, V)
        if g > 0:
            members = members - strength * counts[:, None, :]
        members_rows = members.size(1)
        flat = members.reshape(bsz, members_rows * vocab)
        scores, index = flat.topk(min(2 * size, flat.size(1)), dim=1)  # (B, 2*size)
        member = torch.div(index, vocab, rounding_mode="floor")
        tokens = index % vocab
        beams = member if rows == 1 else member * groups + g  # the row within the sentence
        chosen.append((scores, beams, tokens))
        counts.scatter_add_(1, tokens, torch.ones_like(scores))
    # (B, c, G) -> (B, c * G): candidate i of every group before candidate i + 1 of any.
    scores, beams, tokens = (
        torch.stack(parts, dim=2).flatten(1) for parts in zip(*chosen, strict=True)
    )
    return scores, beams, tokens
