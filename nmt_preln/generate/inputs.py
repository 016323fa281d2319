"""What ``nmt-generate`` translates: a binarized split, or raw lines from a file or stdin.

Raw lines are read in chunks of at most ``--buffer-size`` lines, segmented with the dataset's
SentencePiece model (or split on spaces when the data was pre-segmented), mapped through the
source dictionary and cut to the model's positions. A regular file is read in full chunks; a
pipe or a terminal (``--input -`` in an interactive session) is translated as lines arrive,
like fairseq-interactive: a chunk holds the complete lines that were available, so nobody waits
for 256 lines that may never come. Bad lines never stop a run: invalid UTF-8 is decoded with
replacement characters, empty lines get an empty translation and over-long lines are truncated,
each with a warning that names the line. With ``--constraints`` a line is
``source<TAB>constraint<TAB>...`` (fairseq-interactive's format); the constraints are segmented
and indexed like the target side.
"""

from __future__ import annotations

import itertools
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import numpy as np

from nmt_preln.data.segmenter import Segmenter
from nmt_preln.search.source_items import SourceItem

Warn = Callable[[str], None]
READ_BYTES = 1 << 16  # one os.read of a pipe: whatever has arrived, up to this much


class _Dictionary(Protocol):
    eos: int
    unk: int

    def encode(self, tokens: Iterable[str], *, append_eos: bool = True) -> list[int]: ...


def is_interactive(stream: BinaryIO) -> bool:
    """Whether ``stream`` is a pipe, terminal or socket (read as lines arrive), not a file."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, AttributeError, ValueError):  # io.BytesIO and friends have no descriptor
        return False
    return not stat.S_ISREG(mode)


def _full_chunks(stream: BinaryIO, chunk_size: int) -> Iterator[list[bytes]]:
    lines_iter = iter(stream)  # one iterator: islice must not restart a re-iterable stream
    while chunk := list(itertools.islice(lines_iter, chunk_size)):
        yield chunk


def _arrived_chunks(fd: int, chunk_size: int) -> Iterator[list[bytes]]:
    """The complete lines of each read of ``fd`` (at most ``chunk_size`` per chunk).

    ``os.read`` returns as soon as anything is available, so a chunk never waits for more
    lines than the writer has sent; a fast writer still fills whole chunks.
    """
    pending = bytearray()
    while data := os.read(fd, READ_BYTES):
        cut = data.rfind(b"\n")
        if cut < 0:
            pending += data
            continue
        lines = bytes(pending + data[:cut]).split(b"\n")  # only \n ends a line, as for files
        pending = bytearray(data[cut + 1 :])
        for start in range(0, len(lines), chunk_size):
            yield lines[start : start + chunk_size]
    if pending:  # a last line without its newline
        yield [bytes(pending)]


def read_line_chunks(
    stream: BinaryIO, *, chunk_size: int, name: str, warn: Warn
) -> Iterator[list[str]]:
    """Yield the lines of ``stream`` in chunks of at most ``chunk_size``.

    A regular file (or an in-memory stream) gives full chunks (the last may be shorter); a
    pipe or terminal gives the lines that have arrived, so each is translated without
    waiting for the rest of the input. A line that is not valid UTF-8 is decoded with U+FFFD
    replacement characters, with a warning naming ``name`` and the 1-based line number; line
    alignment is always kept.
    """
    line_no = 0
    if is_interactive(stream):
        chunks = _arrived_chunks(stream.fileno(), chunk_size)
    else:
        chunks = _full_chunks(stream, chunk_size)
    for chunk in chunks:
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


@dataclass
class TargetSide:
    """How ``--constraints`` are turned into target ids: the target segmenter and dictionary."""

    segmenter: Segmenter
    dictionary: _Dictionary


def _encode_constraints(
    texts: list[str], *, target: TargetSide, where: str, warn: Warn
) -> tuple[list[list[int]], list[str]]:
    """Constraint texts -> (target ids, space-joined pieces); empty ones are dropped."""
    ids, pieces = [], []
    for number, text in enumerate(texts, start=1):
        parts = target.segmenter.encode([text])[0] if text.strip() else []
        if not parts:
            warn(f"{where}: constraint {number} is empty, ignored")
            continue
        tokens = target.dictionary.encode(parts, append_eos=False)
        if target.dictionary.unk in tokens:
            warn(f"{where}: constraint {number} ({text!r}) has pieces outside the target "
                 "dictionary; they are forced as <unk>")  # fmt: skip
        ids.append(tokens)
        pieces.append(" ".join(parts))
    return ids, pieces


def encode_lines(
    lines: list[str],
    *,
    first_id: int,
    segmenter: Segmenter,
    src_dict: _Dictionary,
    max_positions: int,
    name: str,
    warn: Warn,
    constraints: TargetSide | None = None,
) -> list[SourceItem]:
    """Segment and index raw lines; ``first_id`` is the id (line number - 1) of ``lines[0]``.

    Empty lines give an item with no tokens; lines longer than ``max_positions`` tokens
    (``</s>`` included) are truncated, keeping the final ``</s>``. With ``constraints``, the
    tab-separated columns after the first are the line's constraints (fairseq-interactive).
    """
    columns = [line.split("\t") if constraints else [line] for line in lines]
    items = []
    for offset, pieces in enumerate(segmenter.encode([c[0] for c in columns])):
        item_id = first_id + offset
        where = f"{name}: line {item_id + 1}"
        if not pieces:
            warn(f"{where}: empty line, its translation is empty")
            items.append(SourceItem(id=item_id, src=np.zeros(0, dtype=np.int64)))
            continue
        ids = src_dict.encode(pieces)
        if len(ids) > max_positions:
            warn(f"{where}: {len(ids)} tokens exceed the model's {max_positions} positions, "
                 "truncated")  # fmt: skip
            ids = [*ids[: max_positions - 1], src_dict.eos]
            pieces = pieces[: max_positions - 1]
        item = SourceItem(id=item_id, src=np.asarray(ids, dtype=np.int64), src_pieces=pieces)
        if constraints is not None:
            item.constraints, item.constraint_pieces = _encode_constraints(
                columns[offset][1:], target=constraints, where=where, warn=warn
            )
        items.append(item)
    return items
