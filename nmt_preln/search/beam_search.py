"""Batched beam search (fairseq semantics), its variants in one loop, and a plain greedy search.

Every step works on all ``batch * beam`` rows at once: no Python loop over sentences and no
``.item()`` inside the loop, except one host sync per step to shrink the batch. A sentence is
finished once ``beam`` hypotheses have ended in ``</s>`` (fairseq's rule: they are never
replaced later); its rows are then dropped from the scorer's caches, so late steps only pay for
the sentences still being decoded.

Scores are natural-log probabilities. A finished hypothesis of ``n`` tokens (``</s>`` included)
with per-token log-probs ``s_1..s_n`` has the score ``sum_i s_i / n ** lenpen``; candidates are
ranked by the raw sum while searching, like fairseq.

The strategies differ only in how a step's candidates are chosen (:func:`_candidates`): the
2 x beam best (beam search), one draw per beam (``--sampling``, :mod:`.sampling`), per group
with a diversity penalty (``--diverse-beam-groups``, :mod:`.diverse_beam`) or by bank of
constraint progress (``--constraints``, :mod:`.constraints`). ``prefix_tokens``
(``--prefix-size``) forces the first tokens and ``need_alignment`` (``--print-alignment``)
records the decoder's attention; when off, each costs one ``if`` per step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nmt_preln.config import SearchConfig
from nmt_preln.search.alignment import hard_alignment
from nmt_preln.search.constraints import (
    ConstraintState,
    ConstraintTable,
    constrained_candidates,
)
from nmt_preln.search.diverse_beam import diverse_candidates
from nmt_preln.search.ensemble import StepScorer
from nmt_preln.search.greedy import greedy_search
from nmt_preln.search.hypothesis import Hypothesis
from nmt_preln.search.sampling import sample_candidates
from nmt_preln.search.search_rules import (
    NEG_INF,
    Specials,
    constrain_,
    force_prefix_,
    max_lengths,
    prefix_at_step,
)

# Defined next door; importable from here as before.
__all__ = ["Hypothesis", "Specials", "beam_search", "greedy_search", "max_lengths"]


@dataclass
class _Finished:
    """Hypotheses finalized at one step (flattened over sentences)."""

    sentence: Tensor  # (m,) original batch index
    tokens: Tensor  # (m, step + 1) ending in </s>
    positional: Tensor  # (m, step + 1)
    score: Tensor  # (m,)
    attention: Tensor | None  # (m, step + 1, S) with need_alignment


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
    attention: Tensor | None = None  # (n*k, step, S) with need_alignment
    constraint: ConstraintState | None = None  # (n*k, C) with constraints


@dataclass
class _Candidates:
    """The continuations proposed at one step, each ``(n, c)``, in the strategy's order."""

    scores: Tensor  # new summed log-probs
    parent: Tensor  # the row each one extends
    tokens: Tensor
    step_lp: Tensor  # the new token's log-prob
    constraint: ConstraintState | None = None  # (n*c, C) the state after each candidate


def _score(
    scorer: StepScorer, beams: _Beams, *, need_alignment: bool
) -> tuple[Tensor, Tensor | None]:
    """Next-token log-probs ``(n*k, V)`` and, with ``need_alignment``, attention ``(n*k, S)``."""
    last = beams.tokens[:, -1]  # (n*k,)
    if not need_alignment:
        return scorer.step(last), None
    lprobs, attention = scorer.step_with_attention(last)
    if beams.attention is None:  # the source width is known from the first step on
        beams.attention = attention.new_zeros(attention.size(0), 0, attention.size(1))
    return lprobs, attention


def _apply_rules(
    lprobs: Tensor,
    beams: _Beams,
    *,
    step: int,
    cfg: SearchConfig,
    specials: Specials,
    prefix_tokens: Tensor | None,
) -> None:
    """The step rules of :func:`constrain_`, then the forced prefix (in place)."""
    forced = model_lprobs = None
    if prefix_tokens is not None and step < prefix_tokens.size(1):
        rows = beams.cum.size(1)
        forced = prefix_at_step(
            prefix_tokens, step=step, sent=beams.sent, rows=rows, max_lens=beams.row_max,
            pad=specials.pad,
        )  # fmt: skip
        model_lprobs = lprobs.gather(1, forced[:, None]).squeeze(1)  # before the rules
    constrain_(
        lprobs,
        step=step,
        prefix=beams.tokens[:, 1:],
        max_lens=beams.row_max,
        cfg=cfg,
        specials=specials,
    )
    if forced is not None and model_lprobs is not None:
        force_prefix_(
            lprobs, forced, model_lprobs=model_lprobs, specials=specials, unkpen=cfg.unkpen
        )


