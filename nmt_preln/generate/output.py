"""The output lines of ``nmt-generate``: fairseq-generate's S/T/H/D/P lines, or plain text.

Scores in the fairseq format are in base 2, as fairseq 0.12 prints them: ``H``/``D`` carry the
length-normalized hypothesis score ``/ ln 2``, ``P`` the per-token log-probabilities ``/ ln 2``
(``</s>`` included). ``S``, ``T`` and ``H`` show pieces (fairseq without ``--post-process``),
``D`` the detokenized hypothesis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nmt_preln.generate.beam_search import Hypothesis

LN2 = math.log(2.0)


@dataclass
class Translation:
    """One source sentence and its results, ready to print.

    Attributes:
        id: the sentence's index in the split or input (0-based).
        src_pieces: the source as space-joined pieces.
        ref_pieces: the reference as space-joined pieces (None without references).
        hypotheses: best first; empty for an empty input line.
    """

    id: int
    src_pieces: str
    ref_pieces: str | None
    hypotheses: list[Hypothesis]


def fairseq_lines(
    item: Translation,
    *,
    hypothesis_pieces: Callable[[Hypothesis], str],
    detokenize: Callable[[str], str],
) -> list[str]:
    """The S-, T-, then H-/D-/P- lines of every hypothesis (no trailing newlines).

    Args:
        item: the sentence.
        hypothesis_pieces: the space-joined pieces of a hypothesis (``</s>`` stripped).
        detokenize: pieces -> text.
    """
    lines = [f"S-{item.id}\t{item.src_pieces}"]
    if item.ref_pieces is not None:
        lines.append(f"T-{item.id}\t{item.ref_pieces}")
    if not item.hypotheses:  # empty input: an empty translation keeps the ids aligned
        return [*lines, f"H-{item.id}\t0.0\t", f"D-{item.id}\t0.0\t", f"P-{item.id}\t"]
    for hyp in item.hypotheses:
        pieces = hypothesis_pieces(hyp)
        score = hyp.score / LN2
        positional = " ".join(f"{s / LN2:.4f}" for s in hyp.positional_scores)
        lines.append(f"H-{item.id}\t{score}\t{pieces}")
        lines.append(f"D-{item.id}\t{score}\t{detokenize(pieces)}")
        lines.append(f"P-{item.id}\t{positional}")
    return lines


def plain_line(
    item: Translation,
    *,
    hypothesis_pieces: Callable[[Hypothesis], str],
    detokenize: Callable[[str], str],
) -> str:
    """The detokenized best hypothesis (an empty string for an empty input)."""
    if not item.hypotheses:
        return ""
    return detokenize(hypothesis_pieces(item.hypotheses[0]))


def format_translations(
    items: Sequence[Translation],
    *,
    plain: bool,
    hypothesis_pieces: Callable[[Hypothesis], str],
    detokenize: Callable[[str], str],
) -> str:
    """All lines for ``items`` sorted by id, newline-terminated ('' for no items)."""
    lines: list[str] = []
    for item in sorted(items, key=lambda t: t.id):
        if plain:
            lines.append(
                plain_line(item, hypothesis_pieces=hypothesis_pieces, detokenize=detokenize)
            )
        else:
            lines += fairseq_lines(item, hypothesis_pieces=hypothesis_pieces, detokenize=detokenize)
    return "".join(line + "\n" for line in lines)
