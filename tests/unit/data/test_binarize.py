"""The vectorised steps of preprocessing: cleaning, counting, lookup, writing with </s>."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nmt_preln.data.binarize import (
    EncodedText,
    WhitespaceSegmenter,
    binarize,
    build_dictionary,
    clean_mask,
    count_symbols,
    lookup_table,
)
from nmt_preln.data.dictionary import Dictionary
from nmt_preln.data.indexed_dataset import IndexedDataset


def test_clean_mask_first_reason_wins() -> None:
    src = np.array([0, 1, 3, 30, 2, 10, 4])
    tgt = np.array([5, 1, 3, 3, 0, 1, 4])
    keep, dropped = clean_mask(src, tgt, min_len=2, max_len=20, max_len_ratio=2.0)
    assert keep.tolist() == [False, False, True, False, False, False, True]
    assert dropped == {"empty": 2, "too_short": 2, "too_long": 1, "ratio": 0}
    keep, dropped = clean_mask(src, tgt, min_len=1, max_len=250, max_len_ratio=2.0)
    assert dropped == {"empty": 2, "too_short": 0, "too_long": 0, "ratio": 2}
    keep, dropped = clean_mask(src, tgt, min_len=1, max_len=250, max_len_ratio=0.0)
    assert dropped["ratio"] == 0 and int(keep.sum()) == 5


def test_select_keeps_token_alignment() -> None:
    text = EncodedText(np.array([1, 2, 3, 4, 5, 6], np.int32), np.array([2, 0, 1, 3]))
    kept = text.select(np.array([True, True, False, True]))
    assert kept.ids.tolist() == [1, 2, 4, 5, 6] and kept.sizes.tolist() == [2, 0, 3]


def test_whitespace_segmenter_is_consistent() -> None:
    seg = WhitespaceSegmenter()
    ids = seg.encode_ids(["a b@@ c", "c a", ""])
    assert ids == [[0, 1, 2], [2, 0], []]
    assert seg.pieces() == ["a", "b@@", "c"]


def test_dictionary_from_counts_and_lookup_maps_specials_to_unk() -> None:
    pieces = ["<unk>", "<s>", "x", "y", "</s>", "<pad>", "z"]
    text = EncodedText(np.array([0, 1, 2, 2, 3, 4, 5, 2], np.int32), np.array([8]))
    counts = count_symbols(text, pieces)
    assert dict(counts) == {"x": 3, "y": 1}  # specials are never counted
    d = build_dictionary(counts, threshold=0, nwords=-1)
    assert d.symbols[4:6] == ["x", "y"] and len(d) % 8 == 0
    table = lookup_table(pieces, d)
    assert table.tolist() == [d.unk, d.unk, d.index("x"), d.index("y"), d.unk, d.unk, d.unk]


def test_binarize_appends_eos_even_to_empty_sentences(tmp_path: Path) -> None:
    d = Dictionary()
    for s in "abc":
        d.add_symbol(s)
    pieces = ["a", "b", "q", "c"]
    text = EncodedText(np.array([0, 1, 2, 3, 0], np.int32), np.array([2, 0, 3]))
    unk = binarize(text, pieces, d, prefix=str(tmp_path / "x"))
    data = IndexedDataset(str(tmp_path / "x"))
    assert unk == 1
    assert [data[i].tolist() for i in range(3)] == [
        [d.index("a"), d.index("b"), d.eos],
        [d.eos],
        [d.unk, d.index("c"), d.index("a"), d.eos],
    ]
