"""References print an unknown word as fairseq-generate does, so BLEU4 agrees with fairseq."""

from __future__ import annotations

from nmt_preln.data.dictionary import Dictionary
from nmt_preln.generate.scoring import score_corpus


def _dictionary() -> Dictionary:
    d = Dictionary()
    for word in ("a", "b"):
        d.add_symbol(word)
    return d


def test_escape_unk_writes_unk_as_fairseq_does() -> None:
    d = _dictionary()
    ids = [d.index("a"), d.unk, d.index("b"), d.eos]
    assert d.string(ids) == "a <unk> b"
    assert d.string(ids, escape_unk=True) == "a <<unk>> b"


def test_an_unknown_reference_word_does_not_match_an_unknown_hypothesis_word() -> None:
    d = _dictionary()
    ids = [d.index("a"), d.unk, d.index("b"), d.index("a"), d.eos]
    hyp = d.string(ids)
    plain = score_corpus(hypotheses=[hyp], references=[hyp], hypothesis_pieces=[hyp],
                         reference_pieces=[d.string(ids)], subset="test", beam=1)  # fmt: skip
    escaped = score_corpus(hypotheses=[hyp], references=[hyp], hypothesis_pieces=[hyp],
                           reference_pieces=[d.string(ids, escape_unk=True)], subset="test",
                           beam=1)  # fmt: skip
    assert escaped.tokenized_bleu < plain.tokenized_bleu
