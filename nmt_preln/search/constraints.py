"""Lexically constrained beam search (``--constraints``): fairseq's dynamic beam allocation.

Every sentence comes with phrases (token sequences) that each finished hypothesis must contain
(Hu et al. 2019; Post & Vilar 2018, as fairseq's LexicallyConstrainedBeamSearch):

* ``ordered``: the phrases occur one after the other, in the given order, without overlapping.
* ``unordered``: each phrase occurs somewhere; a phrase listed r times occurs r times (those
  occurrences do not overlap each other), while different phrases may share tokens.

Progress is tracked per hypothesis with tensors (no Python object per beam): for each phrase,
``progress`` is the length of the longest prefix of the phrase that ends the output so far
(Knuth-Morris-Pratt, so a false start never hides a real match), and ``done`` whether it
occurred. ``</s>`` is blocked until every phrase is done, so the search never finishes a
hypothesis that misses one; a sentence whose phrases cannot fit before the length limit ends
with no hypothesis at all.

Each step, the candidates are the usual 2 x beam best, the best token of every beam, and the
next token of every phrase in progress; they are grouped into banks by the number of
constraint tokens met, and the beam is filled round-robin across the banks, fullest bank first
(fairseq's rule, so hypotheses that advance the constraints survive next to better-scoring ones).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nmt_preln.config.generate import CONSTRAINT_MODES
from nmt_preln.search.search_rules import NEG_INF


@dataclass
class ConstraintState:
    """How far each hypothesis is through its sentence's phrases.

    Attributes:
        progress: ``(rows, C)`` tokens of each phrase matched at the end of the output.
        done: ``(rows, C)`` bool, the phrase occurred (then its progress is 0).
    """

    progress: Tensor
    done: Tensor

    def index(self, rows: Tensor) -> ConstraintState:
        """The states of ``rows (rows',)``."""
        return ConstraintState(self.progress[rows], self.done[rows])


def _borders(phrase: list[int], width: int) -> Tensor:
    """``(width + 1, width + 1)`` bool: ``[j, m]`` iff ``phrase[:m]`` ends ``phrase[:j]``."""
    table = torch.zeros(width + 1, width + 1, dtype=torch.bool)
    for j in range(len(phrase) + 1):
        for m in range(j + 1):
            table[j, m] = phrase[:m] == phrase[j - m : j]
    return table


@dataclass(frozen=True)
class ConstraintTable:
    """The phrases of a batch as padded tensors, built once per batch.

    Attributes:
        phrases: ``(batch, C, L)`` token ids, -1 past the end of each phrase.
        lengths: ``(batch, C)`` phrase lengths; 0 where a sentence has fewer than C phrases.
        borders: ``(batch, C, L + 1, L + 1)`` bool, :func:`_borders` of each phrase (the KMP
            failure structure as a table, so advancing needs no loop).
        twins: ``(batch, C, C)`` bool, ``[b, c, d]``: ``d < c`` is the same phrase as ``c``.
        ordered: the ``ordered`` mode.
        most_tokens: the most constraint tokens of any sentence (the highest bank).
    """

    phrases: Tensor
    lengths: Tensor
    borders: Tensor
    twins: Tensor
    ordered: bool
    most_tokens: int

    @classmethod
    def build(
        cls, constraints: list[list[list[int]]], *, ordered: bool, device: torch.device
    ) -> ConstraintTable:
        """Tensors of ``constraints[sentence][phrase]`` (token ids, no ``</s>``)."""
        count = max([len(c) for c in constraints] + [1])
        width = max([len(p) for c in constraints for p in c] + [1])
        batch = len(constraints)
        phrases = torch.full((batch, count, width), -1, dtype=torch.long)
        lengths = torch.zeros(batch, count, dtype=torch.long)
        borders = torch.zeros(batch, count, width + 1, width + 1, dtype=torch.bool)
        twins = torch.zeros(batch, count, count, dtype=torch.bool)
        for b, sentence in enumerate(constraints):
            for c, phrase in enumerate(sentence):
                phrases[b, c, : len(phrase)] = torch.tensor(phrase, dtype=torch.long)
                lengths[b, c] = len(phrase)
                borders[b, c] = _borders(phrase, width)
                for d in range(c):
                    twins[b, c, d] = sentence[d] == phrase
        return cls(
            phrases=phrases.to(device),
            lengths=lengths.to(device),
            borders=borders.to(device),
            twins=twins.to(device),
            ordered=ordered,
            most_tokens=int(lengths.sum(1).max()),
        )

    @classmethod
    def for_batch(
        cls,
        constraints: list[list[list[int]]] | None,
        *,
        mode: str | None,
        bsz: int,
        device: torch.device,
    ) -> ConstraintTable | None:
        """The batch's table (None without constraints), checking the search's arguments.

        Args:
            constraints: phrases per sentence, or None.
            mode: ``cfg.constraints``: "ordered", "unordered" or None (given with
                ``constraints`` and only then).
            bsz: sentences in the batch.
            device: where the search runs.

        Raises:
            ValueError: the arguments do not fit together.
        """
        if (constraints is None) != (mode is None):
            raise ValueError("constraints and cfg.constraints must be given together")
        if constraints is None:
            return None
        if mode not in CONSTRAINT_MODES:
            raise ValueError(f"cfg.constraints must be one of {CONSTRAINT_MODES}, got {mode}")
        if len(constraints) != bsz:
            raise ValueError(f"{len(constraints)} constraint lists for {bsz} sentences")
        return cls.build(constraints, ordered=mode == "ordered", device=device)

    def initial_state(self, rows: int) -> ConstraintState:
        """Nothing matched yet, for ``rows`` hypotheses."""
        shape = (rows, self.lengths.size(1))
        device = self.lengths.device
        return ConstraintState(
            torch.zeros(shape, dtype=torch.long, device=device),
            torch.zeros(shape, dtype=torch.bool, device=device),
        )

    def active(self, state: ConstraintState, sent: Tensor) -> Tensor:
        """``(rows, C)`` bool: the phrases a row's next token can advance.

        ``sent (rows,)`` is the batch index of each row. Ordered: the first unfinished phrase.
        Unordered: every unfinished phrase whose earlier twins are all done.
        """
        pending = (self.lengths[sent] > 0) & ~state.done  # (rows, C)
        if self.ordered:
            return pending & (pending.cumsum(1) == 1)
        waiting = (self.twins[sent] & pending[:, None, :]).any(-1)  # (rows, C)
        return pending & ~waiting

    def finished(self, state: ConstraintState, sent: Tensor) -> Tensor:
        """``(rows,)`` bool: every phrase occurred (a row may end here)."""
        return (state.done | (self.lengths[sent] == 0)).all(1)

    def bank(self, state: ConstraintState, sent: Tensor) -> Tensor:
        """``(rows,)`` constraint tokens met: whole phrases plus the longest partial match."""
        whole = (self.lengths[sent] * state.done).sum(1)  # (rows,)
        return whole + state.progress.amax(1)

    def next_tokens(self, state: ConstraintState, sent: Tensor) -> Tensor:
        """``(rows, C)`` the token that extends each active phrase's match; -1 for none."""
        phrases = self.phrases[sent]  # (rows, C, L)
        at = state.progress.clamp(max=phrases.size(2) - 1)[:, :, None]  # (rows, C, 1)
        tokens = phrases.gather(2, at).squeeze(2)  # (rows, C)
        return tokens.masked_fill(~self.active(state, sent), -1)

    def advance(self, state: ConstraintState, tokens: Tensor, *, sent: Tensor) -> ConstraintState:
        """The states after appending ``tokens (rows,)`` to rows of sentences ``sent (rows,)``.

        The new match of an active phrase is the longest ``m`` with ``phrase[m - 1] == token``
        and ``phrase[:m - 1]`` ending the current match (a border of it).
        """
        phrases, lengths = self.phrases[sent], self.lengths[sent]  # (rows, C, L), (rows, C)
        width = phrases.size(2)
        phrase_ids = torch.arange(phrases.size(1), device=sent.device)[None, :]  # (1, C)
        borders = self.borders[sent[:, None], phrase_ids, state.progress]  # (rows, C, L + 1)
        hit = borders[:, :, :width] & (phrases == tokens[:, None, None])  # (rows, C, L)
        sizes = torch.arange(1, width + 1, device=sent.device)  # match length if hit at m - 1
        matched = (hit * sizes).amax(2)  # (rows, C)
        active = self.active(state, sent)
        complete = active & (matched == lengths)
        progress = torch.where(active, matched, state.progress).masked_fill(complete, 0)
        return ConstraintState(progress, state.done | complete)


def constrained_candidates(
    lprobs: Tensor,
    cum: Tensor,
    *,
    beam: int,
    table: ConstraintTable,
    state: ConstraintState,
    sent: Tensor,
    eos: int,
) -> tuple[Tensor, Tensor, Tensor, ConstraintState]:
    """One step of fairseq's LexicallyConstrainedBeamSearch over ``n`` sentences.

    Args:
        lprobs: ``(n, rows, vocab)`` after the step rules; ``</s>`` gets blocked here for
            rows whose constraints are not all met.
        cum: ``(n, rows)`` summed log-probs (``-inf`` = empty slot).
        beam: the beam size k.
        table: the batch's phrases.
        state: ``(n * rows, C)`` the rows' progress.
        sent: ``(n,)`` batch index of each sentence.
        eos: the ``</s>`` index.

    Returns:
        ``(scores, beams, tokens)``, each ``(n, c)`` with ``c = min(2k, rows * vocab)``, in
        allocation order (not sorted by score; empty candidates are ``-inf``, at the end),
        and the constraint state after each candidate, ``(n * c, C)``.
    """
    n, rows, vocab = lprobs.shape
    row_sent = sent.repeat_interleave(rows)  # (n*rows,)
    unmet = ~table.finished(state, row_sent)  # (n*rows,)
    lprobs.view(n * rows, vocab)[:, eos].masked_fill_(unmet, NEG_INF)
    total = cum[:, :, None] + lprobs  # (n, rows, V)
    width = min(2 * beam, rows * vocab)
    scores, beams, tokens = _proposals(total, table.next_tokens(state, row_sent), width=width)
    parents = beams + torch.arange(n, device=sent.device)[:, None] * rows  # (n, c') row ids
    after = table.advance(
        state.index(parents.view(-1)), tokens.view(-1), sent=row_sent[parents.view(-1)]
    )
    banks = table.bank(after, row_sent[parents.view(-1)]).view(n, -1)  # (n, c')
    # The three sources propose some continuations twice: keep one of each.
    scores = scores.masked_fill(_duplicates(beams * vocab + tokens), NEG_INF)
    order = _allocation_order(scores, banks, top_bank=table.most_tokens)[:, :width]
    flat = (order + torch.arange(n, device=sent.device)[:, None] * scores.size(1)).view(-1)
    return (
        scores.gather(1, order),
        beams.gather(1, order),
        tokens.gather(1, order),
        after.index(flat),
    )


def _proposals(total: Tensor, next_tokens: Tensor, *, width: int) -> tuple[Tensor, Tensor, Tensor]:
    """All candidates before allocation: ``(scores, beams, tokens)``, each ``(n, c')``.

    Args:
        total: ``(n, rows, V)`` candidate scores (prefix sum + next-token log-prob).
        next_tokens: ``(n * rows, C)`` from :meth:`ConstraintTable.next_tokens`.
        width: how many overall best candidates to take.
    """
    n, rows, vocab = total.shape
    device = total.device
    top_scores, top_index = total.view(n, rows * vocab).topk(width, dim=1)  # (n, width)
    best_scores, best_tokens = total.max(dim=2)  # (n, rows): every beam's own best
    wanted = next_tokens.view(n, -1)  # (n, rows*C), -1 = none
    per_row = next_tokens.size(1)
    row_starts = torch.arange(rows, device=device).repeat_interleave(per_row) * vocab  # (rows*C,)
    wanted_scores = total.view(n, -1).gather(1, row_starts[None, :] + wanted.clamp(min=0))
    wanted_scores = wanted_scores.masked_fill(wanted < 0, NEG_INF)  # (n, rows*C)
    row_ids = torch.arange(rows, device=device)[None, :].expand(n, rows)  # (n, rows)
    scores = torch.cat([top_scores, best_scores, wanted_scores], dim=1)  # (n, c')
    beams = torch.cat(
        [
            torch.div(top_index, vocab, rounding_mode="floor"),
            row_ids,
            row_ids.repeat_interleave(per_row, dim=1),
        ],
        dim=1,
    )
    tokens = torch.cat([top_index % vocab, best_tokens, wanted.clamp(min=0)], dim=1)
    return scores, beams, tokens


def _duplicates(keys: Tensor) -> Tensor:
    """``(n, c')`` bool: the key occurred earlier in its row (all but one of equal keys)."""
    by_key = keys.argsort(dim=1, stable=True)  # (n, c')
    sorted_keys = keys.gather(1, by_key)
    repeat = torch.zeros_like(keys, dtype=torch.bool)
    repeat[:, 1:] = sorted_keys[:, 1:] == sorted_keys[:, :-1]
    return torch.zeros_like(repeat).scatter(1, by_key, repeat)


def _allocation_order(scores: Tensor, banks: Tensor, *, top_bank: int) -> Tensor:
    """``(n, c')`` candidate indices: round-robin over banks (fullest first), best first.

    The best of the fullest bank comes first, then the best of the next bank ... then the
    second best of the fullest bank, and so on; ``-inf`` candidates go last. Banks are
    ``<= top_bank``.
    """
    n, c = scores.shape
    positions = torch.arange(c, device=scores.device).expand(n, c)
    banks = banks.masked_fill(~torch.isfinite(scores), -1)
    by_score = scores.argsort(dim=1, descending=True, stable=True)
    by_bank = banks.gather(1, by_score).argsort(dim=1, descending=True, stable=True)
    order = by_score.gather(1, by_bank)
    ranked_banks = banks.gather(1, order)  # (n, c') bank desc, then score desc
    first = torch.ones_like(ranked_banks, dtype=torch.bool)
    first[:, 1:] = ranked_banks[:, 1:] != ranked_banks[:, :-1]
    rank = positions - (positions * first).cummax(dim=1).values  # place within its bank
    top = top_bank + 2
    stripe = rank * top + (top - 1 - ranked_banks)
    stripe = stripe.masked_fill(ranked_banks < 0, c * top + top)  # -inf: after everything
    return order.gather(1, stripe.argsort(dim=1, stable=True))
