"""Corpus scores of a translated split: sacreBLEU BLEU and chrF, and fairseq's tokenized BLEU.

BLEU and chrF use sacreBLEU's defaults (13a tokenization, exponential smoothing) on detokenized
text, and print their signatures so numbers can be compared across papers. The tokenized BLEU
line imitates fairseq-generate's ``Generate test with beam=5: BLEU4 = ...``: BLEU over the
pieces of the hypotheses and references as they are (sacreBLEU with ``tokenize="none"``), which
is only comparable with other runs using the same segmentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.metrics.bleu import BLEUScore


@dataclass
class CorpusScores:
    """Detokenized sacreBLEU scores, and fairseq's BLEU on pieces."""

    bleu: float
    chrf: float
    tokenized_bleu: float
    lines: list[str]  # human-readable report, one entry per line


def _fairseq_bleu_line(score: BLEUScore, *, subset: str, beam: int) -> str:
    precisions = "/".join(f"{p:.1f}" for p in score.precisions)
    return (
        f"Generate {subset} with beam={beam}: BLEU4 = {score.score:.2f}, {precisions} "
        f"(BP={score.bp:.3f}, ratio={score.ratio:.3f}, syslen={score.sys_len}, "
        f"reflen={score.ref_len})"
    )


def score_corpus(
    *,
    hypotheses: Sequence[str],
    references: Sequence[str],
    hypothesis_pieces: Sequence[str],
    reference_pieces: Sequence[str],
    subset: str,
    beam: int,
) -> CorpusScores:
    """Score detokenized text with sacreBLEU and pieces like fairseq.

    Args:
        hypotheses: detokenized best hypotheses, one per sentence.
        references: detokenized references, aligned with ``hypotheses``.
        hypothesis_pieces: the same hypotheses as space-joined pieces.
        reference_pieces: the references as space-joined pieces.
        subset: the split name, for the fairseq line.
        beam: the beam size, for the fairseq line.

    Returns:
        The scores and a printable report (BLEU and chrF with signatures, the fairseq line).
    """
    if not hypotheses or len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
    bleu, chrf = BLEU(), CHRF()
    bleu_score = bleu.corpus_score(list(hypotheses), [list(references)])
    chrf_score = chrf.corpus_score(list(hypotheses), [list(references)])
    # force=True: the pieces look tokenized on purpose, sacreBLEU would warn about it.
    tok_score = BLEU(tokenize="none", force=True).corpus_score(
        list(hypothesis_pieces), [list(reference_pieces)]
    )
    lines = [
        f"sacreBLEU {bleu_score} signature: {bleu.get_signature()}",
        f"sacreBLEU {chrf_score} signature: {chrf.get_signature()}",
        _fairseq_bleu_line(tok_score, subset=subset, beam=beam),
    ]
    return CorpusScores(
        bleu=bleu_score.score, chrf=chrf_score.score, tokenized_bleu=tok_score.score, lines=lines
    )
