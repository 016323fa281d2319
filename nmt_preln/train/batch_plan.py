"""The batch plan of an epoch: length buckets under a token budget, and sharding across ranks.

The plan is a pure function of (sizes, limits, seed, epoch), so every DDP rank and every
resumed run sees the same batches in the same order, and a position in the epoch is just an
index into it. It is stored as flat numpy arrays (:class:`BatchPlan`): memory stays small and
flat as the corpus grows (issue 6).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np

from nmt_preln.errors import UserError

logger = logging.getLogger(__name__)


class BatchPlan(Sequence[np.ndarray]):
    """The batches of an epoch in three flat arrays, not one array object per batch.

    Batch ``i`` is the view ``order[starts[i]:ends[i]]``. ``order`` holds the kept sentence
    indices sorted by length (int32 below 2**31 sentences); ``starts``/``ends`` (int64) give
    the batches in epoch order. That is 4 bytes per sentence and 16 per batch, where a list of
    index arrays costs 8 bytes per sentence and ~100 per batch, and copies of it multiply that.
    Slicing gives a plan that shares ``order``.
    """

    __slots__ = ("ends", "order", "starts")

    def __init__(self, order: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.order, self.starts, self.ends = order, starts, ends

    def __len__(self) -> int:
        return len(self.starts)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice) -> BatchPlan: ...

    def __getitem__(self, index: int | slice) -> np.ndarray | BatchPlan:
        if isinstance(index, slice):
            return BatchPlan(self.order, self.starts[index], self.ends[index])
        return self.order[self.starts[index] : self.ends[index]]

    def __iter__(self) -> Iterator[np.ndarray]:
        order = self.order
        return (order[a:b] for a, b in zip(self.starts.tolist(), self.ends.tolist(), strict=True))

    def select(self, keep: np.ndarray) -> BatchPlan:
        """The plan without the sentences ``i`` where ``keep[i]`` is False; batches left empty
        are dropped. Equal to ``[b[keep[b]] for b in plan if keep[b].any()]``, without copies
        per batch.

        Args:
            keep: (num_sentences,) bool, indexed by sentence.
        """
        kept = keep[self.order]  # (len(order),) bool
        if kept.all():
            return self
        # before[p]: kept sentences at positions < p of ``order``, i.e. p's new position.
        before = np.zeros(len(kept) + 1, dtype=self.order.dtype)
        np.cumsum(kept, out=before[1:])
        starts, ends = before[self.starts].astype(np.int64), before[self.ends].astype(np.int64)
        del before
        nonempty = ends > starts
        return BatchPlan(self.order[kept], starts[nonempty], ends[nonempty])


def _sorted_by_length(src: np.ndarray, tgt: np.ndarray | None, *, seed: int) -> np.ndarray:
    """Sentence indices sorted by (source length, target length), ties in a seeded order.

    The same order as a stable sort by target then by source of
    ``default_rng(seed).permutation(n)``, with one sort of a compact key (radix sort when
    the key fits 16 bits) and no int64 copy per sentence.
    """
    n = len(src)
    order = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
    np.random.default_rng(seed).shuffle(order)  # the values of default_rng(seed).permutation(n)
    if n == 0:
        return order
    src_max = int(src.max())
    tgt_max = 0 if tgt is None else int(tgt.max())
    if tgt is None:
        key = src[order]
    elif (src_max + 1) * (tgt_max + 1) <= np.iinfo(np.int64).max and min(src.min(), tgt.min()) >= 0:
        span = (src_max + 1) * (tgt_max + 1)
        dtype = next(t for t in (np.uint16, np.uint32, np.int64) if span <= np.iinfo(t).max)
        key = src[order].astype(dtype)  # (n,) src * (tgt_max + 1) + tgt, built in place
        key *= tgt_max + 1
        key += tgt[order].astype(dtype)
    else:  # lengths that do not pack into one key: two stable passes
        order = order[np.argsort(tgt[order], kind="stable")]
        key = src[order]
    ranks = np.argsort(key, kind="stable")  # (n,) intp
    del key
    return order[ranks]


def _batch_starts(lengths: np.ndarray, *, max_tokens: int, max_sentences: int) -> np.ndarray:
    """Where each batch begins when length-sorted sentences are cut greedily.

    A batch grows while ``n * max(lengths) <= max_tokens`` and ``n <= max_sentences`` (a
    sentence alone always fits). ``n * running max`` only grows with ``n``, so each batch's
    end is found with a few vectorized operations over a window of about its own size.
    """
    total = len(lengths)
    starts: list[int] = []
    start = 0
    while start < total:
        starts.append(start)
        limit = total - start if max_sentences <= 0 else min(total - start, max_sentences)
        start += limit if max_tokens <= 0 else _fit(lengths, start, limit, max_tokens)
    return np.array(starts, dtype=np.int64)


def _fit(lengths: np.ndarray, start: int, limit: int, max_tokens: int) -> int:
    """Sentences from ``start`` that fit ``max_tokens`` (at least 1, at most ``limit``)."""
    first = int(lengths[start])
    # n * longest >= n * first exceeds max_tokens by n = max_tokens // first + 1.
    window = limit if first <= 0 else min(limit, max_tokens // first + 1)
    while True:
        longest = np.maximum.accumulate(lengths[start : start + window], dtype=np.int64)
        over = longest * np.arange(1, window + 1) > max_tokens  # (window,) bool, monotonic
        over[0] = False
        if over.any():
            return int(over.argmax())
        if window >= limit:
            return limit
        window = min(2 * window, limit)


def batch_by_size(
    src_sizes: np.ndarray,
    tgt_sizes: np.ndarray | None,
    *,
    max_tokens: int,
    max_sentences: int,
    seed: int,
    epoch: int,
) -> BatchPlan:
    """Group sentence indices into token-budget batches of similar lengths, in seeded order.

    Sentences are sorted by (source length, target length), ties broken by a permutation
    seeded with ``seed``; the sorted run is cut greedily so that every batch holds
    ``n <= max_sentences`` sentences with ``n * max(longest source, longest target) <=
    max_tokens`` (padding included). The batches are then shuffled with ``seed + epoch``:
    as in fairseq their composition is fixed for a seed and only their order changes from
    epoch to epoch. A sentence longer than ``max_tokens`` on either side is skipped, with
    one warning giving the count.

    Args:
        src_sizes: (num_sentences,) source lengths.
        tgt_sizes: (num_sentences,) target lengths, or None.
        max_tokens: token budget per batch; 0 means no budget (then ``max_sentences`` > 0).
        max_sentences: sentence limit per batch; 0 means no limit.
        seed: ``train.seed``.
        epoch: 1-based epoch.

    Returns:
        A :class:`BatchPlan` (a sequence of index arrays) holding every kept index exactly
        once; memory is 4 bytes per sentence plus 16 per batch.

    Raises:
        UserError: when neither limit is set, or when every sentence exceeds ``max_tokens``.
    """
    if max_tokens <= 0 and max_sentences <= 0:
        raise UserError("set max_tokens or the sentence limit (batch_size) to a positive value")
    src = np.asarray(src_sizes)
    tgt = None if tgt_sizes is None else np.asarray(tgt_sizes)
    order = _sorted_by_length(src, tgt, seed=seed)
    lengths = src[order] if tgt is None else np.maximum(src[order], tgt[order])  # sorted order
    if max_tokens > 0:
        fits = lengths <= max_tokens
        skipped = len(order) - int(np.count_nonzero(fits))
        if skipped == len(order) and skipped > 0:
            raise UserError(
                f"all {skipped} sentences are longer than max_tokens={max_tokens}; raise it"
            )
        if skipped:
            logger.warning("skipped %d sentences longer than max_tokens=%d", skipped, max_tokens)
            order, lengths = order[fits], lengths[fits]
        del fits
    starts = _batch_starts(lengths, max_tokens=max_tokens, max_sentences=max_sentences)
    del lengths
    ends = np.append(starts[1:], len(order))
    shuffle = np.random.default_rng([seed, epoch]).permutation(len(starts))
    return BatchPlan(order, starts[shuffle], ends[shuffle])


def shard(
    batches: Sequence[np.ndarray], rank: int, world_size: int
) -> list[np.ndarray] | BatchPlan:
    """The batches of one DDP rank: every ``world_size``-th, starting at ``rank``.

    A :class:`BatchPlan` gives a plan (a view sharing its order), any other sequence a list.

    The last ``len(batches) % world_size`` batches are dropped so that every rank runs the
    same number of steps (a rank with one more batch would hang in all-reduce).

    Raises:
        UserError: when there are fewer batches than ranks.
    """
    usable = len(batches) - len(batches) % world_size
    if usable == 0:
        raise UserError(f"{len(batches)} batches cannot feed {world_size} ranks; lower max_tokens")
    if isinstance(batches, BatchPlan):
        return batches[rank:usable:world_size]
    return list(batches[rank:usable:world_size])
