"""Text -> token ids -> cleaned -> dictionary indices -> .bin/.idx, vectorised with numpy.

Segmentation produces integer ids in the *segmenter's* vocabulary (SentencePiece ids, or ids
handed out to whitespace tokens as they appear). A whole split is kept as one flat id array plus
per-sentence sizes, so cleaning is a boolean mask, dictionary counts are one ``np.bincount`` and
mapping to dictionary indices is one table lookup: no Python work per token after segmenting.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain
from typing import Protocol

import numpy as np

from nmt_preln.data.dictionary import Dictionary
from nmt_preln.data.indexed_dataset import IndexedDatasetBuilder
from nmt_preln.data.rawtext import read_line_chunks
from nmt_preln.data.tokenizer import SentencePieceTokenizer

_SPECIALS = frozenset(Dictionary().symbols)
DROP_REASONS = ("empty", "too_short", "too_long", "ratio")


class Timings:
    """Seconds spent per named stage, accumulated over calls (for the report and benchmark)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + elapsed


class Segmenter(Protocol):
    """Turns lines into ids of its own vocabulary; ``pieces()[i]`` is the text of id ``i``."""

    def encode_ids(self, lines: list[str]) -> list[list[int]]: ...

    def pieces(self) -> list[str]: ...


class SpmSegmenter:
    """SentencePiece segmentation on ``num_threads`` cores (0: all)."""

    def __init__(self, tokenizer: SentencePieceTokenizer, *, num_threads: int) -> None:
        self.tokenizer = tokenizer
        self.num_threads = num_threads
        self._pieces = tokenizer.pieces()

    def encode_ids(self, lines: list[str]) -> list[list[int]]:
        return self.tokenizer.encode_ids(lines, num_threads=self.num_threads)

    def pieces(self) -> list[str]:
        return self._pieces


class WhitespaceSegmenter:
    """Text that is already segmented (e.g. ``@@ `` BPE): tokens are split on whitespace."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def encode_ids(self, lines: list[str]) -> list[list[int]]:
        ids = self._ids
        # len(ids) is evaluated before setdefault inserts, so a new token gets the next id.
        return [[ids.setdefault(tok, len(ids)) for tok in line.split()] for line in lines]

    def pieces(self) -> list[str]:
        return list(self._ids)  # dicts keep insertion order, which is id order


@dataclass
class EncodedText:
    """One side of a split in segmenter ids.

    Attributes:
        ids: (total_tokens,) int32, all sentences concatenated.
        sizes: (num_sentences,) int64 tokens per sentence (no ``</s>``).
    """

    ids: np.ndarray
    sizes: np.ndarray

    def select(self, keep: np.ndarray) -> EncodedText:
        """The sentences where ``keep`` (num_sentences,) is True."""
        return EncodedText(self.ids[np.repeat(keep, self.sizes)], self.sizes[keep])


def encode_file(path: str, segmenter: Segmenter, *, timings: Timings) -> EncodedText:
    """Read, check and segment a text file chunk by chunk into one :class:`EncodedText`."""
    ids_parts, size_parts = [], []
    chunks = read_line_chunks(path)
    while True:
        with timings.stage("read"):
            lines = next(chunks, None)
        if lines is None:
            break
        with timings.stage("encode"):
            encoded = segmenter.encode_ids(lines)
        with timings.stage("collect"):
            sizes = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
            total = int(sizes.sum())
            flat = chain.from_iterable(encoded)
            ids_parts.append(np.fromiter(flat, dtype=np.int32, count=total))
            size_parts.append(sizes)
    if not size_parts:
        return EncodedText(np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64))
    return EncodedText(np.concatenate(ids_parts), np.concatenate(size_parts))


def clean_mask(
    src_sizes: np.ndarray,
    tgt_sizes: np.ndarray,
    *,
    min_len: int,
    max_len: int,
    max_len_ratio: float,
) -> tuple[np.ndarray, dict[str, int]]:
    """Which sentence pairs to keep, and how many were dropped for each reason.

    A pair is dropped for the first reason that applies, in this order: ``empty`` (either side
    has no tokens), ``too_short`` (a side has fewer than ``min_len`` tokens), ``too_long`` (a
    side has more than ``max_len``), ``ratio`` (``max(s, t) > max_len_ratio * min(s, t)`` with
    ``s, t`` the token counts; only when ``max_len_ratio > 0``), as in Moses' clean-corpus-n.

    Args:
        src_sizes: (num_sentences,) source tokens per sentence.
        tgt_sizes: (num_sentences,) target tokens per sentence.

    Returns:
        keep: (num_sentences,) bool; dropped: count per reason in :data:`DROP_REASONS`.
    """
    shortest = np.minimum(src_sizes, tgt_sizes)
    longest = np.maximum(src_sizes, tgt_sizes)
    tests = {
        "empty": shortest == 0,
        "too_short": shortest < min_len,
        "too_long": longest > max_len,
        "ratio": longest > max_len_ratio * shortest if max_len_ratio > 0 else None,
    }
    keep = np.ones(len(src_sizes), dtype=bool)
    dropped = {}
    for reason in DROP_REASONS:
        test = tests[reason]
        hit = keep & test if test is not None else np.zeros_like(keep)
        dropped[reason] = int(hit.sum())
        keep &= ~hit
    return keep, dropped


def count_symbols(text: EncodedText, pieces: list[str]) -> Counter[str]:
    """How often each piece occurs in ``text`` (specials such as ``<unk>`` are not counted)."""
    counts = np.bincount(text.ids, minlength=len(pieces))
    return Counter(
        {pieces[i]: int(counts[i]) for i in np.flatnonzero(counts) if pieces[i] not in _SPECIALS}
    )


def build_dictionary(counts: Counter[str], *, threshold: int, nwords: int) -> Dictionary:
    """A fairseq dictionary of the counted symbols, finalized with padding factor 8."""
    dictionary = Dictionary()
    for symbol, n in counts.items():
        dictionary.add_symbol(symbol, n)
    dictionary.finalize(threshold=threshold, nwords=nwords, padding_factor=8)
    return dictionary


def lookup_table(pieces: list[str], dictionary: Dictionary) -> np.ndarray:
    """(len(pieces),) dictionary index of every segmenter id.

    Pieces missing from the dictionary, and text that spells a special (``<pad>``, ``</s>``
    ...), map to ``<unk>``: data must never contain padding or an early end of sentence.
    """
    table = np.fromiter((dictionary.index(p) for p in pieces), dtype=np.int64, count=len(pieces))
    table[table < dictionary.nspecial] = dictionary.unk
    return table


def binarize(text: EncodedText, pieces: list[str], dictionary: Dictionary, *, prefix: str) -> int:
    """Write ``text`` as ``PREFIX.bin/.idx`` in dictionary indices, each sentence ending in
    ``</s>``, and return how many tokens became ``<unk>``."""
    ids = lookup_table(pieces, dictionary)[text.ids]  # (total_tokens,)
    unk = int(np.count_nonzero(ids == dictionary.unk))
    ends = np.cumsum(text.sizes)  # insert </s> after each sentence, empty ones included
    with IndexedDatasetBuilder(prefix, vocab_size=len(dictionary)) as builder:
        builder.add_items(np.insert(ids, ends, dictionary.eos), text.sizes + 1)
        builder.finalize()
    return unk
