"""What a search returns for each sentence: its finished hypotheses."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class Hypothesis:
    """One finished translation.

    Attributes:
        tokens: target ids, ending in ``</s>``.
        score: ``sum(positional_scores) / len(tokens) ** lenpen`` (natural log).
        positional_scores: the log-probability of each token (natural log).
        attention: ``(len(tokens), src_len)`` float32 on the CPU, only with ``need_alignment``:
            row t is the attention (last decoder layer, mean over heads and models) of the
            step that predicted ``tokens[t]``; ``src_len`` is this sentence's length
            (``</s>`` included, no padding).
        alignment: only with ``need_alignment``: the source position of each token but the
            final ``</s>`` (:func:`~nmt_preln.search.alignment.hard_alignment`).
    """

    tokens: list[int]
    score: float
    positional_scores: list[float]
    attention: Tensor | None = None
    alignment: list[int] | None = None
