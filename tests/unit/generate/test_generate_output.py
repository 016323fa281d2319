"""fairseq line formats, plain output, sacreBLEU scoring, raw-input reading and batching."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from nmt_preln.data.dictionary import Dictionary
from nmt_preln.data.segmenter import Segmenter
from nmt_preln.generate.inputs import encode_lines, read_line_chunks
from nmt_preln.generate.output import Translation, format_translations
from nmt_preln.generate.scoring import score_corpus
from nmt_preln.search.beam_search import Hypothesis
from nmt_preln.search.source_items import make_batches


def pieces(h: Hypothesis) -> str:
    return " ".join(f"w{t}" for t in h.tokens[:-1])


def detok(text: str) -> str:
    return text.upper()


def translation(id: int, src: str, ref: str | None, hyps: list[Hypothesis]) -> Translation:
    return Translation(
        id=id, src_pieces=src, ref_pieces=ref, hypotheses=hyps, pieces=[pieces(h) for h in hyps]
    )


def test_fairseq_lines_sorted_by_id_in_base_2() -> None:
    hyp = Hypothesis(
        tokens=[5, 6, 2],
        score=-math.log(2) * 1.5,
        positional_scores=[-math.log(2), -math.log(4), 0.0],
    )
    items = [translation(3, "a b", "x y", [hyp, hyp]), translation(1, "c", None, [hyp])]
    lines = format_translations(items, plain=False, detokenize=detok).splitlines()
    assert lines[:5] == [
        "S-1\tc",
        "H-1\t-1.5\tw5 w6",
        "D-1\t-1.5\tW5 W6",
        "P-1\t-1.0000 -2.0000 0.0000",
        "S-3\ta b",
    ]
    assert lines[5] == "T-3\tx y"
    assert len(lines) == 12


def test_plain_lines_and_empty_inputs() -> None:
    hyp = Hypothesis(tokens=[7, 2], score=-1.0, positional_scores=[-0.5, -0.5])
    items = [translation(1, "", None, []), translation(0, "a", None, [hyp])]
    assert format_translations(items, plain=True, detokenize=detok) == "W7\n\n"
    fairseq = format_translations(items, plain=False, detokenize=detok)
    assert "H-1\t0.0\t\n" in fairseq and "D-1\t0.0\t\n" in fairseq
    assert format_translations([], plain=True, detokenize=detok) == ""


def test_scores() -> None:
    refs = ["The cat sat on the mat.", "A dog barked loudly at night."]
    perfect = score_corpus(
        hypotheses=refs,
        references=refs,
        hypothesis_pieces=["▁a ▁b"] * 2,
        reference_pieces=["▁a ▁b"] * 2,
        subset="test",
        beam=4,
    )
    assert perfect.bleu == pytest.approx(100.0) and perfect.chrf == pytest.approx(100.0)
    assert perfect.lines[0].startswith("sacreBLEU BLEU = 100.00") and "tok:13a" in perfect.lines[0]
    assert perfect.lines[1].startswith("sacreBLEU chrF2 = 100.00")
    assert perfect.lines[2].startswith(
        "Generate test with beam=4: BLEU4 = 0.00, 100.0/100.0/0.0/0.0"
    )
    worse = score_corpus(
        hypotheses=["The cat sat.", "A cow."],
        references=refs,
        hypothesis_pieces=["▁a ▁b ▁c ▁d"] * 2,
        reference_pieces=["▁a ▁b ▁c ▁d"] * 2,
        subset="valid",
        beam=1,
    )
    assert (
        worse.bleu < 50
        and worse.chrf < perfect.chrf
        and worse.tokenized_bleu == pytest.approx(100.0)
    )
    with pytest.raises(ValueError):
        score_corpus(
            hypotheses=[],
            references=[],
            hypothesis_pieces=[],
            reference_pieces=[],
            subset="t",
            beam=1,
        )


def test_read_line_chunks_replaces_invalid_utf8() -> None:
    warnings: list[str] = []
    stream = io.BytesIO(b"one\r\ntw\xc3o\nthree\n\nfive")
    chunks = list(read_line_chunks(stream, chunk_size=2, name="in.txt", warn=warnings.append))
    assert chunks == [["one", "tw\ufffdo"], ["three", ""], ["five"]]
    assert warnings == ["in.txt: line 2: invalid UTF-8 at byte 2, replaced by U+FFFD"]


def test_encode_lines_handles_empty_and_long_lines() -> None:
    d = Dictionary()
    for w in ["a", "b", "c"]:
        d.add_symbol(w)
    warnings: list[str] = []
    items = encode_lines(
        ["a b", "  ", "a b c a b c", "zz"],
        first_id=10,
        segmenter=Segmenter(None),
        src_dict=d,
        max_positions=4,
        name="<stdin>",
        warn=warnings.append,
    )
    assert [i.id for i in items] == [10, 11, 12, 13]
    assert items[0].src.tolist() == [4, 5, 2] and items[1].src.size == 0
    assert items[2].src.tolist() == [4, 5, 6, 2] and items[3].src.tolist() == [3, 2]
    assert warnings[0] == "<stdin>: line 12: empty line, its translation is empty"
    assert warnings[1].startswith("<stdin>: line 13: 7 tokens exceed the model's 4 positions")


def test_remove_bpe() -> None:
    assert (
        Segmenter(None, remove_bpe="@@ ").decode("new@@ s ab@@ c@@") == "news abc"
    )  # fairseq: a final marker goes too
    assert Segmenter(None).decode("new@@ s") == "new@@ s"


@pytest.mark.parametrize(("batch_size", "max_tokens"), [(3, 0), (100, 12), (2, 7)])
def test_make_batches_respects_limits(batch_size: int, max_tokens: int) -> None:
    lengths = np.random.default_rng(0).integers(1, 9, size=23).tolist()
    batches = make_batches(lengths, batch_size=batch_size, max_tokens=max_tokens)
    assert sorted(i for b in batches for i in b) == list(range(23))
    for b in batches:
        assert len(b) <= batch_size
        width = max(lengths[i] for i in b)
        assert len(b) == 1 or max_tokens == 0 or len(b) * width <= max_tokens
