"""Batched beam search (fairseq semantics), sampling in the same loop, and a plain greedy search.

Every step works on all ``batch * beam`` rows at once: no Python loop over sentences and no
``.item()`` inside the loop, except one host sync per step to shrink the batch. A sentence is
finished once ``beam`` hypotheses have ended in ``</s>`` (fairseq's rule: they are never
replaced later); its rows are then dropped from the scorer's caches, so late steps only pay for
the sentences still being decoded.

Scores are natural-log probabilities. A finished hypothesis of ``n`` tokens (``</s>`` included)
with per-token log-probs ``s_1..s_n`` has the score ``sum_i s_i / n ** lenpen``; candidates are
ranked by the raw sum while searching, like fairseq.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor

from nmt_preln.config import GenerateConfig
from nmt_preln.generate.ensemble import StepScorer
from nmt_preln.generate.sampling import sample_candidates

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


@dataclass
class Hypothesis:
    """One finished translation.

    Attributes:
        tokens: target ids, ending in ``</s>``.
        score: ``sum(positional_scores) / len(tokens) ** lenpen`` (natural log).
        positional_scores: the log-probability of each token (natural log).
    """

    tokens: list[int]
    score: float
    positional_scores: list[float]


def max_lengths(src_lengths: Tensor, cfg: GenerateConfig, *, limit: int) -> Tensor:
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
    cfg: GenerateConfig,
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


def _select(
    lprobs: Tensor,
    cum: Tensor,
    *,
    step: int,
    cfg: GenerateConfig,
    specials: Specials,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Candidates ``(scores, beams, tokens)``, each ``(batch, cands)``, best first for beam.

    ``cum`` is ``(batch, rows)``: one row per sentence at step 0, ``cfg.beam`` after.
    """
    bsz, rows = cum.shape
    vocab = lprobs.size(-1)
    lprobs = lprobs.view(bsz, rows, vocab)
    if cfg.sampling:
        return sample_candidates(
            lprobs,
            cum,
            beam=cfg.beam,
            step=step,
            topk=cfg.sampling_topk,
            topp=cfg.sampling_topp,
            generator=generator,
            fallback_token=specials.eos,
        )
    # 2 * beam candidates: at most `beam` of them are </s>, so `beam` always continue.
    flat = (cum[:, :, None] + lprobs).view(bsz, rows * vocab)  # (B, rows*V)
    scores, index = flat.topk(min(2 * cfg.beam, rows * vocab), dim=1)  # (B, 2k)
    return scores, torch.div(index, vocab, rounding_mode="floor"), index % vocab


@dataclass
class _Finished:
    """Hypotheses finalized at one step (flattened over sentences)."""

    sentence: Tensor  # (m,) original batch index
    tokens: Tensor  # (m, step + 1) ending in </s>
    positional: Tensor  # (m, step + 1)
    score: Tensor  # (m,)


@dataclass
class _Beams:
    """The live hypotheses of the ``n`` unfinished sentences, ``k`` rows each.

    Row ``i * k + j`` is beam ``j`` of active sentence ``i``; ``sent[i]`` is its batch index.
    """

    sent: Tensor  # (n,)
    tokens: Tensor  # (n*k, step + 1): the first </s>, then the generated tokens
    positional: Tensor  # (n*k, step) per-token log-probs
    cum: Tensor  # (n, k) summed log-probs; -inf marks an empty slot
    row_max: Tensor  # (n*k,) generated-token limit of each row


@dataclass
class _Candidates:
    """The continuations proposed at one step, each ``(n, c)``, best first for beam search."""

    scores: Tensor  # new summed log-probs
    parent: Tensor  # the row each one extends
    tokens: Tensor
    step_lp: Tensor  # the new token's log-prob


def _finalize(
    beams: _Beams,
    cand: _Candidates,
    *,
    k: int,
    step: int,
    fin_count: Tensor,
    cfg: GenerateConfig,
    eos: int,
) -> _Finished | None:
    """Finalize ``</s>`` among the top ``k`` candidates while a sentence has room (fairseq)."""
    fin = (cand.tokens == eos) & torch.isfinite(cand.scores)  # (n, c)
    fin[:, k:] = False
    fin &= fin.cumsum(1) <= (k - fin_count[beams.sent])[:, None]
    fin_count.index_add_(0, beams.sent, fin.sum(1))
    where = fin.nonzero(as_tuple=True)
    rows = cand.parent[where]  # (m,)
    if not rows.numel():
        return None
    return _Finished(
        sentence=beams.sent[where[0]],
        tokens=torch.cat([beams.tokens[rows, 1:], torch.full_like(rows[:, None], eos)], dim=1),
        positional=torch.cat([beams.positional[rows], cand.step_lp[where][:, None]], dim=1),
        score=cand.scores[where] / (step + 1) ** cfg.lenpen,
    )


