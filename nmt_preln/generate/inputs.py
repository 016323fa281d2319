"""What ``nmt-generate`` translates: a binarized split, or raw lines from a file or stdin.

Raw lines are read in chunks (``--buffer-size``) so that ``--input -`` streams, segmented with
the dataset's SentencePiece model (or split on spaces when the data was pre-segmented), mapped
through the source dictionary and cut to the model's positions. Bad lines never stop a run:
invalid UTF-8 is decoded with replacement characters, empty lines get an empty translation and
over-long lines are truncated, each with a warning that names the line.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import numpy as np

Warn = Callable[[str], None]


class _Dictionary(Protocol):
    eos: int

    def encode(self, tokens: Iterable[str], *, append_eos: bool = True) -> list[int]: ...


class _Tokenizer(Protocol):
    def encode(self, lines: list[str], *, num_threads: int = 0) -> list[list[str]]: ...

    def decode(self, pieces: list[str]) -> str: ...


@dataclass
class SourceItem:
    """One sentence to translate.

    Attributes:
        id: its index in the split or input (0-based).
        src: source ids ending in ``</s>``; empty for an empty input line (nothing to translate).
        ref: reference ids ending in ``</s>``, or None.
    """

    id: int
    src: np.ndarray
    ref: np.ndarray | None = None


class Segmenter:
    """Text <-> pieces for one language: SentencePiece, or pre-segmented text.

    Args:
        tokenizer: a SentencePiece tokenizer, or None when the data is already segmented.
        remove_bpe: for pre-segmented data, the continuation marker to delete when
            detokenizing (fairseq's ``--remove-bpe``, e.g. ``"@@ "``); None keeps the pieces.
    """

    def __init__(self, tokenizer: _Tokenizer | None, *, remove_bpe: str | None = None) -> None:
        self.tokenizer = tokenizer
        self.remove_bpe = remove_bpe

    def encode(self, lines: list[str]) -> list[list[str]]:
        """Lines -> pieces; one thread, since other work shares the cores."""
        if self.tokenizer is None:
            return [line.split() for line in lines]
        return self.tokenizer.encode(lines, num_threads=1)

    def decode(self, pieces: str) -> str:
        """Space-joined pieces -> text."""
        if self.tokenizer is not None:
            return self.tokenizer.decode(pieces.split())
        if self.remove_bpe:
            return (pieces + " ").replace(self.remove_bpe, "").rstrip()
        return pieces


def read_line_chunks(
    stream: BinaryIO, *, chunk_size: int, name: str, warn: Warn
) -> Iterator[list[str]]:
    """Yield the lines of ``stream`` in chunks of ``chunk_size`` (the last may be shorter).

    A line that is not valid UTF-8 is decoded with U+FFFD replacement characters, with a
    warning naming ``name`` and the 1-based line number; line alignment is always kept.
    """
    line_no = 0
    lines_iter = iter(stream)  # one iterator: islice must not restart a re-iterable stream
    while chunk := list(itertools.islice(lines_iter, chunk_size)):
        lines = []
        for raw in chunk:
            line_no += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                warn(f"{name}: line {line_no}: invalid UTF-8 at byte {e.start}, replaced by U+FFFD")
                text = raw.decode("utf-8", errors="replace")
            lines.append(text.rstrip("\r\n"))
        yield lines


def encode_lines(
    lines: list[str],
    *,
    first_id: int,
    segmenter: Segmenter,
    src_dict: _Dictionary,
    max_positions: int,
    name: str,
    warn: Warn,
) -> list[SourceItem]:
    """Segment and index raw lines; ``first_id`` is the id (line number - 1) of ``lines[0]``.

    Empty lines give an item with no tokens; lines longer than ``max_positions`` tokens
    (``</s>`` included) are truncated, keeping the final ``</s>``.
    """
    items = []
    for offset, pieces in enumerate(segmenter.encode(lines)):
        item_id = first_id + offset
        if not pieces:
            warn(f"{name}: line {item_id + 1}: empty line, its translation is empty")
            items.append(SourceItem(id=item_id, src=np.zeros(0, dtype=np.int64)))
            continue
        ids = src_dict.encode(pieces)
        if len(ids) > max_positions:
            warn(
                f"{name}: line {item_id + 1}: {len(ids)} tokens exceed the model's "
                f"{max_positions} positions, truncated"
            )
            ids = [*ids[: max_positions - 1], src_dict.eos]
        items.append(SourceItem(id=item_id, src=np.asarray(ids, dtype=np.int64)))
    return items


def make_batches(lengths: list[int], *, batch_size: int, max_tokens: int) -> list[list[int]]:
    """Group indices into batches of similar length, longest first.

    A batch holds at most ``batch_size`` sentences and, when ``max_tokens > 0``, at most
    ``max_tokens`` padded source tokens (a longer sentence still gets a batch of its own).
    Sorting by length keeps padding low; results do not depend on the grouping.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]  # the longest comes first
        too_many = len(current) >= max(batch_size, 1)
        too_wide = max_tokens > 0 and (len(current) + 1) * width > max_tokens
        if current and (too_many or too_wide):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches
