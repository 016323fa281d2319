"""What the translator decodes: :class:`SourceItem` sentences, grouped by :func:`make_batches`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class SourceItem:
    """One sentence to translate.

    Attributes:
        id: its index in the split or input (0-based).
        src: source ids ending in ``</s>``; empty for an empty input line (nothing to translate).
        ref: reference ids ending in ``</s>``, or None.
        src_pieces: the source pieces as read (before the dictionary: a piece the source
            dictionary lacks is still spelled out), or None for a binarized split.
        constraints: target ids of each constraint (no ``</s>``), from ``--constraints``.
        constraint_pieces: the same constraints as space-joined pieces (the C- lines).
    """

    id: int
    src: np.ndarray
    ref: np.ndarray | None = None
    src_pieces: list[str] | None = None
    constraints: list[list[int]] = field(default_factory=list)
    constraint_pieces: list[str] = field(default_factory=list)


def make_batches(
    lengths: list[int],
    *,
    batch_size: int,
    max_tokens: int,
    max_sentences: Callable[[int], int] | None = None,
) -> list[list[int]]:
    """Group indices into batches of similar length, longest first.

    A batch holds at most ``batch_size`` sentences and, when ``max_tokens > 0``, at most
    ``max_tokens`` padded source tokens (a longer sentence still gets a batch of its own).
    ``max_sentences(width)``, when given, caps the sentences of a batch whose longest source
    has ``width`` tokens (the search's memory budget; at least 1).
    Sorting by length keeps padding low; results do not depend on the grouping.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    cap = max(batch_size, 1)
    for i in order:
        width = lengths[current[0]] if current else lengths[i]  # the longest comes first
        too_many = len(current) >= cap
        too_wide = max_tokens > 0 and (len(current) + 1) * width > max_tokens
        if current and (too_many or too_wide):
            batches.append(current)
            current = []
        if not current and max_sentences is not None:  # i opens a batch: it is the longest
            cap = max(min(batch_size, max_sentences(lengths[i])), 1)
        current.append(i)
    if current:
        batches.append(current)
    return batches