def _advance(
    beams: _Beams, cand: _Candidates, *, k: int, fin_count: Tensor, scorer: StepScorer, eos: int
) -> _Beams | None:
    """Keep the ``k`` best non-``</s>`` candidates of each unfinished sentence (None: all done).

    Missing candidates (sampling, or everything blocked) become empty ``-inf`` slots. Finished
    sentences are dropped from every row-indexed state, the scorer's caches included.
    """
    is_eos = cand.tokens == eos
    keep = torch.argsort(is_eos.int(), dim=1, stable=True)[:, :k]  # (n, k) non-</s> first
    cum = cand.scores.gather(1, keep).masked_fill(is_eos.gather(1, keep), NEG_INF)
    order, tokens, step_lp = (t.gather(1, keep) for t in (cand.parent, cand.tokens, cand.step_lp))
    done = (fin_count[beams.sent] >= k) | ~torch.isfinite(cum).any(1)  # (n,)
    alive = (~done).nonzero().squeeze(1)  # the one host sync of the step, besides _finalize's
    if alive.numel() == 0:
        return None
    sent, kept = beams.sent, None
    if alive.numel() < sent.numel():
        sent, cum, order, kept = sent[alive], cum[alive], order[alive], alive
        tokens, step_lp = tokens[alive], step_lp[alive]
    order = order.view(-1)  # (n'*k,) row i * k + j still belongs to sentence i
    scorer.reorder(order, kept=kept)
    return _Beams(
        sent=sent,
        tokens=torch.cat([beams.tokens[order], tokens.view(-1, 1)], dim=1),  # (n'*k, step + 2)
        positional=torch.cat([beams.positional[order], step_lp.view(-1, 1)], dim=1),
        cum=cum,
        row_max=beams.row_max[order],
    )


def beam_search(
    scorer: StepScorer,
    *,
    src_lengths: Tensor,
    cfg: GenerateConfig,
    specials: Specials,
    max_len_limit: int,
    generator: torch.Generator | None = None,
) -> list[list[Hypothesis]]:
    """Translate a batch with beam search (or sampling when ``cfg.sampling``).

    Args:
        scorer: next-token log-probs, one row per sentence on entry (it gets expanded to
            ``batch * beam`` rows and shrunk as sentences finish).
        src_lengths: ``(batch,)`` source lengths, ``</s>`` included.
        cfg: beam, nbest, lenpen, max_len_a/b, min_len, unkpen, no_repeat_ngram_size, sampling.
        specials: pad, eos, unk of the target dictionary.
        max_len_limit: the most tokens the decoder may generate (its positions).
        generator: random generator for sampling.

    Returns:
        For each sentence, up to ``cfg.nbest`` hypotheses, best score first.
    """
    k, device, eos = cfg.beam, src_lengths.device, specials.eos
    bsz = src_lengths.numel()
    row_max = max_lengths(src_lengths, cfg, limit=max_len_limit)
    # Step 0 runs one row per sentence (all beams would start identical); its k best
    # continuations become the k rows of each sentence (``_advance`` expands the scorer).
    beams: _Beams | None = _Beams(
        sent=torch.arange(bsz, device=device),
        tokens=torch.full((bsz, 1), eos, dtype=torch.long, device=device),
        positional=torch.zeros(bsz, 0, device=device),
        cum=torch.zeros(bsz, 1, device=device),
        row_max=row_max,
    )
    fin_count = torch.zeros(bsz, dtype=torch.long, device=device)
    finished: list[_Finished] = []
    for step in range(int(row_max.max()) + 1):
        assert beams is not None
        lprobs = scorer.step(beams.tokens[:, -1])  # (n*k, V)
        constrain_(
            lprobs,
            step=step,
            prefix=beams.tokens[:, 1:],
            max_lens=beams.row_max,
            cfg=cfg,
            specials=specials,
        )
        scores, parent_beam, tokens = _select(
            lprobs, beams.cum, step=step, cfg=cfg, specials=specials, generator=generator
        )
        rows = beams.cum.size(1)  # per sentence: 1 at step 0, then k
        offsets = torch.arange(beams.sent.numel(), device=device)[:, None] * rows  # (n, 1)
        cand = _Candidates(
            scores=scores,
            parent=parent_beam + offsets,
            tokens=tokens,
            step_lp=scores - beams.cum.gather(1, parent_beam),
        )
        done = _finalize(beams, cand, k=k, step=step, fin_count=fin_count, cfg=cfg, eos=eos)
        if done is not None:
            finished.append(done)
        beams = _advance(beams, cand, k=k, fin_count=fin_count, scorer=scorer, eos=eos)
        if beams is None:
            break
    return _collect(finished, bsz=bsz, nbest=cfg.nbest)


def _collect(finished: list[_Finished], *, bsz: int, nbest: int) -> list[list[Hypothesis]]:
    """Group the finalized hypotheses per sentence, best first (stable for equal scores)."""
    per_sentence: list[list[Hypothesis]] = [[] for _ in range(bsz)]
    for batch in finished:
        for s, toks, pos, score in zip(
            batch.sentence.tolist(),
            batch.tokens.tolist(),
            batch.positional.tolist(),
            batch.score.tolist(),
            strict=True,
        ):
            per_sentence[s].append(Hypothesis(tokens=toks, score=score, positional_scores=pos))
    return [sorted(h, key=lambda h: -h.score)[:nbest] for h in per_sentence]


def greedy_search(
    scorer: StepScorer,
    *,
    src_lengths: Tensor,
    cfg: GenerateConfig,
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