def _candidates(
    lprobs: Tensor,
    beams: _Beams,
    *,
    step: int,
    cfg: SearchConfig,
    specials: Specials,
    generator: torch.Generator | None,
    table: ConstraintTable | None,
) -> _Candidates:
    """The strategy's continuations of every live sentence (``beams.cum`` has 1 row per
    sentence at step 0, ``cfg.beam`` after)."""
    n, rows = beams.cum.shape
    lprobs = lprobs.view(n, rows, -1)  # (n, rows, V)
    vocab = lprobs.size(2)
    state = None
    if cfg.sampling:
        scores, parent, tokens = sample_candidates(
            lprobs, beams.cum, beam=cfg.beam, step=step, topk=cfg.sampling_topk,
            topp=cfg.sampling_topp, generator=generator, fallback_token=specials.eos,
        )  # fmt: skip
    elif cfg.diverse_beam_groups > 0:
        scores, parent, tokens = diverse_candidates(
            lprobs, beams.cum, beam=cfg.beam, groups=cfg.diverse_beam_groups,
            strength=cfg.diverse_beam_strength,
        )  # fmt: skip
    elif table is not None and beams.constraint is not None:
        scores, parent, tokens, state = constrained_candidates(
            lprobs, beams.cum, beam=cfg.beam, table=table, state=beams.constraint,
            sent=beams.sent, eos=specials.eos,
        )  # fmt: skip
    else:
        # 2 * beam candidates: at most `beam` of them are </s>, so `beam` always continue.
        flat = (beams.cum[:, :, None] + lprobs).view(n, rows * vocab)  # (n, rows*V)
        scores, index = flat.topk(min(2 * cfg.beam, rows * vocab), dim=1)  # (n, 2k)
        parent, tokens = torch.div(index, vocab, rounding_mode="floor"), index % vocab
    offsets = torch.arange(n, device=scores.device)[:, None] * rows  # (n, 1)
    return _Candidates(
        scores=scores,
        parent=parent + offsets,
        tokens=tokens,
        step_lp=scores - beams.cum.gather(1, parent),
        constraint=state,
    )


def _finalize(
    beams: _Beams,
    cand: _Candidates,
    *,
    k: int,
    step: int,
    fin_count: Tensor,
    cfg: SearchConfig,
    eos: int,
    step_attention: Tensor | None,
) -> _Finished | None:
    """Finalize ``</s>`` among the first ``k`` candidates while a sentence has room (fairseq)."""
    fin = (cand.tokens == eos) & torch.isfinite(cand.scores)  # (n, c)
    fin[:, k:] = False
    fin &= fin.cumsum(1) <= (k - fin_count[beams.sent])[:, None]
    fin_count.index_add_(0, beams.sent, fin.sum(1))
    where = fin.nonzero(as_tuple=True)
    rows = cand.parent[where]  # (m,)
    if not rows.numel():
        return None
    attention = None
    if step_attention is not None and beams.attention is not None:
        attention = torch.cat([beams.attention[rows], step_attention[rows][:, None]], dim=1)
    return _Finished(
        sentence=beams.sent[where[0]],
        tokens=torch.cat([beams.tokens[rows, 1:], torch.full_like(rows[:, None], eos)], dim=1),
        positional=torch.cat([beams.positional[rows], cand.step_lp[where][:, None]], dim=1),
        score=cand.scores[where] / (step + 1) ** cfg.lenpen,
        attention=attention,
    )


