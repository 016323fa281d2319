"""What every search step applies to the next-token log-probs.

:func:`constrain_` applies fairseq's per-step rules (no pad, ``--unkpen``, ``--min-len``,
``--no-repeat-ngram-size``, the length limit); :func:`force_prefix_` applies ``--prefix-size``.
Shared by :mod:`nmt_preln.search.beam_search` and its strategies. Which options go together is
``SearchConfig.validate``'s to say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from nmt_preln.config import SearchConfig

NEG_INF = -math.inf


class _HasSpecials(Protocol):
    pad: int
    eos: int
    unk: int


@dataclass(frozen=True)
class Specials:
    """The target dictionary's special indices that the search must know."""

    pad: int
    eos: int
    unk: int

    @classmethod
    def of(cls, dictionary: _HasSpecials) -> Specials:
        return cls(pad=dictionary.pad, eos=dictionary.eos, unk=dictionary.unk)


def max_lengths(src_lengths: Tensor, cfg: SearchConfig, *, limit: int) -> Tensor:
    """Per-sentence limit on generated tokens (``</s>`` excluded): ``min(a * src_len + b, limit)``.

    Unlike fairseq, ``src_len`` is each sentence's own length (``</s>`` included), not the padded
    batch width, so a translation never depends on the batch it was decoded in.
    """
    lengths = (cfg.max_len_a * src_lengths.double() + cfg.max_len_b).floor().long()
    return lengths.clamp(min=max(cfg.min_len, 1), max=limit)


def block_repeated_ngrams_(lprobs: Tensor, prefix: Tensor, *, n: int) -> None:
    """Forbid tokens that would repeat an n-gram of ``prefix`` (fairseq's NGramRepeatBlock).

    Args:
        lprobs: ``(rows, vocab)``, modified in place.
        prefix: ``(rows, t)`` the tokens generated so far.
        n: the n-gram order.
    """
    rows, t = prefix.shape
    if t < n:
        return
    vocab = lprobs.size(1)
    grams = prefix.unfold(1, n, 1)  # (rows, t - n + 1, n)
    tail = prefix[:, t - n + 1 :]  # (rows, n - 1)
    hit = (grams[:, :, :-1] == tail[:, None, :]).all(-1)  # (rows, t - n + 1)
    banned = grams[:, :, -1].masked_fill(~hit, vocab)  # misses go to a spare column
    mask = torch.zeros(rows, vocab + 1, dtype=torch.bool, device=lprobs.device)
    mask.scatter_(1, banned, True)
    lprobs.masked_fill_(mask[:, :vocab], NEG_INF)


def constrain_(
    lprobs: Tensor,
    *,
    step: int,
    prefix: Tensor,
    max_lens: Tensor,
    cfg: SearchConfig,
    specials: Specials,
) -> None:
    """Apply pad/unk/min-len/n-gram/max-len rules to ``lprobs (rows, vocab)`` in place.

    Args:
        lprobs: next-token log-probs.
        step: the number of tokens generated so far.
        prefix: ``(rows, step)`` those tokens.
        max_lens: ``(rows,)`` generated-token limits; at the limit only ``</s>`` stays allowed.
        cfg: beam/unkpen/min_len/no_repeat_ngram_size settings.
        specials: pad, eos, unk indices.
    """
    lprobs[:, specials.pad] = NEG_INF
    if cfg.unkpen:
        lprobs[:, specials.unk] -= cfg.unkpen
    at_limit = step >= max_lens  # (rows,)
    # One host check saves a pass over (rows, vocab) on the many steps where no row stops.
    limited = bool(at_limit.any())
    eos_scores = lprobs[:, specials.eos].clone() if limited else None  # for rows forced to stop
    if step < cfg.min_len:
        lprobs[:, specials.eos] = NEG_INF
    if cfg.no_repeat_ngram_size > 0:
        block_repeated_ngrams_(lprobs, prefix, n=cfg.no_repeat_ngram_size)
    if eos_scores is not None:
        lprobs.masked_fill_(at_limit[:, None], NEG_INF)
        lprobs[:, specials.eos] = torch.where(at_limit, eos_scores, lprobs[:, specials.eos])


def prefix_at_step(
    prefix_tokens: Tensor, *, step: int, sent: Tensor, rows: int, max_lens: Tensor, pad: int
) -> Tensor:
    """The token each row must produce at ``step`` (``pad``: none), for :func:`force_prefix_`.

    Args:
        prefix_tokens: ``(batch, N)`` forced target prefixes, ``step < N``; pad = free.
        step: the decoding step.
        sent: ``(n,)`` batch index of each live sentence.
        rows: rows per sentence (1 at step 0, the beam after).
        max_lens: ``(n * rows,)`` generated-token limits: a row at its limit is not forced
            (it must stop), as in fairseq.

    Returns:
        ``(n * rows,)`` token ids.
    """
    forced = prefix_tokens[sent, step].repeat_interleave(rows)  # (n*rows,)
    return forced.masked_fill(step >= max_lens, pad)


def force_prefix_(
    lprobs: Tensor, forced: Tensor, *, model_lprobs: Tensor, specials: Specials, unkpen: float
) -> None:
    """Leave only the forced token of each forced row, with its model log-prob (in place).

    Like fairseq, the forced token keeps its own score (``--unkpen`` applies to it) and
    ``--min-len`` does not block a forced ``</s>``; unlike fairseq, n-gram blocking never
    blocks a forced token (the prefix is given, not chosen).

    Args:
        lprobs: ``(rows, vocab)`` after :func:`constrain_`.
        forced: ``(rows,)`` from :func:`prefix_at_step`.
        model_lprobs: ``(rows,)`` the model's log-prob of ``forced``, taken before
            :func:`constrain_`.
        specials: pad (= not forced) and unk.
        unkpen: ``--unkpen``.
    """
    value = model_lprobs - unkpen * (forced == specials.unk).to(model_lprobs.dtype)  # (rows,)
    only = torch.full_like(lprobs, NEG_INF).scatter_(1, forced[:, None], value[:, None])
    lprobs.copy_(torch.where((forced != specials.pad)[:, None], only, lprobs))
