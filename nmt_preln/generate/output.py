"""The output lines of ``nmt-generate``: fairseq's S/T/C/H/D/P/A lines, or plain text.

Scores in the fairseq format are in base 2, as fairseq 0.12 prints them: ``H``/``D`` carry the
length-normalized hypothesis score ``/ ln 2``, ``P`` the per-token log-probabilities ``/ ln 2``
(``</s>`` included). ``S``, ``T``, ``C`` (constraints) and ``H`` show pieces, as fairseq does
without ``--post-process``, so ``grep ^H | cut -f3 | spm_decode`` works; with ``--post-process``
they show its text. ``D`` always holds the detokenized hypothesis (SentencePiece decoding, or
the post-processing of pre-segmented data). ``A`` (``--print-alignment``) follows ``P``:
``hard`` gives ``srcpos-tgtpos`` pairs (0-based, ``</s>`` excluded on both sides), ``soft`` one
comma-separated source distribution per target token (``</s>`` included), as fairseq.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from torch import Tensor

from nmt_preln.search.beam_search import Hypothesis

LN2 = math.log(2.0)


def _same(text: str) -> str:
    return text


@dataclass
class Translation:
    """One source sentence and its results, ready to print.

    Attributes:
        id: the sentence's index in the split or input (0-based).
        src_pieces: the source as space-joined pieces.
        ref_pieces: the reference as space-joined pieces, ``<unk>`` written ``<<unk>>`` as
            fairseq does (None without references).
        hypotheses: best first; empty for an empty input line.
        pieces: the space-joined pieces of each hypothesis (``</s>`` stripped, ``<unk>``
            replaced under ``--replace-unk``), aligned with ``hypotheses``.
        alignments: the A- text of each hypothesis; empty: no A- lines.
        constraints: the constraints of the sentence as space-joined pieces (C- lines).
    """

    id: int
    src_pieces: str
    ref_pieces: str | None
    hypotheses: list[Hypothesis]
    pieces: list[str] = field(default_factory=list)
    alignments: list[str] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)


def hard_alignment(attention: Tensor, *, src_tokens: Sequence[int], tgt_tokens: Sequence[int],
                   eos: int) -> str:  # fmt: skip
    """fairseq's hard alignment: each target token's most attended source token.

    Args:
        attention: ``(tgt_len, src_len)`` attention of the hypothesis' tokens over the source.
        src_tokens: the source ids (ending in ``</s>``), ``src_len`` of them.
        tgt_tokens: the hypothesis ids (ending in ``</s>``), ``tgt_len`` of them.
        eos: ``</s>``, excluded on both sides.

    Returns:
        ``"s-t s-t ..."`` with 0-based source and target positions.
    """
    src_ok = [i for i, t in enumerate(src_tokens) if t != eos]
    tgt_ok = [j for j, t in enumerate(tgt_tokens) if t != eos]
    if not src_ok or not tgt_ok:
        return ""
    block = attention[tgt_ok][:, src_ok]  # (valid tgt, valid src)
    best = block.argmax(dim=1).tolist()
    return " ".join(f"{src_ok[s]}-{t}" for t, s in zip(tgt_ok, best, strict=True))


def soft_alignment(attention: Tensor) -> str:
    """fairseq's soft alignment: per target token, its attention over every source token.

    Args:
        attention: ``(tgt_len, src_len)``, ``</s>`` included on both sides.

    Returns:
        Space-separated target tokens, each a comma-separated list of 6-decimal probabilities.
    """
    return " ".join(",".join(f"{p:.6f}" for p in row) for row in attention.tolist())


class _Symbols(Protocol):
    bos: int
    pad: int
    eos: int
    unk: int

    def __getitem__(self, index: int) -> str: ...


def _attention(hyp: Hypothesis) -> Tensor | None:
    """The hypothesis' ``(tgt_len, src_len)`` attention, when the search recorded it."""
    return hyp.attention