def _advance(
    beams: _Beams,
    cand: _Candidates,
    *,
    k: int,
    fin_count: Tensor,
    scorer: StepScorer,
    eos: int,
    step_attention: Tensor | None,
) -> _Beams | None:
    """Keep the first ``k`` non-``</s>`` candidates of each unfinished sentence (None: all done).

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
    attention, constraint = None, None
    if step_attention is not None and beams.attention is not None:
        attention = torch.cat([beams.attention[order], step_attention[order][:, None]], dim=1)
    if cand.constraint is not None:  # one state per candidate: (n*c, C)
        starts = torch.arange(keep.size(0), device=keep.device)[:, None] * is_eos.size(1)
        picked = keep + starts  # (n, k) flat candidate indices
        constraint = cand.constraint.index((picked if kept is None else picked[kept]).view(-1))
    return _Beams(
        sent=sent,
        tokens=torch.cat([beams.tokens[order], tokens.view(-1, 1)], dim=1),  # (n'*k, step + 2)
        positional=torch.cat([beams.positional[order], step_lp.view(-1, 1)], dim=1),
        cum=cum,
        row_max=beams.row_max[order],
        attention=attention,  # (n'*k, step + 1, S)
        constraint=constraint,
    )


def beam_search(
    scorer: StepScorer,
    *,
    src_lengths: Tensor,
    cfg: SearchConfig,
    specials: Specials,
    max_len_limit: int,
    generator: torch.Generator | None = None,
    prefix_tokens: Tensor | None = None,
    constraints: list[list[list[int]]] | None = None,
    need_alignment: bool = False,
) -> list[list[Hypothesis]]:
    """Translate a batch with beam search (or its variant that ``cfg`` selects).

    Args:
        scorer: next-token log-probs, one row per sentence on entry (it gets expanded to
            ``batch * beam`` rows and shrunk as sentences finish).
        src_lengths: ``(batch,)`` source lengths, ``</s>`` included.
        cfg: beam, nbest, lenpen, max_len_a/b, min_len, unkpen, no_repeat_ngram_size,
            sampling (+ topk/topp), diverse_beam_groups/strength, constraints (the mode).
            Checked by ``cfg.validate()`` first.
        specials: pad, eos, unk of the target dictionary.
        max_len_limit: the most tokens the decoder may generate (its positions).
        generator: random generator for sampling.
        prefix_tokens: ``(batch, N)`` target tokens to force at steps ``0..N-1``
            (``--prefix-size``: fairseq takes ``target[:, :N]``). A pad entry leaves that
            step free; a forced ``</s>`` ends the hypothesis (a reference shorter than N
            is reproduced whole, as in fairseq); during the prefix a sentence has one live
            beam, since every beam would be the same.
        constraints: with ``cfg.constraints`` (and only then): for each sentence, its
            phrases as target ids without ``</s>`` (an empty list: unconstrained). Every
            returned hypothesis contains them (see :mod:`.constraints`); a sentence whose
            phrases do not fit in its length limit gets no hypothesis (an empty list).
        need_alignment: fill :attr:`Hypothesis.attention` and :attr:`Hypothesis.alignment`
            (needs a scorer with ``step_with_attention``).

    Returns:
        For each sentence, up to ``cfg.nbest`` hypotheses, best score first.

    Raises:
        ValueError: ``prefix_tokens`` or ``constraints`` do not fit the batch or ``cfg``.
    """
    k, device, eos = cfg.beam, src_lengths.device, specials.eos
    bsz = src_lengths.numel()
    table = ConstraintTable.for_batch(constraints, mode=cfg.constraints, bsz=bsz, device=device)
    if prefix_tokens is not None and (prefix_tokens.dim() != 2 or len(prefix_tokens) != bsz):
        raise ValueError(f"prefix_tokens must be (batch={bsz}, N): {tuple(prefix_tokens.shape)}")
    row_max = max_lengths(src_lengths, cfg, limit=max_len_limit)
    # Step 0 runs one row per sentence (all beams would start identical); its k best
    # continuations become the k rows of each sentence (``_advance`` expands the scorer).
    beams: _Beams | None = _Beams(
        sent=torch.arange(bsz, device=device),
        tokens=torch.full((bsz, 1), eos, dtype=torch.long, device=device),
        positional=torch.zeros(bsz, 0, device=device),
        cum=torch.zeros(bsz, 1, device=device),
        row_max=row_max,
        constraint=None if table is None else table.initial_state(bsz),
    )
    fin_count = torch.zeros(bsz, dtype=torch.long, device=device)
    finished: list[_Finished] = []
    for step in range(int(row_max.max()) + 1):
        assert beams is not None
        lprobs, step_attention = _score(scorer, beams, need_alignment=need_alignment)
        _apply_rules(
            lprobs, beams, step=step, cfg=cfg, specials=specials, prefix_tokens=prefix_tokens
        )
        cand = _candidates(
            lprobs, beams, step=step, cfg=cfg, specials=specials, generator=generator, table=table
        )
        done = _finalize(
            beams, cand, k=k, step=step, fin_count=fin_count, cfg=cfg, eos=eos,
            step_attention=step_attention,
        )  # fmt: skip
        if done is not None:
            finished.append(done)
        beams = _advance(
            beams, cand, k=k, fin_count=fin_count, scorer=scorer, eos=eos,
            step_attention=step_attention,
        )  # fmt: skip
        if beams is None:
            break
    return _collect(finished, src_lengths=src_lengths.tolist(), nbest=cfg.nbest)


def _collect(
    finished: list[_Finished], *, src_lengths: list[int], nbest: int
) -> list[list[Hypothesis]]:
    """Group the finalized hypotheses per sentence, best first (stable for equal scores)."""
    per_sentence: list[list[Hypothesis]] = [[] for _ in src_lengths]
    for batch in finished:
        attention = None if batch.attention is None else batch.attention.float().cpu()
        for i, (s, toks, pos, score) in enumerate(
            zip(
                batch.sentence.tolist(),
                batch.tokens.tolist(),
                batch.positional.tolist(),
                batch.score.tolist(),
                strict=True,
            )
        ):
            hyp = Hypothesis(tokens=toks, score=score, positional_scores=pos)
            if attention is not None:
                hyp.attention = attention[i, :, : src_lengths[s]].clone()  # (T, S_s)
            per_sentence[s].append(hyp)
    results = [sorted(h, key=lambda h: -h.score)[:nbest] for h in per_sentence]
    for s, hyps in enumerate(results):
        for hyp in hyps:
            if hyp.attention is not None:
                hyp.alignment = hard_alignment(hyp.attention, src_len=src_lengths[s])
    return results
