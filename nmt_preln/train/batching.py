"""Token-budget batches: bucketing by length, collation, sharding across ranks, loading.

The batch list of an epoch is a pure function of (sizes, limits, seed, epoch), so every
DDP rank and every resumed run sees the same batches in the same order, and a position in
the epoch is just an index into that list.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Protocol, overload

import numpy as np
import torch
from torch import Tensor

from nmt_preln.errors import UserError

logger = logging.getLogger(__name__)


@dataclass
class Batch:
    """A collated batch, right-padded with ``pad``.

    Attributes:
        ids: (batch,) dataset indices of the sentences, in row order.
        src_tokens: (batch, src_len) source tokens, each row ending in ``</s>``.
        src_lengths: (batch,) source lengths without padding.
        prev_output_tokens: (batch, tgt_len) decoder input ``</s> + target[:-1]``, or None
            when there are no targets.
        target: (batch, tgt_len) reference tokens, or None when there are no targets.
        ntokens: non-pad target tokens (source tokens when there are no targets).
    """

    ids: Tensor
    src_tokens: Tensor
    src_lengths: Tensor
    prev_output_tokens: Tensor | None
    target: Tensor | None
    ntokens: int

    def __len__(self) -> int:
        return int(self.ids.numel())

    def to(self, device: torch.device | str, *, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``."""

        def move(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return replace(
            self,
            ids=self.ids.to(device, non_blocking=non_blocking),
            src_tokens=self.src_tokens.to(device, non_blocking=non_blocking),
            src_lengths=self.src_lengths.to(device, non_blocking=non_blocking),
            prev_output_tokens=move(self.prev_output_tokens),
            target=move(self.target),
        )

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (faster, asynchronous copies to CUDA); a no-op
        without CUDA, where pinning is impossible."""
        if not torch.cuda.is_available():
            return self

        def pin(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.pin_memory()

        return replace(
            self,
            ids=self.ids.pin_memory(),
            src_tokens=self.src_tokens.pin_memory(),
            src_lengths=self.src_lengths.pin_memory(),
            prev_output_tokens=pin(self.prev_output_tokens),
            target=pin(self.target),
        )


def _pad_rows(rows: Sequence[np.ndarray], *, pad: int, shift_eos: int | None = None) -> Tensor:
    """Right-pad ``rows`` into (len(rows), max_len); with ``shift_eos`` build ``eos + row[:-1]``."""
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), pad, dtype=np.int64)  # (B, L)
    for i, row in enumerate(rows):
        if shift_eos is None:
            out[i, : len(row)] = row
        elif len(row) > 0:
            out[i, 0] = shift_eos
            out[i, 1 : len(row)] = row[:-1]
    return torch.from_numpy(out)


def collate(
    src: list[np.ndarray],
    tgt: list[np.ndarray] | None,
    *,
    pad: int,
    eos: int,
    ids: Sequence[int] | np.ndarray,
) -> Batch:
    """Stack sentences into a right-padded :class:`Batch`.

    Args:
        src: source sentences (token ids, each ending in ``</s>``).
        tgt: target sentences aligned with ``src``, or None (translation without references).
        pad: padding index.
        eos: end-of-sentence index; also the decoder's first input, as in fairseq.
        ids: the sentences' dataset indices.

    Returns:
        The batch; ``prev_output_tokens[i] = [eos] + target[i][:-1]``, padded like ``target``.
    """
    if not src:
        raise ValueError("collate needs at least one sentence")
    src_tokens = _pad_rows(src, pad=pad)  # (B, S)
    src_lengths = torch.tensor([len(s) for s in src], dtype=torch.int64)  # (B,)
    target = prev = None
    if tgt is None:
        ntokens = int(src_lengths.sum())
    else:
        target = _pad_rows(tgt, pad=pad)  # (B, T)
        prev = _pad_rows(tgt, pad=pad, shift_eos=eos)  # (B, T)
        ntokens = sum(len(t) for t in tgt)
    return Batch(
        ids=torch.as_tensor(np.asarray(ids, dtype=np.int64)),
        src_tokens=src_tokens,
        src_lengths=src_lengths,
        prev_output_tokens=prev,
        target=target,
        ntokens=ntokens,
    )


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


def padding_fraction(
    batches: Sequence[np.ndarray], src_sizes: np.ndarray, tgt_sizes: np.ndarray | None = None
) -> float:
    """Share of padding among the token slots of ``batches`` (source and target together).

    ``1 - real tokens / sum_b(n_b * longest_b)``, over both sides when targets are given.
    """
    if not batches:
        return 0.0
    real = padded = 0
    for sizes in (src_sizes, tgt_sizes):
        if sizes is None:
            continue
        for batch in batches:
            lengths = np.asarray(sizes)[batch]
            real += int(lengths.sum())
            padded += int(lengths.max()) * len(batch)
    return 1.0 - real / padded if padded else 0.0


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


class _Indexed(Protocol):
    def __getitem__(self, index: int) -> np.ndarray: ...


class _Specials(Protocol):
    pad: int
    eos: int


class PairDataset(Protocol):
    """What batch loading needs from :class:`nmt_preln.data.dataset.LanguagePairDataset`."""

    src: _Indexed
    tgt: _Indexed | None
    src_dict: _Specials


def collate_indices(dataset: PairDataset, indices: np.ndarray) -> Batch:
    """Read the sentences ``indices`` from ``dataset`` and :func:`collate` them."""
    ids = indices.tolist()
    src = [dataset.src[i] for i in ids]
    tgt = None if dataset.tgt is None else [dataset.tgt[i] for i in ids]
    specials = dataset.src_dict
    return collate(src, tgt, pad=specials.pad, eos=specials.eos, ids=indices)


def iterate_batches(
    dataset: PairDataset,
    batches: Sequence[np.ndarray],
    *,
    start: int = 0,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> Iterator[Batch]:
    """Yield the collated batches ``batches[start:]`` in order.

    Args:
        dataset: where the sentences come from.
        batches: index arrays, e.g. from :func:`batch_by_size` then :func:`shard`.
        start: batches to skip (the iterator position of a resumed epoch).
        num_workers: background threads collating ahead (``data.num_workers``); 0 collates
            in the caller's thread. Order is kept either way.
        pin_memory: pin each batch for asynchronous copies to CUDA (ignored without CUDA).

    Yields:
        :class:`Batch` objects on the CPU.
    """

    def load(indices: np.ndarray) -> Batch:
        batch = collate_indices(dataset, indices)
        return batch.pin_memory() if pin_memory else batch

    todo = iter(batches[start:])
    if num_workers <= 0:
        yield from (load(indices) for indices in todo)
        return
    pool = ThreadPoolExecutor(max_workers=num_workers, thread_name_prefix="batches")
    try:
        # A bounded window of futures keeps order and memory in check.
        window: deque[Future[Batch]] = deque()
        for indices in todo:
            window.append(pool.submit(load, indices))
            if len(window) > 2 * num_workers:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