def replace_unk(
    pieces: list[str],
    *,
    attention: Tensor,
    src_pieces: Sequence[str],
    unk: str,
    align_dict: Mapping[str, str],
) -> list[str]:
    """fairseq's ``--replace-unk``: each ``unk`` becomes its most attended source piece.

    The source piece is looked up in ``align_dict`` (``--replace-unk FILE``) and copied when
    absent. SentencePiece pieces carry a word-start mark U+2581 that a word-level dictionary
    lacks, so a marked piece is also looked up without it (and the mark is kept).

    Args:
        pieces: the hypothesis' pieces (``</s>`` excluded).
        attention: ``(>= len(pieces), >= len(src_pieces))`` attention of each target token
            over the source tokens (a trailing ``</s>`` row/column is ignored).
        src_pieces: the source pieces (``</s>`` excluded).
        unk: the unknown symbol.
        align_dict: source piece -> target piece.
    """
    if not src_pieces or unk not in pieces:
        return pieces
    best = attention[: len(pieces), : len(src_pieces)].argmax(dim=1).tolist()
    out = list(pieces)
    for j, piece in enumerate(pieces):
        if piece != unk:
            continue
        source = src_pieces[best[j]]
        if source in align_dict:
            out[j] = align_dict[source]
        elif source.startswith("\u2581") and source[1:] in align_dict:
            out[j] = "\u2581" + align_dict[source[1:]]
        else:
            out[j] = source
    return out


def hypothesis_pieces(
    hyp: Hypothesis,
    *,
    tgt_dict: _Symbols,
    src_pieces: Sequence[str],
    align_dict: Mapping[str, str] | None,
) -> str:
    """The space-joined pieces of ``hyp`` (specials dropped), ``<unk>`` replaced when asked."""
    special = {tgt_dict.bos, tgt_dict.pad, tgt_dict.eos}
    pieces = [tgt_dict[t] for t in hyp.tokens if t not in special]
    attention = _attention(hyp)
    if align_dict is not None and attention is not None:
        pieces = replace_unk(
            pieces,
            attention=attention,
            src_pieces=src_pieces,
            unk=tgt_dict[tgt_dict.unk],
            align_dict=align_dict,
        )
    return " ".join(pieces)


def alignment_text(hyp: Hypothesis, *, src_tokens: Sequence[int], kind: str | None,
                   eos: int) -> str:  # fmt: skip
    """The A- text of ``hyp``: ``hard`` or ``soft`` (see the module docstring)."""
    attention = _attention(hyp)
    if attention is None:
        return ""
    attention = attention[: len(hyp.tokens), : len(src_tokens)]  # (tgt_len, src_len)
    if kind == "soft":
        return soft_alignment(attention)
    return hard_alignment(attention, src_tokens=src_tokens, tgt_tokens=hyp.tokens, eos=eos)


def fairseq_lines(
    item: Translation,
    *,
    detokenize: Callable[[str], str],
    post_process: Callable[[str], str] = _same,
) -> list[str]:
    """The S-, T-, C-, then H-/D-/P-(/A-) lines of every hypothesis (no trailing newlines).

    Args:
        item: the sentence.
        detokenize: pieces -> text (the D- line).
        post_process: pieces -> what the S-/T-/C-/H- lines show (``--post-process``).
    """
    lines = [f"S-{item.id}\t{post_process(item.src_pieces)}"]
    if item.ref_pieces is not None:
        lines.append(f"T-{item.id}\t{post_process(item.ref_pieces)}")
    lines += [f"C-{item.id}\t{post_process(c)}" for c in item.constraints]
    if not item.hypotheses:  # empty input: an empty translation keeps the ids aligned
        return [*lines, f"H-{item.id}\t0.0\t", f"D-{item.id}\t0.0\t", f"P-{item.id}\t"]
    for j, (hyp, pieces) in enumerate(zip(item.hypotheses, item.pieces, strict=True)):
        score = hyp.score / LN2
        positional = " ".join(f"{s / LN2:.4f}" for s in hyp.positional_scores)
        lines.append(f"H-{item.id}\t{score}\t{post_process(pieces)}")
        lines.append(f"D-{item.id}\t{score}\t{detokenize(pieces)}")
        lines.append(f"P-{item.id}\t{positional}")
        if item.alignments:
            lines.append(f"A-{item.id}\t{item.alignments[j]}")
    return lines


def plain_line(item: Translation, *, detokenize: Callable[[str], str]) -> str:
    """The detokenized best hypothesis (an empty string for an empty input)."""
    if not item.hypotheses:
        return ""
    return detokenize(item.pieces[0])


def format_translations(
    items: Sequence[Translation],
    *,
    plain: bool,
    detokenize: Callable[[str], str],
    post_process: Callable[[str], str] = _same,
) -> str:
    """All lines for ``items`` sorted by id, newline-terminated ('' for no items)."""
    lines: list[str] = []
    for item in sorted(items, key=lambda t: t.id):
        if plain:
            lines.append(plain_line(item, detokenize=detokenize))
        else:
            lines += fairseq_lines(item, detokenize=detokenize, post_process=post_process)
    return "".join(line + "\n" for line in lines)
