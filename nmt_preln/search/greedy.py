"""Greedy search: the most probable token at every step, the reference for ``--beam 1``.

Validation BLEU during training uses it too (one row per sentence, no reordering).
"""

from __future__ import annotations

import torch
from torch import Tensor

from nmt_preln.config import SearchConfig
from nmt_preln.search.ensemble import StepScorer
from nmt_preln.search.hypothesis import Hypothesis
from nmt_preln.search.search_rules import Specials, constrain_, max_lengths


def greedy_search(
    scorer: StepScorer,
    *,
    src_lengths: Tensor,
    cfg: SearchConfig,
    specials: Specials,
    max_len_limit: int,
) -> list[Hypothesis]:
    """Pick the most probable token at every step: the reference that ``beam=1`` must match.

    The same constraints as :func:`beam_search` apply; no rows are dropped (a plain loop).

    Args:
        scorer: next-token log-probs, one row per sentence.
        src_lengths: ``(batch,)`` source lengths, ``</s>`` included.
        cfg: lenpen, max_len_a/b, min_len, unkpen, no_repeat_ngram_size.
        specials: pad, eos, unk of the target dictionary.
        max_len_limit: the most tokens the decoder may generate.

    Returns:
        One hypothesis per sentence.
    """
    bsz = src_lengths.numel()
    max_lens = max_lengths(src_lengths, cfg, limit=max_len_limit)
    tokens = torch.full((bsz, 1), specials.eos, dtype=torch.long, device=src_lengths.device)
    positional: list[Tensor] = []
    done = torch.zeros(bsz, dtype=torch.bool, device=src_lengths.device)
    for step in range(int(max_lens.max()) + 1):
        lprobs = scorer.step(tokens[:, -1])
        constrain_(
            lprobs, step=step, prefix=tokens[:, 1:], max_lens=max_lens, cfg=cfg, specials=specials
        )
        best_lp, best = lprobs.max(dim=1)
        best = best.masked_fill(done, specials.pad)  # finished rows only pad from here on
        tokens = torch.cat([tokens, best[:, None]], dim=1)
        positional.append(best_lp)
        done |= best == specials.eos
        if bool(done.all()):
            break
    hyps = []
    pos = torch.stack(positional, dim=1).tolist()
    for row, lp in zip(tokens[:, 1:].tolist(), pos, strict=True):
        length = row.index(specials.eos) + 1
        total = sum(lp[:length])
        hyps.append(
            Hypothesis(
                tokens=row[:length], score=total / length**cfg.lenpen, positional_scores=lp[:length]
            )
        )
    return hyps
